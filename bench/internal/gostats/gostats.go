// Package gostats reads what a Go broker's /debug/pprof says about its
// memory, without forcing a GC: the goroutine count and runtime.MemStats
// from the heap profile's debug=1 trailer.
package gostats

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Stats is one reading.
type Stats struct {
	Goroutines int64
	HeapInuse  int64 // bytes in in-use spans: live objects and garbage not yet collected
	StackInuse int64 // bytes of goroutine stacks
	NextGC     int64 // the heap goal: the heap size at which the next GC ends a cycle
	NumGC      int64 // completed GC cycles
}

// Fetch reads base's /debug/pprof (base: "http://host:port").
func Fetch(base string) (Stats, error) {
	var st Stats
	get := newGetter(base)
	if err := fetchMem(get, &st); err != nil {
		return st, err
	}
	err := get("/debug/pprof/goroutine?debug=1", func(l string) bool {
		if rest, ok := strings.CutPrefix(l, "goroutine profile: total "); ok {
			st.Goroutines, _ = strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
		return false // first line only
	})
	return st, err
}

// FetchMem reads only the MemStats trailer of base's heap profile (no
// goroutine dump: with thousands of goroutines that dump allocates MBs in
// the broker, which a poll must not do).
func FetchMem(base string) (Stats, error) {
	var st Stats
	err := fetchMem(newGetter(base), &st)
	return st, err
}

func fetchMem(get getter, st *Stats) error {
	return get("/debug/pprof/heap?debug=1", func(l string) bool {
		st.parseLine(l)
		return true
	})
}

// getter GETs path and hands each line to each until it returns false.
type getter func(path string, each func(line string) bool) error

// parseLine takes one line of the heap profile's MemStats trailer:
// "# HeapInuse = N", "# Stack = StackInuse / StackSys", "# NextGC = N",
// "# NumGC = N".
// Other lines, and values that are not numbers, are ignored.
func (st *Stats) parseLine(l string) {
	name, val, ok := strings.Cut(strings.TrimPrefix(l, "# "), " = ")
	if !ok {
		return
	}
	val, _, _ = strings.Cut(val, " /")
	n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
	if err != nil {
		return
	}
	switch name {
	case "HeapInuse":
		st.HeapInuse = n
	case "Stack":
		st.StackInuse = n
	case "NextGC":
		st.NextGC = n
	case "NumGC":
		st.NumGC = n
	}
}

func newGetter(base string) getter {
	cl := &http.Client{Timeout: 10 * time.Second}
	return func(path string, each func(line string) bool) error {
		resp, err := cl.Get(strings.TrimRight(base, "/") + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if !each(sc.Text()) {
				break
			}
		}
		return sc.Err()
	}
}
