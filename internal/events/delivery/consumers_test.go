package delivery

import (
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// A subscription's consumer reads TETHER_CONN whole (filtered by the
// stream's own subject: see streamKind.subjects); a refusal becomes no POST but is acknowledged,
// so the consumer's position moves past it. A consumer made by an older
// hub with the filter keeps its position when the engine drops the filter:
// the event journalled while no engine ran is delivered once, in order.
func TestConnConsumerWholeStream(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("fleet", rc.URL)
	if err := v.eng.Stop(v.ctx); err != nil {
		t.Fatal(err)
	}
	// The consumer as the previous version left it, filtered.
	cfg := v.consumerInfo(journal.StreamConn, "fleet").Config
	cfg.FilterSubjects = []string{journal.ConnPrefix + "*.connected", journal.ConnPrefix + "*.disconnected"}
	if _, err := v.j.JS.CreateOrUpdateConsumer(v.ctx, journal.StreamConn, cfg); err != nil {
		t.Fatal(err)
	}
	a := v.conn("d1", presence.Connected) // while no engine runs
	v.start()
	v.conn("d2", presence.Refused, func(ce *presence.ConnectionEvent) { ce.Sequence = "" })
	b := v.conn("d1", presence.Disconnected)
	defer func() {
		if t.Failed() {
			i := v.consumerInfo(journal.StreamConn, "fleet")
			st, _ := v.j.JS.Stream(v.ctx, journal.StreamConn)
			t.Logf("stream %+v", st.CachedInfo().State)
			t.Logf("consumer %+v delivered %v stats %+v", *i, rc.delivered(), v.stats("fleet"))
		}
	}()
	eventually(t, "both delivered and acknowledged", func() bool {
		i := v.consumerInfo(journal.StreamConn, "fleet")
		return len(rc.delivered()) == 2 && i.NumAckPending == 0 && i.AckFloor.Stream == 3 && i.NumPending == 0
	})
	if got := rc.deliveredIDs("d1"); !equal(got, ids(a, b)) {
		t.Errorf("d1 got %v, want %v", got, ids(a, b))
	}
	if got := rc.deliveredIDs("d2"); len(got) != 0 {
		t.Errorf("a refusal was delivered: %v", got)
	}
	if i := v.consumerInfo(journal.StreamConn, "fleet"); len(i.Config.FilterSubjects) > 1 ||
		(i.Config.FilterSubject+strings.Join(i.Config.FilterSubjects, "") != journal.ConnPrefix+">") {
		t.Errorf("consumer filtered to part of the stream: %q %q", i.Config.FilterSubjects, i.Config.FilterSubject)
	}
}
