package insight

import (
	"strings"
	"time"
)

// The verdicts' queries run as they are with `tether query` (Tether's KQL
// subset over AzureDiagnostics; the tests compile every one). They bound
// time with the diagnosis window's own datetimes, so they show the same
// records later.

// kqlString quotes s as a KQL string literal.
func kqlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func kqlTime(ms int64) string {
	return "datetime(" + time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") + ")"
}

// base is the device's Connections records in the window (categories:
// others to include, e.g. DeviceIdentityOperations).
func (f *facts) base(categories ...string) string {
	cat := `Category == "Connections"`
	if len(categories) > 0 {
		q := []string{`"Connections"`}
		for _, c := range categories {
			q = append(q, kqlString(c))
		}
		cat = "Category in (" + strings.Join(q, ", ") + ")"
	}
	return "AzureDiagnostics\n| where " + cat + " and DeviceId == " + kqlString(f.d.ID) +
		"\n| where TimeGenerated >= " + kqlTime(f.since) + " and TimeGenerated <= " + kqlTime(f.now+1000)
}

// query joins the base and the rest of the pipeline.
func (f *facts) query(rest ...string) string {
	return f.base() + "\n| " + strings.Join(rest, "\n| ")
}
