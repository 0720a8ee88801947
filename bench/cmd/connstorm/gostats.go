package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// goStats is what a Go broker's /debug/pprof says about its memory: the
// goroutine count and runtime.MemStats (from the heap profile's debug=1
// trailer, which does not force a GC).
type goStats struct {
	goroutines int64
	heapInuse  int64 // bytes
	stackInuse int64 // bytes
}

func fetchGoStats(base string) (goStats, error) {
	var st goStats
	cl := &http.Client{Timeout: 10 * time.Second}
	get := func(path string, each func(line string) bool) error {
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
	err := get("/debug/pprof/goroutine?debug=1", func(l string) bool {
		if rest, ok := strings.CutPrefix(l, "goroutine profile: total "); ok {
			st.goroutines, _ = strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
		return false // first line only
	})
	if err != nil {
		return st, err
	}
	err = get("/debug/pprof/heap?debug=1", func(l string) bool {
		// "# HeapInuse = N", "# Stack = StackInuse / StackSys"
		if name, val, ok := strings.Cut(strings.TrimPrefix(l, "# "), " = "); ok {
			val, _, _ = strings.Cut(val, " /")
			n, _ := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
			switch name {
			case "HeapInuse":
				st.heapInuse = n
			case "Stack":
				st.stackInuse = n
			}
		}
		return true
	})
	return st, err
}
