package dashboard_test

import (
	"fmt"
	"sort"
	"testing"
)

// BenchmarkPageCalls times each API call of each page on its own (one at
// a time), to see which dominates a page.
func BenchmarkPageCalls(b *testing.B) {
	e := setupPages(b)
	ps := pages(e.device, e.deep)
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		for i, c := range ps[name] {
			b.Run(fmt.Sprintf("%s/%d", name, i), func(b *testing.B) {
				for b.Loop() {
					if code, _ := e.do(c); code >= 300 {
						b.Fatalf("%s %s: %d", c.method, c.path, code)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/call")
			})
		}
	}
}
