package sim

import (
	"math"
	"slices"
	"time"
)

// Latency is a mergeable latency histogram: buckets 2 % wide from 1 µs
// up, kept sparse, so worker processes send a few hundred numbers
// instead of every sample, and quantiles are exact to 2 %. Max is exact.
type Latency struct {
	N       int64           `json:"n"`
	MaxNs   int64           `json:"maxNs"`
	Buckets map[int32]int64 `json:"b,omitempty"`
}

// latencyGrowth is the ratio between bucket bounds.
const latencyGrowth = 1.02

var logGrowth = math.Log(latencyGrowth)

func latencyBucket(d time.Duration) int32 {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	return int32(math.Ceil(math.Log(us) / logGrowth))
}

// bucketUpper is the largest duration of bucket b.
func bucketUpper(b int32) time.Duration {
	return time.Duration(math.Pow(latencyGrowth, float64(b)) * float64(time.Microsecond))
}

// Add records one sample (negative samples count as 0).
func (l *Latency) Add(d time.Duration) {
	d = max(d, 0)
	if l.Buckets == nil {
		l.Buckets = map[int32]int64{}
	}
	l.Buckets[latencyBucket(d)]++
	l.N++
	l.MaxNs = max(l.MaxNs, int64(d))
}

// Merge adds o's samples.
func (l *Latency) Merge(o Latency) {
	if o.N == 0 {
		return
	}
	if l.Buckets == nil {
		l.Buckets = map[int32]int64{}
	}
	for b, n := range o.Buckets {
		l.Buckets[b] += n
	}
	l.N += o.N
	l.MaxNs = max(l.MaxNs, o.MaxNs)
}

// Quantile is the q-quantile (0 < q ≤ 1): the upper bound of the bucket
// holding it, never above the maximum.
func (l *Latency) Quantile(q float64) time.Duration {
	if l.N == 0 {
		return 0
	}
	keys := make([]int32, 0, len(l.Buckets))
	for b := range l.Buckets {
		keys = append(keys, b)
	}
	slices.Sort(keys)
	rank := int64(math.Ceil(q * float64(l.N)))
	rank = min(max(rank, 1), l.N)
	var seen int64
	for _, b := range keys {
		seen += l.Buckets[b]
		if seen >= rank {
			return min(bucketUpper(b), time.Duration(l.MaxNs))
		}
	}
	return time.Duration(l.MaxNs)
}

// LatencySummary is what a report shows of a Latency.
type LatencySummary struct {
	Count int64   `json:"count"`
	P50ms float64 `json:"p50Ms"`
	P95ms float64 `json:"p95Ms"`
	P99ms float64 `json:"p99Ms"`
	Maxms float64 `json:"maxMs"`
}

// Summary reduces l to its count, quantiles and maximum.
func (l *Latency) Summary() LatencySummary {
	return LatencySummary{Count: l.N, P50ms: ms(l.Quantile(0.50)), P95ms: ms(l.Quantile(0.95)),
		P99ms: ms(l.Quantile(0.99)), Maxms: ms(time.Duration(l.MaxNs))}
}
