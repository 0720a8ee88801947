package insight

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// humanDuration writes d the way people say it: "850 ms", "20 s",
// "45 min", "1 h 5 min", "2 d 3 h".
func humanDuration(d time.Duration) string {
	if d < 0 {
		return "-" + humanDuration(-d)
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		s := fmt.Sprintf("%.1f", d.Seconds())
		return strings.TrimSuffix(s, ".0") + " s"
	case d < 90*time.Second:
		return fmt.Sprintf("%d s", int(math.Round(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(math.Round(d.Minutes())))
	case d < 48*time.Hour:
		h := int(d.Hours())
		m := int(math.Round((d - time.Duration(h)*time.Hour).Minutes()))
		if m == 60 {
			h, m = h+1, 0
		}
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	}
	days := int(d.Hours() / 24)
	h := int(math.Round(d.Hours() - float64(days*24)))
	if h == 0 {
		return fmt.Sprintf("%d d", days)
	}
	return fmt.Sprintf("%d d %d h", days, h)
}

// plural: "1 refusal", "3 refusals".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return thousands(n) + " " + word + "s"
}

// quantile of sorted values (linear interpolation); 0 for none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (sorted[i+1]-sorted[i])*(pos-float64(i))
}

// spread describes values: median, and the relative spread (p80 − p20) /
// median, which is near 0 for a near-constant series.
type spread struct {
	N      int
	Median float64
	Rel    float64
	Min    float64
	Max    float64
}

func spreadOf(vals []float64) spread {
	if len(vals) == 0 {
		return spread{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	m := quantile(s, 0.5)
	sp := spread{N: len(s), Median: m, Min: s[0], Max: s[len(s)-1]}
	if m > 0 {
		sp.Rel = (quantile(s, 0.8) - quantile(s, 0.2)) / m
	} else {
		sp.Rel = math.Inf(1)
	}
	return sp
}

// within counts the values within ±rel of m.
func within(vals []float64, m, rel float64) int {
	n := 0
	for _, v := range vals {
		if math.Abs(v-m) <= rel*m {
			n++
		}
	}
	return n
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func secs(d time.Duration) string { return humanDuration(d) }

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
