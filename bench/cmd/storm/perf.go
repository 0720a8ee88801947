package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strings"
)

// A perf category: the first whose pattern matches any frame of a sample's
// stack gets the sample, so the order is a priority (specific before
// general: a Tether hook runs inside mochi's connection goroutine).
type perfCategory struct {
	name string
	re   *regexp.Regexp
}

var perfCategories = []perfCategory{
	{"GC background marking", regexp.MustCompile(`runtime\.gcBgMarkWorker`)},
	{"Connections log writer (internal/connlog → SQLite)", regexp.MustCompile(`internal/connlog`)},
	{"embedded NATS server (JetStream)", regexp.MustCompile(`nats-io/nats-server`)},
	{"NATS client (nats.go)", regexp.MustCompile(`nats-io/nats\.go`)},
	{"TLS handshake", regexp.MustCompile(`crypto/tls\.\(\*Conn\)\.(Handshake|handshakeContext|serverHandshake)|^p256`)},
	{"Tether hook OnConnect (device lock + SAS auth)", regexp.MustCompile(`internal/broker\.\(\*hook\)\.OnConnect$`)},
	{"Tether hook OnSessionEstablished (presence event)", regexp.MustCompile(`internal/broker\.\(\*hook\)\.OnSessionEstablished$`)},
	{"Tether hook OnDisconnect", regexp.MustCompile(`internal/broker\.\(\*hook\)\.OnDisconnect$`)},
	{"Tether hooks, other", regexp.MustCompile(`internal/broker\.\(\*hook\)`)},
	{"Tether goroutines: presence, journal, registry, metrics", regexp.MustCompile(`tether-hub/tether/internal/(presence|journal|registry|telemetry|metrics|app|api)`)},
	{"mochi connection handling (accept, CONNECT, CONNACK, client setup, read loop)", regexp.MustCompile(`mochi-mqtt/server|tether-hub/tether/internal/broker`)},
	{"Go runtime elsewhere (scheduler, sysmon, timers, allocation)", regexp.MustCompile(`^runtime\.|^internal/runtime`)},
}

// perfShare is one category's part of a profile.
type perfShare struct {
	Name    string  `json:"name"`
	Samples int     `json:"samples"`
	Percent float64 `json:"percent"`
}

// perfBreakdown reads a perf.data file (via `perf script`) and splits its
// samples over perfCategories.
func perfBreakdown(ctx context.Context, file string) ([]perfShare, int, error) {
	out, err := exec.CommandContext(ctx, "perf", "script", "-i", file, "-F", "ip,sym").Output()
	if err != nil {
		return nil, 0, fmt.Errorf("perf script: %w", err)
	}
	counts := map[string]int{}
	total := 0
	var stack []string
	flush := func() {
		if len(stack) == 0 {
			return
		}
		total++
		for _, c := range perfCategories {
			for _, f := range stack {
				if c.re.MatchString(f) {
					counts[c.name]++
					return
				}
			}
		}
		counts["other (kernel, unresolved)"]++
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			flush()
			stack = stack[:0]
			continue
		}
		if _, sym, ok := strings.Cut(line, " "); ok {
			stack = append(stack, strings.TrimSpace(sym))
		}
	}
	flush()
	var shares []perfShare
	for name, n := range counts {
		shares = append(shares, perfShare{Name: name, Samples: n, Percent: 100 * float64(n) / float64(max(total, 1))})
	}
	sort.Slice(shares, func(i, j int) bool { return shares[i].Samples > shares[j].Samples })
	return shares, total, nil
}
