package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// journalMsg is one message of a journal stream as JetStream stored it.
type journalMsg struct {
	Subject   string
	Header    nats.Header
	Data      []byte
	StreamSeq uint64
}

// readJournal reads every message of stream whose subject matches filter
// from a stopped hub's data dir, in stream order, by opening its
// JetStream store with an embedded NATS server of the same version
// (in-process, no listener). The hub must not be running on dataDir.
func readJournal(ctx context.Context, dataDir, stream, filter string) ([]journalMsg, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "tether-e2e-reader", DontListen: true, JetStream: true,
		StoreDir: filepath.Join(dataDir, "jetstream"), NoSigs: true, NoLog: true,
	})
	if err != nil {
		return nil, err
	}
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	if !srv.ReadyForConnections(30 * time.Second) {
		return nil, fmt.Errorf("embedded nats on %s not ready", dataDir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	// The per-subject counts of the filter add up to the messages the
	// consumer below will deliver.
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, err
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	var out []journalMsg
	if total == 0 {
		return out, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, err
	}
	for uint64(len(out)) < total {
		// Never ask for more than is left: Fetch waits for the whole batch.
		batch, err := cons.Fetch(int(min(1000, total-uint64(len(out)))), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			jm := journalMsg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
			if md, err := m.Metadata(); err == nil {
				jm.StreamSeq = md.Sequence.Stream
			}
			out = append(out, jm)
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: read stalled at %d of %d messages", stream, len(out), total)
		}
	}
	return out, nil
}

// journalEvent is a ConnectionEvent as the journal stores it (the JSON of
// presence.ConnectionEvent on tether.conn.<device>.<kind>, stream
// TETHER_CONN; internal/journal/doc.go documents the scheme).
type journalEvent struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Time      time.Time `json:"time"`
	DeviceID  string    `json:"deviceId"`
	Sequence  string    `json:"sequenceNumber"`
	Reason    string    `json:"reason"`
	StreamSeq uint64    `json:"-"`
}

// readConnJournal reads every connection event of stream TETHER_CONN from
// a stopped hub's data dir, in stream order (readJournal).
func readConnJournal(ctx context.Context, dataDir string) ([]journalEvent, error) {
	msgs, err := readJournal(ctx, dataDir, "TETHER_CONN", "tether.conn.>")
	if err != nil {
		return nil, err
	}
	out := make([]journalEvent, 0, len(msgs))
	for _, m := range msgs {
		ev := journalEvent{StreamSeq: m.StreamSeq}
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Subject, err)
		}
		out = append(out, ev)
	}
	return out, nil
}
