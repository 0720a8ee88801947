package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A stage of the connection-event path, recognised in a CPU profile's
// stack: the first stage (in this order) with a frame matching its
// pattern takes the sample. The order settles stacks that cross stages:
// the log writer's fetches count as the log writer, not as the NATS
// client; a session's journal wait as the session.
type stage struct {
	name string
	re   *regexp.Regexp
}

var stages = []stage{
	{"GC and runtime background", regexp.MustCompile(`^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge|sysmon|forcegchelper)`)},
	{"log writer (connlog: decode, records, store)", regexp.MustCompile(`internal/connlog`)},
	{"metrics (counting consumer, samplers)", regexp.MustCompile(`internal/metrics`)},
	{"insight feed", regexp.MustCompile(`internal/insight`)},
	{"delivery: HTTP POST (request, net/http, socket)", regexp.MustCompile(`^net/http\.|delivery\.\(\*(webhook|directSender|h1|h1Conn)\)|delivery\.stateless`)},
	{"delivery: fetch, decode, filter, queues, acks", regexp.MustCompile(`internal/events`)},
	{"journal fanout (metrics + insight reader: fetch, decode once)", regexp.MustCompile(`journal\.\(\*ConnFanout\)`)},
	{"journal publish (encode, publisher, acks)", regexp.MustCompile(`internal/journal\.`)},
	{"broker: session end (read loop, close, disconnect event)", regexp.MustCompile(`broker\.\(\*session\)\.(run|end)$`)},
	{"broker: accept and connect (CONNECT, auth, presence, CONNACK)", regexp.MustCompile(`internal/(broker|presence|registry|sas)`)},
	{"journal server (nats-server: store, consumers, acks)", regexp.MustCompile(`nats-io/nats-server`)},
	{"NATS client (parse, dispatch to consumers)", regexp.MustCompile(`nats-io/nats(%2e|\.)go`)},
	{"HTTPS API and other hub code", regexp.MustCompile(`tether-hub/tether/`)},
}

// stageShare is one stage's CPU in a profile.
type stageShare struct {
	name string
	cpu  time.Duration
}

// profileStages attributes the samples of a CPU profile (read with `go
// tool pprof -traces`) to stages; what matches none is "other runtime and
// system" (scheduler, syscalls reached from no hub frame).
func profileStages(bin, profile string) ([]stageShare, time.Duration, error) {
	out, err := exec.Command("go", "tool", "pprof", "-traces", bin, profile).Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go tool pprof -traces %s: %w", profile, err)
	}
	sums := make([]time.Duration, len(stages)+1)
	var total time.Duration
	flush := func(v time.Duration, frames []string) {
		if v == 0 {
			return
		}
		total += v
		for i, s := range stages {
			for _, f := range frames {
				if s.re.MatchString(f) {
					sums[i] += v
					return
				}
			}
		}
		sums[len(stages)] += v
	}
	var v time.Duration
	var frames []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	label := regexp.MustCompile(`^\s*[\w-]+:\s`)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-----------+"):
			flush(v, frames)
			v, frames = 0, nil
		case label.MatchString(line) || strings.TrimSpace(line) == "":
			// pprof labels (nats-server's stream/consumer) and blanks
		case v == 0 && len(frames) == 0:
			// "      10ms   frame": the sample's value, then its leaf
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			d, err := time.ParseDuration(f[0])
			if err != nil {
				continue
			}
			v, frames = d, []string{f[1]}
		default:
			frames = append(frames, strings.TrimSpace(line))
		}
	}
	flush(v, frames)
	var res []stageShare
	for i, s := range stages {
		res = append(res, stageShare{s.name, sums[i]})
	}
	res = append(res, stageShare{"other runtime and system (scheduler, syscalls)", sums[len(stages)]})
	return res, total, sc.Err()
}

// stagesTable is the markdown breakdown of a profile: per stage, its
// share and its CPU per cycle (the share of the phase's hub CPU per
// cycle).
func stagesTable(res []stageShare, total time.Duration, usPerCycle float64) string {
	var b strings.Builder
	b.WriteString("| stage | share of hub CPU | µs per cycle |\n|---|---:|---:|\n")
	for _, s := range res {
		if total == 0 {
			break
		}
		share := float64(s.cpu) / float64(total)
		b.WriteString("| " + s.name + " | " + strconv.FormatFloat(100*share, 'f', 1, 64) + " % | " +
			strconv.FormatFloat(share*usPerCycle, 'f', 0, 64) + " |\n")
	}
	return b.String()
}
