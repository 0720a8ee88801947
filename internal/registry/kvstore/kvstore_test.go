package kvstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/kvstore"
	"github.com/tether-hub/tether/internal/registry/storetest"
)

// runJetStream starts an embedded JetStream server with an in-process
// connection, torn down with the test.
func runJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		ServerName: "kvstore-test",
		DontListen: true,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestContract(t *testing.T) {
	js := runJetStream(t)
	n := 0
	storetest.Run(t, func(t *testing.T) registry.Store {
		// Fresh buckets per subtest on one server: starting a server per
		// subtest would dominate the run time.
		n++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mk := func(name string) jetstream.KeyValue {
			kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 1, Storage: jetstream.FileStorage})
			if err != nil {
				t.Fatal(err)
			}
			return kv
		}
		return kvstore.New(mk("devices_"+strconv.Itoa(n)), mk("policies_"+strconv.Itoa(n)), mk("twins_"+strconv.Itoa(n)), mk("cas_"+strconv.Itoa(n)))
	})
}
