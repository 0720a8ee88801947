package devquery

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tether-hub/tether/internal/devquery/syntax"
)

var fuzzSeeds = []string{
	`SELECT * FROM devices`,
	`SELECT * FROM devices WHERE connectionState = 'Disconnected'`,
	`select top 5 DeviceId, tags.location.region as region from DEVICES where a=1 and not (b <> 'x' or c in ['a',-1,null])`,
	`SELECT properties.reported.x AS x, COUNT() AS n FROM devices GROUP BY properties.reported.x`,
	`SELECT COUNT(), SUM(a), AVG(b), MIN(c), MAX(d) FROM devices WHERE IS_DEFINED(e) OR STARTSWITH(f, 'g')`,
	`SELECT * FROM devices WHERE -(a + b) * 2 / c % 3 = - -5 AND ABS(x) >= 0x1F AND y NIN [] AND [[group]].v = "q\"\u00e9"`,
	`SELECT * FROM devices WHERE (((a)))`,
	`SELECT * FROM devices WHERE NOT NOT NOT x = 1`,
	`SELECT a AS [[x y]] FROM devices WHERE devices.b = 1e300`,
	`SELECT * FROM devices WHERE a IN [1,2,3,'a','b','c','d','e','f','g']`,
	`SELECT * FROM devices.modules`,
	`SELECT TOP 1.5 * FROM devices`,
	"SELECT * FROM devices WHERE a = '\\ud83d\\ude00' AND\n b = 1",
	`SELECT * FROM devices WHERE a = 9223372036854775807 + 1 AND b = -9223372036854775808`,
}

// FuzzParse: Parse never panics; every error is a *SyntaxError inside the
// query; a query that parses renders to text that parses to the same
// text; and running it never panics.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, block := range strings.Split(string(data), "\nquery")[1:] {
			_, rest, _ := strings.Cut(block, "\n")
			q, _, _ := strings.Cut(rest, "\n----")
			f.Add(q)
		}
	}
	doc := decodeDoc(f, twinJSON, true)
	src := fleetOf(20)
	f.Fuzz(func(t *testing.T, text string) {
		q, err := Parse(text)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): error %T %v is not a *SyntaxError", text, err, err)
			}
			if se.Pos < 0 || se.Pos > len(text) || se.Line < 1 || se.Col < 1 {
				t.Fatalf("Parse(%q): error position %+v outside the query", text, se)
			}
			return
		}
		canon := q.String()
		q2, err := Parse(canon)
		if err != nil {
			// Normalised spacing can push a query near the limit past it.
			if utf8.RuneCountInString(canon) > syntax.MaxQueryLength {
				return
			}
			t.Fatalf("Parse(%q) ok, but its rendering %q fails: %v", text, canon, err)
		}
		if again := q2.String(); again != canon {
			t.Fatalf("Parse(%q) renders %q, which renders %q", text, canon, again)
		}
		q.Match(doc)
		p, err := q.Run(src, 3, "")
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if p.Continuation != "" {
			if _, err := q.Run(src, 3, p.Continuation); err != nil {
				t.Fatalf("Run with its own token: %v", err)
			}
		}
	})
}

// FuzzContinuation: any token is either accepted or refused with a
// *ContinuationError, never a panic.
func FuzzContinuation(f *testing.F) {
	src := fleetOf(30)
	scan := mustParse(f, "SELECT deviceId FROM devices WHERE connectionState = 'Connected'")
	agg := mustParse(f, "SELECT tags.floor AS floor, COUNT() AS n FROM devices GROUP BY tags.floor")
	for _, q := range []*Query{scan, agg} {
		p, err := q.Run(src, 2, "")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p.Continuation)
	}
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, token string) {
		for _, q := range []*Query{scan, agg} {
			_, err := q.Run(src, 2, token)
			var ce *ContinuationError
			if err != nil && !errors.As(err, &ce) {
				t.Fatalf("token %q: %T %v", token, err, err)
			}
		}
	})
}
