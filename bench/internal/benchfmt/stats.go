package benchfmt

import (
	"fmt"
	"slices"
)

// Spread is the median of repeated readings of one figure and their range.
// Connect-storm figures move run to run on a shared machine (bare mochi's
// CPU per plain connect by up to 1.5×), so a figure from one run says
// little; the median of several alternated runs and its range say how far
// to trust it.
type Spread struct{ Med, Lo, Hi float64 }

// Summarize gives vals' median (the mean of the middle two for an even
// count) and range; false when there are none.
func Summarize(vals []float64) (Spread, bool) {
	if len(vals) == 0 {
		return Spread{}, false
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{m, s[0], s[len(s)-1]}, true
}

// String prints the median and, when the readings differ, their range:
// "1.27 [1.07–1.63]".
func (s Spread) String() string {
	if s.Lo == s.Hi {
		return Num(s.Med)
	}
	return fmt.Sprintf("%s [%s–%s]", Num(s.Med), Num(s.Lo), Num(s.Hi))
}
