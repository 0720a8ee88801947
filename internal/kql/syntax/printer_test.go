package syntax

import "testing"

// roundTripSeeds are queries whose printed form must parse back to the
// same tree (and print identically).
var roundTripSeeds = []string{
	`AzureDiagnostics
| where ( ResourceType == "IOTHUBS" and Category == "Connections" and Level == "Error")`,
	`AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend DeviceId = tostring(parse_json(properties_s).deviceId)
| where DeviceId == "test-device"`,
	`AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend parsed_json = parse_json(properties_s)
| extend SDKVersion = tostring(parsed_json.sdkVersion) , DeviceId = tostring(parsed_json.deviceId) , Protocol = tostring(parsed_json.protocol)
| distinct TimeGenerated, OperationName, Level, ResultType, ResultDescription, DeviceId, Protocol, SDKVersion`,
	`let since = ago(1h); let dev = @"a""b"; T | where TimeGenerated > since and DeviceId !in~ (dev, 'x\ty') | summarize n = countif(Level == "Error"), arg_max(TimeGenerated, *) by bin(TimeGenerated, 5m) | top 10 by n desc nulls last`,
	`T | project ['a b'] = -x, c = p["k"][0].z | project-rename d = c | project-away d | order by x asc, y | take 1 | count`,
	`T | where x between (datetime(2024-01-01) .. datetime(null)) and y !between (1.5 .. 0x20) and z matches_nothing_here has_cs "q"`,
}

func TestPrintRoundTrip(t *testing.T) {
	for _, src := range roundTripSeeds {
		q, err := Parse(src)
		if err != nil {
			// The last seed is deliberately invalid ('matches_nothing_here').
			continue
		}
		checkRoundTrip(t, src, q)
	}
}

func checkRoundTrip(t *testing.T, src string, q *Query) {
	t.Helper()
	printed := q.String()
	q2, err := Parse(printed)
	if err != nil {
		t.Fatalf("printed form of %q does not parse: %v\n%s", src, err, printed)
	}
	if sexprQuery(q) != sexprQuery(q2) {
		t.Fatalf("round trip changed the tree of %q\n first %s\nsecond %s", src, sexprQuery(q), sexprQuery(q2))
	}
	if p2 := q2.String(); p2 != printed {
		t.Fatalf("printing is not stable for %q:\n%s\n---\n%s", src, printed, p2)
	}
}

// FuzzParse: the parser never panics, errors carry a position inside the
// input, and whatever parses survives print-then-parse.
func FuzzParse(f *testing.F) {
	for _, s := range roundTripSeeds {
		f.Add(s)
	}
	f.Add(`T | where x == "\n" | extend y = @'it''s'`)
	f.Add("T | where datetime(2024-01-01 10:00) < now() - 1d")
	f.Fuzz(func(t *testing.T, src string) {
		q, err := Parse(src)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if !e.Pos.IsValid() || e.Pos.Offset > len(src) {
				t.Fatalf("error position %+v outside the input (%d bytes): %v", e.Pos, len(src), e)
			}
			return
		}
		checkRoundTrip(t, src, q)
	})
}
