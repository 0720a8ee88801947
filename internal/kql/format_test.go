package kql

import (
	"testing"
	"time"
)

func TestHasTerm(t *testing.T) {
	for _, tc := range []struct {
		s, term      string
		cs, pre, suf bool
		want         bool
	}{
		{s: "azure-iot-device/1.17.1 (node v18.0.0)", term: "node", want: true},
		{s: "azure-iot-device/1.17.1 (node v18.0.0)", term: "NODE", want: true},
		{s: "azure-iot-device/1.17.1 (node v18.0.0)", term: "NODE", cs: true, want: false},
		{s: "azure-iot-device/1.17.1 (node v18.0.0)", term: "nod", want: false},
		{s: "azure-iot-device/1.17.1 (node v18.0.0)", term: "iot-device", want: true},
		{s: "192.168.1.XXX", term: "192.168.1", want: true},
		{s: "192.168.10.XXX", term: "192.168.1", want: false},
		{s: "abc abcd", term: "abcd", want: true},
		{s: "xabc abc", term: "abc", want: true},
		{s: "Größe", term: "GRÖSSE", want: false},
		{s: "straße x", term: "STRASSE", want: false},
		{s: "dev-Ä", term: "ä", want: true},
		{s: "prefixed", term: "pre", pre: true, want: true},
		{s: "prefixed", term: "fixed", suf: true, want: true},
		{s: "prefixed", term: "fix", pre: true, want: false},
		{s: "anything", term: "", want: true},
	} {
		if got := HasTerm(tc.s, tc.term, tc.cs, tc.pre, tc.suf); got != tc.want {
			t.Errorf("HasTerm(%q, %q, cs=%v pre=%v suf=%v) = %v", tc.s, tc.term, tc.cs, tc.pre, tc.suf, got)
		}
	}
}

func TestTimespanText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "00:00:00", 90 * time.Minute: "01:30:00", 36 * time.Hour: "1.12:00:00",
		-time.Second: "-00:00:01", 1500 * time.Millisecond: "00:00:01.5000000", 150 * time.Nanosecond: "00:00:00.0000001",
	} {
		if got := FormatTimespan(d); got != want {
			t.Errorf("FormatTimespan(%s) = %q, want %q", d, got, want)
		}
	}
	for s, want := range map[string]time.Duration{
		"01:30:00": 90 * time.Minute, "1.12:00:00": 36 * time.Hour, "-00:00:01": -time.Second,
		"00:00:01.5": 1500 * time.Millisecond, "5m": 5 * time.Minute, "00:10": 10 * time.Minute,
	} {
		if got, ok := ParseTimespan(s); !ok || got != want {
			t.Errorf("ParseTimespan(%q) = %s %v, want %s", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "x", "25:00:00", "00:60:00", "1.2.3", "00:00:00.", "10"} {
		if d, ok := ParseTimespan(s); ok {
			t.Errorf("ParseTimespan(%q) = %s, want failure", s, d)
		}
	}
}

func TestFormatDatetimeAs(t *testing.T) {
	tm := time.Date(2026, 3, 1, 15, 4, 5, 123456789, time.UTC)
	for f, want := range map[string]string{
		"yyyy-MM-dd HH:mm:ss.fff": "2026-03-01 15:04:05.123",
		"M/d/yy h:mm tt":          "3/1/26 3:04 PM",
		"[HH]_ss.FFFFFFFFF":       "[15]_05.123456789",
		"yy":                      "26",
	} {
		got, err := FormatDatetimeAs(tm, f)
		if err != nil || got != want {
			t.Errorf("FormatDatetimeAs(%q) = %q %v, want %q", f, got, err, want)
		}
	}
	for _, f := range []string{"yyy", "Q", "MMM", "hhh"} {
		if _, err := FormatDatetimeAs(tm, f); err == nil {
			t.Errorf("FormatDatetimeAs(%q): no error", f)
		}
	}
}
