package insight_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/insight"
)

// FuzzDecodeRecord: any payload decodes to a valid record or an error
// wrapping ErrMalformed, never a panic; a decoded record encodes and
// decodes to itself.
func FuzzDecodeRecord(f *testing.F) {
	inc := &insight.Incident{ID: "md-1", State: insight.IncidentOpen, Start: time.Unix(1700000000, 0).UTC(), Devices: 3,
		Groups: []insight.Group{{Dimension: insight.DimReason, Values: []insight.GroupValue{{Value: "network", Devices: 3, Share: 1}}}}}
	for _, r := range []insight.Record{
		{ID: "md-1:open", Kind: insight.KindMassDisconnect, Time: time.Unix(1700000003, 0).UTC(), Hub: "h", Source: 7, Incident: inc},
		{ID: "flap:d:flapping:x", Kind: insight.KindDeviceFlapping, Time: time.Unix(1700000003, 0).UTC(), Flap: &insight.FlapChange{DeviceID: "d", Flapping: true, Score: 7}},
	} {
		b, err := insight.EncodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x","kind":"massDisconnect"}`))
	f.Add([]byte(`{"id":"x","kind":"deviceFlapping","flap":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := insight.DecodeRecord(data)
		if err != nil {
			return
		}
		b, err := insight.EncodeRecord(r)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		again, err := insight.DecodeRecord(b)
		if err != nil || again.ID != r.ID || again.Kind != r.Kind || again.Key() != r.Key() {
			t.Fatalf("round trip: %v %+v %+v", err, again, r)
		}
	})
}

// FuzzLoad: a snapshot file of any content is loaded or refused with
// ErrSnapshot; a refused one leaves the engine answering as before.
func FuzzLoad(f *testing.F) {
	fl := newFleet(&testing.T{}, insight.Options{})
	id := duplicate(fl)
	var buf bytes.Buffer
	if err := fl.engine.Save(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e := insight.NewEngine(insight.Options{Hub: "test-hub.example"})
		if err := e.Load(bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatal(err)
		}
		before, _ := e.Diagnose(id, time.Time{}, time.Time{})
		if err := e.Load(bytes.NewReader(data)); err != nil {
			after, _ := e.Diagnose(id, time.Time{}, time.Time{})
			if after.Summary != before.Summary || len(after.Verdicts) != len(before.Verdicts) {
				t.Fatalf("a refused snapshot changed the engine")
			}
			return
		}
		// Loaded: the engine answers without panicking.
		_, _ = e.Diagnose(id, time.Time{}, time.Time{})
		_ = e.Flapping(0)
		_ = e.Incidents(0)
	})
}
