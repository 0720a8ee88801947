package syntax

import (
	"strings"
	"testing"
)

func TestLex(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want string // kind:text, space separated
	}{
		{`T | where x == "a"`, `name:T operator:| name:where name:x operator:== string:a`},
		{`a !has 'b' and c in~ (1) or d !in~ (2)`, `name:a operator:!has string:b name:and name:c operator:in~ operator:( number:1 operator:) name:or name:d operator:!in~ operator:( number:2 operator:)`},
		{`5m 1.5h 100ms 7d 10microseconds 3ticks`, `timespan:5m timespan:1.5h timespan:100ms timespan:7d timespan:10microseconds timespan:3ticks`},
		{`1.25 1e3 0x1F 42`, `number:1.25 number:1e3 number:0x1F number:42`},
		{`@"C:\dir""x" "a\"b\\c\n" 'it''s'`, `string:C:\dir"x string:a"b\c` + "\n" + ` string:it string:s`},
		{`datetime(2024-01-02 03:04:05Z) datetime("x")`, `datetime:2024-01-02 03:04:05Z name:datetime operator:( string:x operator:)`},
		{`project-away a | project-rename b = c`, `name:project-away name:a operator:| name:project-rename name:b operator:= name:c`},
		{"x // comment\n| y", `name:x operator:| name:y`},
		{`x between (1 .. 5) !between (1..2)`, `name:x name:between operator:( number:1 operator:.. number:5 operator:) operator:!between operator:( number:1 operator:.. number:2 operator:)`},
		{`a <= b >= c != d <> e =~ f !~ g`, `name:a operator:<= name:b operator:>= name:c operator:!= name:d operator:<> name:e operator:=~ name:f operator:!~ name:g`},
		{`Größe _x $y`, `name:Größe name:_x name:$y`},
	} {
		toks, err := Lex(tc.src)
		if err != nil {
			t.Errorf("Lex(%q): %v", tc.src, err)
			continue
		}
		var got []string
		for _, tk := range toks[:len(toks)-1] {
			got = append(got, tk.Kind.String()+":"+tk.Text)
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("Lex(%q)\n got %s\nwant %s", tc.src, g, tc.want)
		}
	}
}

func TestLexPositions(t *testing.T) {
	toks, err := Lex("T\n| where  x")
	if err != nil {
		t.Fatal(err)
	}
	want := []Pos{{1, 1, 0}, {2, 1, 2}, {2, 3, 4}, {2, 10, 11}, {2, 11, 12}}
	for i, w := range want {
		if toks[i].Pos != w {
			t.Errorf("token %d (%s) at %+v, want %+v", i, toks[i], toks[i].Pos, w)
		}
	}
}

func TestLexErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`x == "abc`, `1:6: string literal not terminated`},
		{`"a\qb"`, `1:3: unknown escape sequence \q in string`},
		{`T | where x == 5q`, `1:16: invalid number or timespan literal 5q; timespan units are d, h, m, s, ms, microsecond, tick`},
		{"T\n | where x ? 1", `2:12: unexpected character '?'`},
		{`datetime(2024-01-01`, `1:1: datetime literal not terminated: missing ')'`},
		{`x == @"abc`, `1:6: string literal not terminated`},
		{"x == \"\xff\"", `1:7: invalid UTF-8 in string`},
		{`!x`, `1:1: unexpected character '!'`},
	} {
		_, err := Lex(tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Lex(%q) error %v, want %s", tc.src, err, tc.want)
		}
	}
}
