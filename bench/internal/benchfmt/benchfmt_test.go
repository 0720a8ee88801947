package benchfmt

import "testing"

func TestInt(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 19000: "19,000", 1000000: "1,000,000", -12345: "-12,345"} {
		if got := Int(n); got != want {
			t.Errorf("Int(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	if _, ok := Summarize(nil); ok {
		t.Fatal("Summarize(nil) reported a median")
	}
	s, _ := Summarize([]float64{1.63, 1.07, 1.25})
	if s != (Spread{1.25, 1.07, 1.63}) || s.String() != "1.25 [1.07–1.63]" {
		t.Errorf("odd count: %+v %q", s, s.String())
	}
	s, _ = Summarize([]float64{4, 1, 2, 3})
	if s.Med != 2.5 || s.Lo != 1 || s.Hi != 4 {
		t.Errorf("even count: %+v", s)
	}
	s, _ = Summarize([]float64{150})
	if s.String() != "150" {
		t.Errorf("one reading: %q", s.String())
	}
}
