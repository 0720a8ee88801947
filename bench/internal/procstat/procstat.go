// Package procstat reads what the connect-storm benchmark needs about another
// process from /proc (Linux only): CPU time, resident memory, open files, and
// the kernel's listen-queue overflow counter.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// TickDuration is one clock tick of /proc/<pid>/stat (USER_HZ is 100 on Linux).
const TickDuration = 10 * time.Millisecond

// CPU returns utime+stime of pid, in TickDuration units.
func CPU(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces; fields
	// are counted after its closing one. utime and stime are fields 14 and
	// 15 (1-based), i.e. 11 and 12 after "state".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return u + s, nil
}

// RSSKiB returns VmRSS of pid in KiB.
func RSSKiB(pid int) (int64, error) {
	return statusField(pid, "VmRSS:")
}

// Threads returns the number of OS threads of pid.
func Threads(pid int) (int64, error) {
	return statusField(pid, "Threads:")
}

func statusField(pid int, name string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
			v := strings.Fields(rest)
			if len(v) == 0 {
				break
			}
			return strconv.ParseInt(v[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, name)
}

// FDs returns the number of open file descriptors of pid.
func FDs(pid int) (int, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(4096)
		n += len(names)
		if err != nil || len(names) == 0 {
			return n, nil
		}
	}
}

// ListenOverflows returns the TcpExt ListenOverflows counter of this network
// namespace (SYNs dropped because an accept queue was full).
func ListenOverflows() (int64, error) {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return 0, err
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "TcpExt:") || !strings.HasPrefix(lines[i+1], "TcpExt:") {
			continue
		}
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j := range names {
			if names[j] == "ListenOverflows" && j < len(vals) {
				return strconv.ParseInt(vals[j], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/net/netstat: no TcpExt ListenOverflows")
}

// RunNanos returns the CPU time pid's live threads have run, in
// nanoseconds (the sum of /proc/<pid>/task/*/schedstat's first field).
// Unlike CPU it resolves a few milliseconds, which short idle windows
// need (one 10 ms tick is 4 % of a core over 250 ms), but it forgets
// threads that have exited: compare it over short windows only.
func RunNanos(pid int) (int64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, n := range names {
		b, err := os.ReadFile(dir + "/" + n + "/schedstat")
		if err != nil {
			continue // the thread exited meanwhile
		}
		f, _, _ := strings.Cut(string(b), " ")
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %q", dir, n, b)
		}
		sum += v
	}
	return sum, nil
}

// IdleRate returns the share of one core pid used over the next d (from
// RunNanos).
func IdleRate(pid int, d time.Duration) (float64, error) {
	a, err := RunNanos(pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	time.Sleep(d)
	b, err := RunNanos(pid)
	if err != nil {
		return 0, err
	}
	return max(0, float64(b-a)/float64(time.Since(t0))), nil
}

// WaitQuiet waits until pid has used at most maxBusy of one core over each
// of `need` consecutive windows, or until timeout. It returns how long it
// waited and whether the process became quiet. The windows are read with
// RunNanos, so short windows and small maxBusy are resolved.
func WaitQuiet(pid int, window time.Duration, need int, maxBusy float64, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	prev, err := RunNanos(pid)
	if err != nil {
		return 0, false
	}
	at := time.Now()
	streak := 0
	for time.Since(start) < timeout {
		time.Sleep(window)
		cur, err := RunNanos(pid)
		if err != nil {
			return time.Since(start), false
		}
		now := time.Now()
		busy := float64(cur-prev) / float64(now.Sub(at))
		prev, at = cur, now
		if busy <= maxBusy {
			streak++
			if streak >= need {
				return time.Since(start), true
			}
		} else {
			streak = 0
		}
	}
	return time.Since(start), false
}

// SystemBusy returns the machine-wide non-idle CPU time (all cores, from the
// first line of /proc/stat, idle and iowait excluded) in TickDuration units.
func SystemBusy() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for i, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q", line)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user, so stop at steal.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += v
	}
	return busy, nil
}
