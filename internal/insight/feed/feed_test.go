package feed_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/insight/feed"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

func openJournal(t testing.TB) *journal.Journal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := journal.Open(ctx, journal.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	return j
}

// history makes n connection events of a fleet of devices through
// presence's Tracker (a fake clock starting at start): connects, token
// renewals, drops, takeovers and refusals in a realistic mix.
func history(n, devices int, start time.Time, seed uint64) []presence.ConnectionEvent {
	now := start
	var out []presence.ConnectionEvent
	tr := presence.NewTracker(presence.Options{Hub: "bench.example", Epoch: presence.Filetime(start), Now: func() time.Time { return now },
		Sink: func(ev presence.ConnectionEvent) { out = append(out, ev) }})
	r := rand.New(rand.NewPCG(seed, 1))
	sess := make([]*presence.Session, devices)
	step := time.Second / 5000 // 5,000 events a second of event time
	for len(out) < n {
		now = now.Add(step)
		i := r.IntN(devices)
		id := fmt.Sprintf("dev-%06d", i)
		src := fmt.Sprintf("10.%d.%d.XXX", i%200, (i/200)%250)
		if s := sess[i]; s != nil {
			switch k := r.IntN(10); {
			case k < 5: // renewal: DISCONNECT, then connect below
				tr.Disconnect(s, presence.ReasonClient, presence.ResultOK, "")
			case k < 8:
				tr.Disconnect(s, presence.ReasonNetwork, presence.ResultClosedRemotely, "connection closed without MQTT DISCONNECT")
			case k < 9:
				tr.Disconnect(s, presence.ReasonKeepAlive, presence.ResultClosedRemotely, "")
			default: // taken over: the new session replaces it below
			}
		} else if r.IntN(8) == 0 {
			tr.Refuse(presence.ConnectionEvent{DeviceID: id, MaskedIP: src, SDKVersion: "azure-iot-device/1.18.4 (node v20)",
				Protocol: "MQTT", Reason: presence.ReasonAuthFailed, Result: presence.ResultUnauthorized,
				AuthFailure: presence.AuthBadSignature, Detail: "the token was not signed with this key"})
			continue
		}
		sess[i] = &presence.Session{
			ID: fmt.Sprintf("%032x", r.Uint64()), DeviceID: id, Protocol: "MQTT", ProtocolVersion: 4, MaskedIP: src,
			SDKVersion: "azure-iot-device/1.18.4 (node v20)", AuthType: "sas", KeepAliveSeconds: 180,
			TokenExpiry: now.Add(time.Hour + time.Duration(len(out))*time.Millisecond),
		}
		tr.Connect(sess[i])
	}
	return out[:n]
}

// publish appends events to the journal and waits until they are stored.
func publish(t testing.TB, j *journal.Journal, evs []presence.ConnectionEvent) {
	t.Helper()
	p := journal.NewPublisher(j.JS, 1<<16, slog.New(slog.DiscardHandler))
	for _, ev := range evs {
		// A replayed history is stored in the order given. Keyed (by
		// device), a device's next event would wait for its previous
		// one's ack and land behind other devices' later events.
		m := journal.ConnectionEventMsg(ev)
		m.Key = ""
		if err := p.Publish(m); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func waitApplied(t testing.TB, f *feed.Feed, n uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for f.Engine().Applied() < n || !f.Status().CaughtUp {
		if time.Now().After(deadline) {
			t.Fatalf("applied %d of %d: %+v", f.Engine().Applied(), n, f.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func start(t testing.TB, j *journal.Journal, path string) *feed.Feed {
	t.Helper()
	f, err := feed.New(feed.Options{JS: j.JS, Path: path, Insight: insight.Options{Hub: "bench.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

func stop(t testing.TB, f *feed.Feed) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// The feed applies every event once: a restart resumes from the saved
// positions (only the new events are applied), a damaged state file is set
// aside and the engine rebuilt from the journal with the same answers.
func TestFeedResumesAndRebuilds(t *testing.T) {
	j := openJournal(t)
	evs := history(3000, 200, time.Now().Add(-time.Hour), 1)
	publish(t, j, evs[:2000])
	path := filepath.Join(t.TempDir(), "insight.state")
	f := start(t, j, path)
	waitApplied(t, f, 2000)
	stop(t, f)

	publish(t, j, evs[2000:])
	f = start(t, j, path)
	waitApplied(t, f, 1000)
	if got := f.Engine().Applied(); got != 3000 {
		t.Fatalf("after resuming: %d events applied in all, want 3000 (each once)", got)
	}
	want, err := f.Engine().Diagnose("dev-000007", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, f)

	if err := os.WriteFile(path, []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	f = start(t, j, path)
	waitApplied(t, f, 3000)
	if _, err := os.Stat(path + ".bad"); err != nil {
		t.Errorf("the damaged state was not kept aside: %v", err)
	}
	got, err := f.Engine().Diagnose("dev-000007", want.Since, want.Until)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Verdicts) != fmt.Sprint(want.Verdicts) || got.Numbers.Connects != want.Numbers.Connects {
		t.Errorf("rebuilt engine answers differently:\n%+v\n%+v", got.Numbers, want.Numbers)
	}
	stop(t, f)
}
