package testnet

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream runs an embedded NATS server with JetStream on 127.0.0.1
// (a random port, its store in a test directory), shut down when t ends.
func JetStream(t testing.TB) *server.Server {
	t.Helper()
	return NATS(t, &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
}

// NATS starts a NATS server with opts and waits until it takes clients;
// it is shut down when t ends.
func NATS(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	srv := NATSStarting(t, opts)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	return srv
}

// NATSStarting starts a NATS server with opts without waiting for it (a
// cluster's members wait for each other); it is shut down when t ends.
func NATSStarting(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	return srv
}

// JetStreamClient connects to the NATS server at url with opts and opens
// its JetStream context; the connection is closed when t ends.
func JetStreamClient(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
