package syntax

import "testing"

// TestPrintRoundTrip: the canonical text parses to a query with the same
// canonical text, and the text is what we expect.
func TestPrintRoundTrip(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`select top 3 deviceId as id, tags.[[a b]] from devices where x<>1`,
			`SELECT TOP 3 deviceId AS id, tags.[[a b]] FROM devices WHERE x != 1`},
		{`SELECT a AS [[group]], b AS [[x-y]] FROM devices`, `SELECT a AS [[group]], b AS [[x-y]] FROM devices`},
		{`SELECT * FROM devices WHERE (a = 1) = true`, `SELECT * FROM devices WHERE (a = 1) = true`},
		{`SELECT * FROM devices WHERE a - (b - c) = a - b - c`, `SELECT * FROM devices WHERE a - (b - c) = a - b - c`},
		{`SELECT * FROM devices WHERE a / (b * c) = (a / b) * c`, `SELECT * FROM devices WHERE a / (b * c) = a / b * c`},
		{`SELECT * FROM devices WHERE a AND (b AND c) OR (d OR e)`, `SELECT * FROM devices WHERE a AND (b AND c) OR (d OR e)`},
		{`SELECT * FROM devices WHERE NOT (a OR b) AND NOT a = b`, `SELECT * FROM devices WHERE NOT (a OR b) AND NOT a = b`},
		{`SELECT * FROM devices WHERE (NOT a) = b`, `SELECT * FROM devices WHERE (NOT a) = b`},
		{`SELECT * FROM devices WHERE (a = b) IN [true] AND (a + 1) NIN [2]`,
			`SELECT * FROM devices WHERE (a = b) IN [true] AND a + 1 NIN [2]`},
		{`SELECT * FROM devices WHERE -(a + b) = - -5 AND a - -5 = -(-5)`,
			`SELECT * FROM devices WHERE -(a + b) = --5 AND a - -5 = --5`},
		{`SELECT * FROM devices WHERE a = 'it\'s' AND b = "say \"x\"" AND c = 'both \' and "'`,
			`SELECT * FROM devices WHERE a = "it's" AND b = 'say "x"' AND c = 'both \' and "'`},
		{`SELECT * FROM devices WHERE a = '\t\n\r\b\f\/\\\u0001\u007f'`,
			`SELECT * FROM devices WHERE a = '\t\n\r\u0008\u000C/\\\u0001\u007F'`},
		{`SELECT * FROM devices WHERE [[true]] = true AND x.true = [[1a]].b`,
			`SELECT * FROM devices WHERE [[true]] = true AND x.true = [[1a]].b`},
		{`SELECT * FROM devices WHERE f() = g(a, (b OR c))`, `SELECT * FROM devices WHERE F() = G(a, b OR c)`},
		{`SELECT * FROM devices.modules`, `SELECT * FROM devices.modules`},
	} {
		q, err := Parse(tc.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.src, err)
			continue
		}
		got := q.String()
		if got != tc.want {
			t.Errorf("Parse(%q).String()\n got %s\nwant %s", tc.src, got, tc.want)
		}
		q2, err := Parse(got)
		if err != nil {
			t.Errorf("Parse(%q) (re-parse): %v", got, err)
			continue
		}
		if again := q2.String(); again != got {
			t.Errorf("re-rendered\n got %s\nwant %s", again, got)
		}
	}
}
