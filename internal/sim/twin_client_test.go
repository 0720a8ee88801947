package sim

import (
	"strings"
	"testing"
	"time"
)

// newTestTwinClient is a twin client of device "t-3" outside any session.
func newTestTwinClient() *twinClient {
	cfg := &Config{Devices: 5, Prefix: "t", Twin: true, Methods: true, TwinTimeout: time.Second}
	f := &fleet{cfg: cfg, prof: Profiles["node"], twins: &twinRecorder{}, stats: &Stats{}}
	d := &device{f: f, idx: 3, id: "t-3", rnd: seeded()}
	return newTwinClient(d)
}

// What the device side flags in what the hub sends it: answers to a $rid
// it never asked, malformed answers, versions going back, another
// device's desired update or method call.
func TestTwinClientFlagsWrongDeliveries(t *testing.T) {
	tc := newTestTwinClient()
	tc.pending["1"] = twinReq{kind: reqGet, sent: time.Now()}
	tc.pending["2"] = twinReq{kind: reqPatch, sent: time.Now()}
	tc.pending["3"] = twinReq{kind: reqPatch, sent: time.Now()}
	tc.pending["4"] = twinReq{kind: reqGet, sent: time.Now().Add(-time.Minute)}
	tc.sweep() // "4" is past the 1 s timeout

	tc.onPublish("$iothub/twin/res/200/?$rid=1", []byte(`{"desired":{"$version":7},"reported":{"$version":1}}`))
	tc.onPublish("$iothub/twin/res/204/?$rid=2&$version=5", nil)
	tc.onPublish("$iothub/twin/res/204/?$rid=3&$version=4", nil)  // back from 5
	tc.onPublish("$iothub/twin/res/204/?$rid=99&$version=6", nil) // never asked
	tc.onPublish("$iothub/twin/res/200/?$rid=4", []byte(`{"desired":{"$version":7},"reported":{}}`))
	tc.onPublish("$iothub/twin/PATCH/properties/desired/?$version=8", []byte(`{"sim":{"n":4,"dev":"t-1"},"$version":8}`))
	tc.onPublish("$iothub/twin/PATCH/properties/desired/?$version=9", []byte(`{"sim":{"n":5,"dev":"t-3"},"$version":10}`))
	tc.onPublish("$iothub/twin/PATCH/properties/desired/?$version=11", []byte(`{"sim":{"n":6,"dev":"t-3"},"$version":11}`))
	tc.onPublish("$iothub/methods/POST/echo/?$rid=a", []byte(`{"n":7,"dev":"t-2"}`))
	tc.onPublish("$iothub/methods/POST/echo/?$rid=b", []byte(`{"n":8,"dev":"t-3"}`))

	l := tc.d.f.twins.snapshot()
	if l.Get.OK != 1 || l.Get.TimedOut != 1 || l.Get.Late != 1 || tc.desiredVersion != 11 {
		t.Errorf("GET: %+v, desired version %d", l.Get, tc.desiredVersion)
	}
	if l.Reported.OK != 1 || l.Reported.Bad != 1 || l.Reported.Unknown != 1 || !strings.Contains(l.Reported.BadSample, "went back from 5 to 4") {
		t.Errorf("reported: %+v", l.Reported)
	}
	if len(l.Pushes) != 3 || l.Pushes[0].For != "t-1" || !strings.Contains(l.Pushes[1].Bad, "not the topic's 9") || l.Pushes[2].Bad != "" || l.Pushes[2].For != "" {
		t.Errorf("pushes: %+v", l.Pushes)
	}
	if len(l.Calls) != 2 || l.Calls[0].Bad != "a call for t-2" || l.Calls[1].Bad != "" || l.Calls[1].N != 8 {
		t.Errorf("calls: %+v", l.Calls)
	}
	// Outside a session the answers cannot go out.
	if l.Answers != 0 || l.AnswersDropped != 2 {
		t.Errorf("answers %d, dropped %d", l.Answers, l.AnswersDropped)
	}
}
