package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, id := range []string{"", "dev1", "a.b", "a*b>c", "50%", "sp ace", "é", "dev%2Fx", "%"} {
		tok := EncodeToken(id)
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c == '.' || c == '*' || c == '>' || c <= ' ' {
				t.Fatalf("EncodeToken(%q) = %q has %q", id, tok, c)
			}
		}
		back, ok := DecodeToken(tok)
		if !ok || back != id {
			t.Errorf("DecodeToken(EncodeToken(%q)) = %q, %v", id, back, ok)
		}
	}
	if _, ok := DecodeToken("bad%Z1"); ok {
		t.Error("decoded a malformed token")
	}
}

func FuzzToken(f *testing.F) {
	f.Add("dev.1*>%")
	f.Fuzz(func(t *testing.T, id string) {
		back, ok := DecodeToken(EncodeToken(id))
		if !ok || back != id {
			t.Fatalf("%q → %q", id, back)
		}
	})
}

func open(t testing.TB, dir string) *Journal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// The start epoch grows across reopenings even when the clock goes back.
func TestNextEpochAlwaysGrows(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	j := open(t, dir)
	e1, err := j.NextEpoch(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, dir)
	defer j.Close()
	e2, err := j.NextEpoch(ctx, 500) // clock went backwards
	if err != nil {
		t.Fatal(err)
	}
	e3, _ := j.NextEpoch(ctx, 5000)
	if e1 != 1000 || e2 != 1001 || e3 != 5000 {
		t.Fatalf("epochs %d %d %d, want 1000 1001 5000", e1, e2, e3)
	}
}

// The publisher stores messages in enqueue order; LastConnState reports
// each device's newest connected/disconnected record.
func TestPublisherOrderAndLastConnState(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	p := NewPublisher(j.JS, 16, slog.Default())
	type ev struct {
		Kind string `json:"kind"`
		N    int    `json:"n"`
	}
	kinds := []string{"connected", "disconnected"}
	for n := range 100 {
		dev := []string{"a", "b.c"}[n%2]
		e := ev{Kind: kinds[(n/2)%2], N: n}
		if err := p.Publish(Msg{Subject: ConnSubject(dev, e.Kind), ID: fmt.Sprintf("%s-%d", dev, n),
			Encode: func() ([]byte, error) { return json.Marshal(e) }}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Published() != 100 || p.Failed() != 0 {
		t.Fatalf("published %d failed %d", p.Published(), p.Failed())
	}
	st, _ := j.JS.Stream(ctx, StreamConn)
	for seq := uint64(1); seq <= 100; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var e ev
		_ = json.Unmarshal(m.Data, &e)
		if e.N != int(seq)-1 {
			t.Fatalf("stream seq %d holds event %d", seq, e.N)
		}
	}
	got := map[int]bool{}
	if err := j.LastConnState(ctx, func(data []byte) {
		var e ev
		_ = json.Unmarshal(data, &e)
		got[e.N] = true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[98] || !got[99] {
		t.Fatalf("last states %v, want events 98 and 99", got)
	}
}

// TestPublisherDone: Done reports each message once, after the stream holds
// it (the hub waits on it before a CONNACK), or with the encoding error.
func TestPublisherDone(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	p := NewPublisher(j.JS, 64, slog.Default())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := j.JS.Stream(ctx, StreamConn)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300 // more than the async window
	results := make(chan error, n+1)
	for i := range n {
		err := p.Publish(Msg{Subject: ConnSubject(fmt.Sprintf("d%d", i), "connected"), Data: []byte("{}"),
			Done: func(err error) {
				if err == nil {
					// Stored means readable now, not eventually.
					if _, gerr := st.GetMsg(ctx, uint64(i)+1); gerr != nil {
						err = fmt.Errorf("done before stored: %w", gerr)
					}
				}
				results <- err
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	bad := errors.New("cannot encode")
	_ = p.Publish(Msg{Subject: ConnSubject("x", "connected"), Encode: func() ([]byte, error) { return nil, bad },
		Done: func(err error) { results <- err }})
	// Without Close: acks are reported as they arrive, not at shutdown.
	var stored, failed int
	for i := range n + 1 {
		select {
		case err := <-results:
			switch {
			case err == nil:
				stored++
			case errors.Is(err, bad):
				failed++
			default:
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("only %d of %d Done calls arrived", i, n+1)
		}
	}
	if stored != n || failed != 1 {
		t.Fatalf("stored %d failed %d, want %d and 1", stored, failed, n)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(results) != 0 {
		t.Fatalf("%d extra Done calls", len(results))
	}
}

// ackError tells a stored publish from a refused one by the ack alone.
func TestAckError(t *testing.T) {
	status := nats.Header{}
	status.Set("Status", "503")
	cases := []struct {
		msg *nats.Msg
		ok  bool
	}{
		{&nats.Msg{Data: []byte(`{"stream":"TETHER_CONN","seq":42}`)}, true},
		{&nats.Msg{Data: []byte(`{"stream":"TETHER_CONN","seq":42,"duplicate":true}`)}, true},
		{&nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`)}, false},
		{&nats.Msg{Header: status}, false},
		{&nats.Msg{Data: []byte(`garbage`)}, false},
	}
	for _, c := range cases {
		if err := ackError(c.msg); (err == nil) != c.ok {
			t.Errorf("ackError(%q, %v) = %v", c.msg.Data, c.msg.Header, err)
		}
	}
}

// Close keeps to its deadline even while a Publish waits for room in a
// full queue, and that Publish fails with ErrClosed.
func TestCloseWithPublishBlocked(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	p := NewPublisher(j.JS, 1, slog.Default())
	block := make(chan struct{})
	// The first message's encoding holds the publisher's goroutine, so
	// the one-slot queue fills behind it.
	_ = p.Publish(Msg{Subject: ConnSubject("a", "connected"), Encode: func() ([]byte, error) { <-block; return []byte("{}"), nil }})
	_ = p.Publish(Msg{Subject: ConnSubject("b", "connected"), Data: []byte("{}")})
	published := make(chan error, 1)
	go func() { published <- p.Publish(Msg{Subject: ConnSubject("c", "connected"), Data: []byte("{}")}) }()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v past a 200 ms deadline", d)
	}
	if err := <-published; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Publish = %v, want ErrClosed", err)
	}
	close(block)
}

// An idle publisher does not wake for its ack sweep: the sweep runs only
// while a publish awaits its ack (at most once after the last one).
func TestPublisherIdleSweepsNone(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	p := NewPublisher(j.JS, 16, slog.New(slog.DiscardHandler))
	defer func() { _ = p.Close(context.Background()) }()
	done := make(chan error, 1)
	if err := p.Publish(Msg{Subject: ConnSubject("d", "connected"), ID: "d-1", Data: []byte(`{}`),
		Done: func(err error) { done <- err }}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond)
	if n := p.sweeps.Load(); n > 1 {
		t.Errorf("the ack sweep ran %d times in 3.5 s with nothing outstanding, want at most 1", n)
	}
}
