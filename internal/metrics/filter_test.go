package metrics

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseFilter(t *testing.T) {
	for _, c := range []struct {
		in     string
		filter map[string][]string
		split  []string
	}{
		{"", map[string][]string{}, nil},
		{"ResultType eq '401003'", map[string][]string{"ResultType": {"401003"}}, nil},
		{"ResultType eq '*'", map[string][]string{}, []string{"ResultType"}},
		{"ResultType eq '404104' or ResultType eq '400027' and Protocol eq '*'",
			map[string][]string{"ResultType": {"404104", "400027"}}, []string{"Protocol"}},
		{"(Reason eq 'it''s') and Subscription EQ 'ops'", map[string][]string{"Reason": {"it's"}, "Subscription": {"ops"}}, nil},
		{"resulttype eq 'a' or ResultType eq 'b'", map[string][]string{"resulttype": {"a", "b"}}, nil},
	} {
		f, s, err := ParseFilter(c.in)
		if err != nil || !reflect.DeepEqual(f, c.filter) || !reflect.DeepEqual(s, c.split) {
			t.Errorf("%q: %v %v %v; want %v %v", c.in, f, s, err, c.filter, c.split)
		}
	}
	for _, in := range []string{"ResultType", "ResultType eq", "ResultType eq 401003", "ResultType ne 'x'",
		"ResultType eq 'x' or Protocol eq 'y'", "ResultType eq 'x' xor Protocol eq 'y'", "(ResultType eq 'x'",
		"ResultType eq 'x')", "ResultType eq 'unterminated", "ResultType eq 'x' and"} {
		if _, _, err := ParseFilter(in); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%q: err %v, want ErrInvalidQuery", in, err)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"ResultType eq '401003'", "A eq 'x' or A eq 'y' and B eq '*'", "((A eq 'x'))", "A eq 'it''s'", "A eq", ")"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		filter, split, err := ParseFilter(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		for dim, values := range filter {
			if dim == "" || len(values) == 0 {
				t.Fatalf("%q: empty entry %q %v", s, dim, values)
			}
		}
		for _, d := range split {
			if d == "" {
				t.Fatalf("%q: empty split dimension", s)
			}
		}
	})
}
