package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Snapshots taken while messages are being written restore into an empty
// server with every message up to the snapshot's last sequence, the KV
// buckets' values, and the consumers' positions.
func TestSnapshotRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j := open(t, t.TempDir())
	defer j.Close()
	for i := range 100 {
		if _, err := j.JS.Publish(ctx, ConnPrefix+fmt.Sprintf("dev%d.connected", i), []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.Devices.Put(ctx, "ZGV2MQ", []byte(`{"deviceId":"dev1"}`)); err != nil {
		t.Fatal(err)
	}
	cons, err := j.JS.CreateOrUpdateConsumer(ctx, StreamConn, jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(40)
	if err != nil {
		t.Fatal(err)
	}
	var last jetstream.Msg
	for m := range batch.Messages() {
		last = m
	}
	if err := last.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}

	// Writers keep going during the snapshots.
	var wrote atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := j.JS.Publish(ctx, ConnPrefix+fmt.Sprintf("late%d.connected", i), []byte("x")); err == nil {
				wrote.Add(1)
			}
		}
	}()
	names, err := TetherStreams(ctx, j.JS)
	if err != nil {
		t.Fatal(err)
	}
	snaps := map[string]*bytes.Buffer{}
	infos := map[string]SnapshotInfo{}
	for _, n := range names {
		var b bytes.Buffer
		info, err := SnapshotStream(ctx, j.NC, n, &b)
		if err != nil {
			t.Fatalf("snapshot %s: %v", n, err)
		}
		snaps[n], infos[n] = &b, info
	}
	close(stop)
	wg.Wait()
	if wrote.Load() == 0 {
		t.Fatal("nothing was written during the snapshots")
	}
	if infos[StreamConn].Messages < 100 || infos["KV_tether_devices"].Messages != 1 {
		t.Fatalf("snapshot states: %+v", infos)
	}

	srv, err := OpenServer(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, n := range names {
		if err := RestoreStream(ctx, srv.NC, infos[n], nil, bytes.NewReader(snaps[n].Bytes())); err != nil {
			t.Fatalf("restore %s: %v", n, err)
		}
	}
	js, _ := jetstream.New(srv.NC)
	st, err := js.Stream(ctx, StreamConn)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().State; got.Msgs != infos[StreamConn].Messages || got.LastSeq != infos[StreamConn].LastSeq {
		t.Fatalf("restored %s: %d messages up to %d, snapshot %d up to %d", StreamConn, got.Msgs, got.LastSeq, infos[StreamConn].Messages, infos[StreamConn].LastSeq)
	}
	m, err := st.GetMsg(ctx, 7)
	if err != nil || string(m.Data) != `{"n":6}` {
		t.Fatalf("message 7: %v %q", err, m.Data)
	}
	rc, err := js.Consumer(ctx, StreamConn, "reader")
	if err != nil {
		t.Fatalf("consumer not restored: %v", err)
	}
	if ci := rc.CachedInfo(); ci.AckFloor.Stream != 40 {
		t.Fatalf("consumer ack floor %d, want 40", ci.AckFloor.Stream)
	}
	kv, err := js.KeyValue(ctx, "tether_devices")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "ZGV2MQ"); err != nil || string(e.Value()) != `{"deviceId":"dev1"}` {
		t.Fatalf("KV after restore: %v", err)
	}

	// A restore never replaces a stream.
	err = RestoreStream(ctx, srv.NC, infos[StreamConn], nil, bytes.NewReader(snaps[StreamConn].Bytes()))
	if !errors.Is(err, ErrStreamExists) {
		t.Fatalf("restore over an existing stream: %v", err)
	}
	// A missing stream is a clear error.
	if _, err := SnapshotStream(ctx, j.NC, "NOPE", &bytes.Buffer{}); err == nil {
		t.Fatal("snapshot of a missing stream")
	}
}
