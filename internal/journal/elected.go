package journal

import (
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
)

// A publish sent while its stream has no leader — the leader was killed
// or stepped down, and the followers elect — goes nowhere: followers drop
// what is not proposed by a leader, and nothing answers. The sweep retries
// it after ackTimeout (10 s); in a cluster that wait came on top of every
// election after a node loss (docs/SCALING.md: a node-lost record written
// by the reaper while TETHER_CONN elected waited the full 10 s). JetStream
// announces each new stream leader, so the publisher retries at once what
// is still unanswered from before the announcement.

// leaderElectedSubject is JetStream's advisory of a new stream leader
// (nats-server's JSAdvisoryStreamLeaderElectedPre), sent in the stream's
// account.
const leaderElectedSubject = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.>"

// electedGrace: a publish sent less than this before the announcement may
// have reached the new leader and be answered yet; it is left to the
// sweep. (A retry of one that was stored after all is stored once: same
// message id; telemetry has none, and is at least once.)
const electedGrace = 250 * time.Millisecond

// watchElections subscribes to the leader announcements (nil when the
// connection refuses: the sweep still retries, later).
func (p *Publisher) watchElections() *nats.Subscription {
	sub, err := p.nc.Subscribe(leaderElectedSubject, func(m *nats.Msg) {
		p.sweepOlder(electedGrace, "a stream leader was elected after it was sent")
	})
	if err != nil {
		p.log.Warn("journal: cannot watch stream leader elections; unanswered publishes wait for the sweep", "err", err)
		return nil
	}
	return sub
}

// sweepOlder retries the publishes sent more than age ago that have no
// answer yet, in the order they were sent.
func (p *Publisher) sweepOlder(age time.Duration, why string) {
	cutoff := time.Now().Add(-age)
	var lost []uint64
	p.pmu.Lock()
	for id, in := range p.pending {
		if in.sent.Before(cutoff) {
			lost = append(lost, id)
		}
	}
	p.pmu.Unlock()
	slices.Sort(lost)
	for _, id := range lost {
		if in := p.take(id); in != nil {
			p.retryLater(in, fmt.Errorf("journal: no ack: %s", why))
		}
	}
}
