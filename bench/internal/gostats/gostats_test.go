package gostats

import (
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"testing"
)

// Fetch reads this test process's own /debug/pprof, served on loopback.
func TestFetch(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	st, err := Fetch("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if st.Goroutines < 2 {
		t.Errorf("goroutines %d: the test and the server run at least two", st.Goroutines)
	}
	if st.HeapInuse <= 0 || st.StackInuse <= 0 || st.NextGC <= 0 {
		t.Errorf("heap in use %d, stacks %d, next GC %d: want all > 0", st.HeapInuse, st.StackInuse, st.NextGC)
	}
	if st.NextGC != int64(ms.NextGC) && ms.NumGC > 0 {
		// The goal changes only at a GC; one may have run in between.
		t.Logf("next GC %d here, %d in MemStats now", st.NextGC, ms.NextGC)
	}
	if _, err := Fetch("http://" + ln.Addr().String() + "/nothing"); err == nil {
		t.Error("no error from a path that serves no profiles")
	}
}

func TestParseLine(t *testing.T) {
	var st Stats
	for _, l := range []string{"# HeapInuse = 1024", "# Stack = 2048 / 4096", "# NextGC = 8192", "# NumGC = 3", "garbage", "# HeapInuse = x"} {
		st.parseLine(l)
	}
	if st.HeapInuse != 1024 || st.StackInuse != 2048 || st.NextGC != 8192 || st.NumGC != 3 {
		t.Fatalf("parsed %+v", st)
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"# HeapInuse = 1024", "# Stack = 2048 / 4096", "# NextGC = 8192", "# = ", " = /", "# Stack = / /"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, l string) {
		var st Stats
		st.parseLine(l) // must not panic
		// A field is set only by a line that names it.
		for name, v := range map[string]int64{"HeapInuse = ": st.HeapInuse, "Stack = ": st.StackInuse, "NextGC = ": st.NextGC} {
			if v != 0 && !strings.Contains(l, name) {
				t.Fatalf("%q set %s to %d", l, name, v)
			}
		}
	})
}
