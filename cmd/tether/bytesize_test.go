package main

import "testing"

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "2G": 2 << 30, "1.5GB": 1_500_000_000, "1048576": 1 << 20, "64 KiB": 64 << 10, "0": 0} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "12XB", "-1G", "1e30"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) accepted", in)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"512MiB", "2G", "1.5GB", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseByteSize(s)
		if err == nil && (n < 0 || n > 1<<50) {
			t.Fatalf("parseByteSize(%q) = %d", s, n)
		}
	})
}
