package sim

import (
	"testing"
	"time"
)

// A node's outage touches only what was open on that node when it began;
// the one hub's touches everything.
func TestOutageOfMatchesTheNodeAndTheTime(t *testing.T) {
	t0 := time.Now()
	f := &fleet{outages: []outage{{addr: "n3", at: t0, crash: true}}}
	sec := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cases := []struct {
		addr       string
		began, end time.Time
		want       bool
	}{
		{"n3", sec(-5), sec(1), true},   // open across the kill
		{"n3", sec(-5), t0, true},       // ended at the kill
		{"n3", sec(-5), sec(-1), false}, // ended before
		{"n3", sec(1), sec(2), false},   // began after (on the restarted node)
		// began in the moment between the planned kill and the SIGKILL
		{"n3", t0.Add(200 * time.Millisecond), t0.Add(300 * time.Millisecond), true},
		{"n1", sec(-5), sec(1), false}, // another node
	}
	for _, c := range cases {
		if got := f.outageOf(c.addr, c.began, c.end) != nil; got != c.want {
			t.Errorf("outageOf(%s, %v, %v) = %v, want %v", c.addr, c.began.Sub(t0), c.end.Sub(t0), got, c.want)
		}
	}
	f.stopping("n1")
	if f.outageOf("n1", sec(-5), sec(5)) == nil {
		t.Error("a stop of n1 beginning now does not touch a session open across it")
	}
	one := &fleet{outages: []outage{{at: t0, crash: true}}}
	if one.outageOf("any", sec(-1), sec(1)) == nil {
		t.Error("the one hub's crash does not touch a session open across it")
	}
}

func TestOutageEnded(t *testing.T) {
	cases := []struct {
		o                outage
		own, result, alt string
		cause            Cause
	}{
		{outage{crash: true}, ResultTakeover, ResultServerError, ResultTakeover, CauseHubCrash},
		{outage{addr: "n3", crash: true}, ResultClosedRemotely, ResultClosedRemotely, ResultServerError, CauseHubCrash},
		{outage{addr: "n3", crash: true}, ResultTakeover, ResultClosedRemotely, ResultTakeover, CauseHubCrash},
		{outage{addr: "n1"}, ResultTakeover, ResultOK, ResultTakeover, CauseNodeStop},
	}
	for _, c := range cases {
		r, a, cs := c.o.ended(c.own)
		if r != c.result || a != c.alt || cs != c.cause {
			t.Errorf("%+v.ended(%q) = %q %q %s, want %q %q %s", c.o, c.own, r, a, cs, c.result, c.alt, c.cause)
		}
	}
	// A rolling restart's node is down from its stop until it is back.
	t0 := time.Now()
	f := &fleet{}
	f.stopping("n1")
	if !f.nodeDown("n1", t0, time.Now()) || f.nodeDown("n2", t0, time.Now()) {
		t.Error("n1 stopping: nodeDown should say so for n1 only")
	}
	f.restarted("n1")
	later := time.Now().Add(time.Millisecond)
	if f.nodeDown("n1", later, later) {
		t.Error("n1 is back: a connect after that is not during its restart")
	}
}

// A rolling restart needs a cluster.
func TestRollingRestartNeedsNodes(t *testing.T) {
	fs, err := ParseFaults("rolling-restart=10s")
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Devices: 10, Duration: time.Minute, Faults: fs, MQTTAddr: "127.0.0.1:1", HTTPSAddr: "127.0.0.1:2"}
	c.Defaults()
	if err := c.Validate(); err == nil {
		t.Error("rolling-restart against one hub address passed validation")
	}
	c.MQTTAddrs = []string{"127.0.0.1:1", "127.0.0.1:3"}
	if err := c.Validate(); err != nil {
		t.Errorf("rolling-restart against two nodes: %v", err)
	}
}
