package app_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// With --nats-url the hub keeps its journal and registry in an external
// NATS server (here a separate server on a loopback port), same code path.
func TestExternalNATS(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	a, err := app.New(app.Config{
		DataDir: t.TempDir(), Dev: true, NATSURL: ns.ClientURL(),
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
	}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h := &hub{App: a, t: t, events: &eventLog{}}
	sub, err := a.Journal().NC.Subscribe(journal.ConnPrefix+">", h.events.add)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	defer h.stop()
	if a.Journal().Embedded() {
		t.Fatal("the journal is embedded despite --nats-url")
	}
	key := h.device("ext1")
	c, rc := h.v3("ext1", username("ext1"), h.token("ext1", key, time.Hour))
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	c.Disconnect(100)
	checkEvents(t, h.waitEvents("ext1", 2), wantEvent{presence.Connected, "", ""}, wantEvent{presence.Disconnected, presence.ReasonClient, ""})
	checkRecords(t, h.waitLogs("ext1", 2), connectInfo, disconnectInfo)
	// The registry lives in the external server's KV.
	kv, err := a.Journal().JS.KeyValue(ctx, "tether_devices")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(ctx); err != nil || st.Values() != 1 {
		t.Fatalf("devices bucket: %v values, err %v", st, err)
	}
}
