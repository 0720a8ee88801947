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
// general: the event pipeline's goroutines before the runtime they run on,
// the handshake before the session's connect that calls it). The stages
// are Tether's own session layer (internal/broker: accept, connect, admit,
// establish, park) and the pipeline behind it; bare mochi's frames fall in
// the handshake, the CONNECT read, the CONNACK write and "mochi other".
type perfCategory struct {
	name string
	re   *regexp.Regexp
}

var perfCategories = []perfCategory{
	{"GC background marking", regexp.MustCompile(`runtime\.gcBgMarkWorker`)},
	{"Connections log writer (internal/connlog: SQLite, DuckDB)", regexp.MustCompile(`internal/connlog|modernc\.org|duckdb`)},
	{"compactor's forced collections (internal/app)", regexp.MustCompile(`App\)\.startCompactor|runtime/debug\.FreeOSMemory`)},
	{"embedded NATS server (JetStream)", regexp.MustCompile(`nats-io/nats-server`)},
	{"NATS client (nats.go)", regexp.MustCompile(`nats-io/nats\.go`)},
	{"events, delivery, metrics, insight", regexp.MustCompile(`tether/internal/(events|metrics|insight|alert)`)},
	{"journal (publisher, codec)", regexp.MustCompile(`tether/internal/journal`)},
	{"presence (Tracker.Connect, its queue)", regexp.MustCompile(`tether/internal/presence`)},
	// P-256 assembly often breaks the frame chain: its frames count
	// wherever they appear.
	{"TLS handshake", regexp.MustCompile(`crypto/tls\.\(\*Conn\)\.handshakeContext|nistec|p256|crypto/ecdsa|crypto/ecdh`)},
	{"CONNACK write (record seal, write(2))", regexp.MustCompile(`broker\.\(\*session\)\.write$|mochi-mqtt/server/v2\.\(\*Server\)\.SendConnack`)},
	{"CONNECT read and decode", regexp.MustCompile(`broker\.\(\*reader\)|ConnectDecode|mochi-mqtt/server/v2\.\(\*Server\)\.readConnectionPacket|ParseConnect`)},
	{"SAS check and registry lookup (session.admit)", regexp.MustCompile(`broker\.\(\*session\)\.admit`)},
	{"establish (table claim, wait for the store, CONNACK build)", regexp.MustCompile(`broker\.\(\*session\)\.establish`)},
	{"accept (accept4, epoll registration, listener loop)", regexp.MustCompile(`broker\.\(\*Broker\)\.accept|crypto/tls\.\(\*listener\)\.Accept|net\.\(\*TCPListener\)`)},
	{"park in the idle poller", regexp.MustCompile(`broker\.\(\*session\)\.park|broker\.\(\*idlePoller\)`)},
	{"burst release (FreeOSMemory)", regexp.MustCompile(`debug\.freeOSMemory`)},
	{"Tether broker, other", regexp.MustCompile(`tether-hub/tether/internal/broker`)},
	{"Tether, other", regexp.MustCompile(`tether-hub/tether/`)},
	{"mochi other (client setup, clients map, read loop)", regexp.MustCompile(`mochi-mqtt/server`)},
	{"Go runtime elsewhere (scheduler, sysmon, timers, allocation)", regexp.MustCompile(`^runtime\.|^internal/runtime`)},
}

// perfCategoryOf returns the category of one sample's stack (frames leaf
// first, as perf script prints them).
func perfCategoryOf(stack []string) string {
	for _, c := range perfCategories {
		for _, f := range stack {
			if c.re.MatchString(f) {
				return c.name
			}
		}
	}
	return perfOther
}

const perfOther = "other (kernel, unresolved)"

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
		counts[perfCategoryOf(stack)]++
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
