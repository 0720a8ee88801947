package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// sample is one paired disconnect: the client's close, the hub's
// eventTime and the webhook's arrival. -samples writes them all, so a slow
// stretch can be laid beside the hub's own timeline (gctrace, block files).
type sample struct {
	phase                 int
	close, event, arrived time.Time
}

// writeSamples writes the paired disconnects as CSV (unix nanoseconds),
// after a header that gives the hub's process start (gctrace's "@t s" is
// relative to it) and each phase's start.
func writeSamples(path string, hubStart time.Time, r *report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# hub_start_unix_ns=%d\n", hubStart.UnixNano())
	for i, ph := range r.phases {
		fmt.Fprintf(w, "# phase=%d rate=%d start_unix_ns=%d end_unix_ns=%d\n", i, ph.rate, ph.start.UnixNano(), ph.end.UnixNano())
	}
	fmt.Fprintln(w, "phase,close_ns,event_ns,arrived_ns")
	for _, s := range r.samples {
		fmt.Fprintf(w, "%d,%d,%d,%d\n", s.phase, s.close.UnixNano(), s.event.UnixNano(), s.arrived.UnixNano())
	}
	// Each cycle's CONNECT → CONNACK: the connect waits for its event to
	// be stored, so a slow journal shows here, a slow delivery does not.
	fmt.Fprintln(w, "connack,phase,sent_ns,connack_ns")
	for i, ph := range r.phases {
		for _, st := range ph.cycleLog {
			if !st.sent.IsZero() {
				fmt.Fprintf(w, "connack,%d,%d,%d\n", i, st.sent.UnixNano(), st.sent.Add(st.connack).UnixNano())
			}
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// procStart is when process pid started, from /proc: boot time (now −
// /proc/uptime) plus the process's start in clock ticks (100 Hz on Linux),
// so within ~20 ms.
func procStart(pid int) (time.Time, error) {
	up, err := os.ReadFile("/proc/uptime")
	now := time.Now()
	if err != nil {
		return time.Time{}, err
	}
	upSec, err := strconv.ParseFloat(strings.Fields(string(up))[0], 64)
	if err != nil {
		return time.Time{}, err
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, err
	}
	// Fields after the command's closing parenthesis; starttime is the
	// 22nd field of the line, the 20th after it.
	rest := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	if len(rest) < 20 {
		return time.Time{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(rest))
	}
	ticks, err := strconv.ParseInt(rest[19], 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	boot := now.Add(-time.Duration(upSec * float64(time.Second)))
	return boot.Add(time.Duration(ticks) * 10 * time.Millisecond), nil
}
