package twin

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
)

func TestNew(t *testing.T) {
	tw := New(t0)
	if len(tw.Tags) != 0 || len(tw.Desired.Values) != 0 || len(tw.Reported.Values) != 0 {
		t.Errorf("new twin not empty")
	}
	if tw.Desired.Version != 1 || tw.Reported.Version != 1 || tw.Version != 2 || tw.ETagVersion != 1 {
		t.Errorf("new twin counters %d %d %d %d", tw.Desired.Version, tw.Reported.Version, tw.Version, tw.ETagVersion)
	}
	for _, m := range []*Meta{tw.Desired.Meta, tw.Reported.Meta} {
		if !m.LastUpdated.Equal(t0) || m.LastUpdatedVersion != 0 || m.Children == nil {
			t.Errorf("new section metadata %+v", m)
		}
	}
	checkTwin(t, tw)
}

func TestETag(t *testing.T) {
	tw := New(t0)
	for _, tc := range []struct {
		etag int64
		want string
	}{{1, "AAAAAAAAAAE="}, {4, "AAAAAAAAAAQ="}, {256, "AAAAAAAAAQA="}, {1 << 40, "AAABAAAAAAA="}} {
		tw.ETagVersion = tc.etag
		if got := tw.ETag(); got != tc.want {
			t.Errorf("ETag at %d = %s, want %s", tc.etag, got, tc.want)
		}
	}
}

func TestMatchETag(t *testing.T) {
	tw := New(t0) // etag AAAAAAAAAAE=
	for _, tc := range []struct {
		ifMatch string
		want    bool
	}{
		{``, true},
		{`*`, true},
		{`"*"`, true}, // azure-iothub's default, quoted
		{`"AAAAAAAAAAE="`, true},
		{`AAAAAAAAAAE=`, true},
		{`W/"AAAAAAAAAAE="`, true},
		{` "AAAAAAAAAAI=" , "AAAAAAAAAAE=" `, true},
		{`"AAAAAAAAAAI="`, false},
		{`AAAAAAAAAAI=`, false},
		{`"AAAAAAAAAAE`, false},
		{`""`, false},
		{`"aaaaaaaaaae="`, false},
	} {
		if got := tw.MatchETag(tc.ifMatch); got != tc.want {
			t.Errorf("MatchETag(%s) = %v, want %v", tc.ifMatch, got, tc.want)
		}
	}
	if _, err := tw.PatchReported([]byte(`{"a":1}`), at(1)); err != nil {
		t.Fatal(err)
	}
	if !tw.MatchETag(`"AAAAAAAAAAE="`) {
		t.Error("a reported change moved the etag")
	}
	if _, err := tw.ServicePatch([]byte(`{"tags":{"a":1}}`), at(2)); err != nil {
		t.Fatal(err)
	}
	if tw.MatchETag(`"AAAAAAAAAAE="`) || !tw.MatchETag(`"AAAAAAAAAAI="`) {
		t.Error("a tags change did not move the etag")
	}
}

func TestClone(t *testing.T) {
	tw := sampleTwin(t)
	c := tw.Clone()
	if !reflect.DeepEqual(c, tw) {
		t.Fatal("clone differs")
	}
	before := string(mustMarshal(t, tw))
	// Writing into every part of the clone leaves the original alone.
	c.Tags["deploymentLocation"].(map[string]any)["floor"] = "2"
	c.Reported.Values["errors"].([]any)[0] = "none"
	c.Desired.Meta.Children["fw"].LastUpdatedVersion = 99
	c.Reported.Meta.Children["telemetryConfig"].Children["status"].LastUpdated = t0
	if _, err := c.ServicePatch([]byte(`{"tags":{"x":1},"properties":{"desired":{"fw":null}}}`), at(20)); err != nil {
		t.Fatal(err)
	}
	if string(mustMarshal(t, tw)) != before {
		t.Error("changing the clone changed the original")
	}
}

// Readers share a twin; a writer holding the lock replaces what it writes,
// so what readers got before (here: a tags map and a reported object, used
// after the lock is released) is never written under them. Run with -race.
func TestConcurrentReadersAndCopyOnWrite(t *testing.T) {
	tw := sampleTwin(t)
	var mu sync.RWMutex
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for i := range 200 {
				mu.RLock()
				doc := tw.Doc(sampleDevice)
				loc, _ := doc.Lookup([]string{"tags", "deploymentLocation"})
				cfg, _ := doc.Lookup([]string{"properties", "reported", "telemetryConfig"})
				if (r+i)%2 == 0 {
					_ = tw.DeviceJSON()
				} else {
					_, _ = tw.Marshal()
				}
				mu.RUnlock()
				// Used after the lock is gone, while the writer works.
				_ = jsonOf(loc) + jsonOf(cfg)
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			mu.Lock()
			_, err1 := tw.ServicePatch(fmt.Appendf(nil, `{"tags":{"deploymentLocation":{"floor":"%d"}}}`, i), at(100+i))
			_, err2 := tw.PatchReported(fmt.Appendf(nil, `{"telemetryConfig":{"status":"s%d","n":null}}`, i), at(100+i))
			mu.Unlock()
			if err1 != nil || err2 != nil {
				t.Errorf("writes: %v %v", err1, err2)
				return
			}
		}
	})
	wg.Wait()
	checkTwin(t, tw)
}
