package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configure Open.
type Options struct {
	// DataDir holds the embedded server's JetStream store (DataDir/jetstream).
	DataDir string
	// URL of an external NATS server or cluster; empty runs one embedded.
	URL string
	// Replicas for streams and buckets (external clusters); default 1.
	Replicas int
	// SyncAlways makes the embedded server fsync every write before it
	// acknowledges it (JetStream's sync_always). Off, writes reach the file
	// (the OS page cache) before the ack and are fsynced every 2 minutes:
	// a killed hub loses nothing acknowledged, a power loss can lose the
	// last 2 minutes. Costs are in bench/README.md. Ignored with URL.
	SyncAlways bool
	// TelemetryMaxAge bounds how long telemetry stays in the journal.
	TelemetryMaxAge time.Duration
	// Cluster makes the embedded server a member of a JetStream cluster
	// (cluster.go); nil runs it alone. Ignored with URL.
	Cluster *ClusterOptions
	Logger  *slog.Logger
}

// Journal is an open connection to JetStream with Tether's streams and
// buckets in place.
type Journal struct {
	NC  *nats.Conn
	JS  jetstream.JetStream
	srv *server.Server // nil when external
	// Replicas is how many copies streams and buckets keep.
	Replicas int

	Devices  jetstream.KeyValue
	Policies jetstream.KeyValue
	State    jetstream.KeyValue
	Twins    jetstream.KeyValue
	// CAs holds the CA certificates registered for X.509 device
	// authentication.
	CAs jetstream.KeyValue
	// AlertRules holds the alert rules file in force in the whole
	// cluster (internal/app/alertrules.go); its history keeps the
	// revisions before it.
	AlertRules jetstream.KeyValue
	// Alerts is the cluster's record of alert transitions and of their
	// notifications (internal/app/alertledger.go); before
	// AlertHistory, it held the alert history too.
	Alerts jetstream.KeyValue
	// AlertHistory is the cluster's alert history, its keys written with
	// their own TTLs (AlertHistoryMarkerTTL). A bucket of its own: a
	// bucket's per-key TTLs cannot be turned off again, so allowing them
	// on Alerts would make an older binary (a rollback, a node not yet
	// upgraded) fail to open it.
	AlertHistory jetstream.KeyValue
}

// AlertHistoryMarkerTTL is how long AlertHistory keeps the marker a
// key's expiry leaves, so followers of the bucket see the key go.
const AlertHistoryMarkerTTL = time.Hour

// Open starts (or connects to) NATS and creates the streams and buckets if
// missing. ctx bounds the start-up.
func Open(ctx context.Context, o Options) (*Journal, error) {
	if o.Replicas == 0 {
		o.Replicas = 1
		if o.URL == "" && o.Cluster != nil {
			o.Replicas = o.Cluster.replicas()
		}
	}
	if o.TelemetryMaxAge == 0 {
		o.TelemetryMaxAge = 24 * time.Hour
	}
	j := &Journal{Replicas: o.Replicas}
	var err error
	if o.URL == "" {
		if o.DataDir == "" {
			return nil, errors.New("journal: a data dir is needed for the embedded server")
		}
		j.srv, err = startEmbedded(ctx, o.DataDir, o.SyncAlways, o.Cluster)
		if err != nil {
			return nil, err
		}
		opts := []nats.Option{nats.InProcessServer(j.srv), nats.Name("tether")}
		if o.Cluster != nil {
			opts = append(opts, nats.Token(o.Cluster.token))
		}
		j.NC, err = nats.Connect("", opts...)
	} else {
		j.NC, err = nats.Connect(o.URL, nats.Name("tether"), nats.MaxReconnects(-1))
	}
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("journal: connect: %w", err)
	}
	j.JS, err = jetstream.New(j.NC)
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("journal: jetstream: %w", err)
	}
	if err := j.setup(ctx, o); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// startEmbedded starts the in-process NATS server on dataDir/jetstream.
func startEmbedded(ctx context.Context, dataDir string, syncAlways bool, cl *ClusterOptions) (*server.Server, error) {
	opts := &server.Options{
		ServerName:         "tether",
		DontListen:         true, // in-process connections only
		JetStream:          true,
		StoreDir:           filepath.Join(dataDir, "jetstream"),
		NoSigs:             true,
		NoLog:              true,
		JetStreamMaxMemory: 256 << 20,
		SyncAlways:         syncAlways,
	}
	if cl != nil {
		if err := cl.apply(opts); err != nil {
			return nil, err
		}
	}
	if os.Getenv("TETHER_NATS_LOG") != "" {
		opts.NoLog, opts.Logtime = false, true
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("journal: embedded nats: %w", err)
	}
	if !opts.NoLog {
		srv.ConfigureLogger()
	}
	srv.Start()
	deadline, ok := ctx.Deadline()
	wait := 30 * time.Second
	if ok {
		wait = time.Until(deadline)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		return nil, errors.New("journal: embedded nats did not become ready")
	}
	if cl != nil {
		// JetStream requests sent before the cluster has a meta leader
		// go unanswered: wait for one.
		if err := waitMetaLeader(ctx, srv); err != nil {
			srv.Shutdown()
			return nil, err
		}
	}
	return srv, nil
}

// dedupeWindow is how long JetStream remembers message ids to drop a
// re-published duplicate. It must cover the publisher's retry horizon: the
// longest after a message's first copy was stored that a retry of it can
// still reach the stream (its ack was lost). That is publishRetryHorizon
// (76 s) plus the wait behind the retries ahead of it (the retrier takes
// one at a time: after a leader loss, the whole window of 1,024
// publishes, each re-sent in about a millisecond once a leader answers).
// Two minutes leave 44 s for that wait. A shorter window would not change
// a 30 s run at 5,000 events/s (it never fills; issue 21's heap growth is
// the window filling, ~130 B an id) and saves at most a quarter of the ids
// (~80 → 60 MB at 5,000/s) for that margin, so it stays; shortening it
// needs the publisher's retry budget shortened first.
const dedupeWindow = 2 * time.Minute

// publishRetryHorizon mirrors Publisher.retry (publisher.go): a lost ack
// is noticed after ackTimeout by the next sweep (sweepEvery), then retry
// publishes for up to a minute, its last attempt answered within 5 s.
// TestDedupeWindowCoversRetries holds dedupeWindow above it.
const publishRetryHorizon = ackTimeout + sweepEvery + time.Minute + 5*time.Second

// opsMaxBytes bounds TETHER_OPS: about 5 million operations (~400 bytes
// each); past it the oldest are dropped.
const opsMaxBytes = 2 << 30

func (j *Journal) setup(ctx context.Context, o Options) error {
	streams := []jetstream.StreamConfig{
		{Name: StreamConn, Subjects: []string{ConnPrefix + ">"}, Storage: jetstream.FileStorage,
			Replicas: o.Replicas, Duplicates: dedupeWindow, MaxAge: 30 * 24 * time.Hour},
		{Name: StreamRegistry, Subjects: []string{RegistryPrefix + ">"}, Storage: jetstream.FileStorage,
			Replicas: o.Replicas, Duplicates: dedupeWindow, MaxAge: 30 * 24 * time.Hour},
		// Operations: as registry changes, plus a size bound, since twin
		// reads can come with every reconnect of a large fleet; the
		// consumers (log writers, metrics) are normally seconds behind.
		{Name: StreamOps, Subjects: []string{OpsPrefix + ">"}, Storage: jetstream.FileStorage,
			Replicas: o.Replicas, Duplicates: dedupeWindow, MaxAge: 30 * 24 * time.Hour,
			MaxBytes: opsMaxBytes, Discard: jetstream.DiscardOld},
		// Insights: records derived from the others (incidents, flapping
		// devices) by the insight engine; few, kept as long.
		{Name: StreamInsights, Subjects: []string{InsightsPrefix + ">"}, Storage: jetstream.FileStorage,
			Replicas: o.Replicas, Duplicates: dedupeWindow, MaxAge: 30 * 24 * time.Hour},
		{Name: StreamTelemetry, Subjects: []string{TelemetryPrefix + ">"}, Storage: jetstream.FileStorage,
			Replicas: o.Replicas, MaxAge: o.TelemetryMaxAge, MaxBytes: 1 << 30, Discard: jetstream.DiscardOld},
	}
	// Every replicated stream, the buckets' too, for waitStreamLeaders.
	replicated := make([]string, 0, len(streams)+8)
	for _, cfg := range streams {
		replicated = append(replicated, cfg.Name)
		if err := untilClusterReady(ctx, func(ctx context.Context) error { _, err := j.JS.CreateOrUpdateStream(ctx, cfg); return err }); err != nil {
			return fmt.Errorf("journal: stream %s: %w", cfg.Name, err)
		}
	}
	kv := func(name string, history uint8, markerTTL ...time.Duration) (jetstream.KeyValue, error) {
		replicated = append(replicated, "KV_"+name)
		var b jetstream.KeyValue
		err := untilClusterReady(ctx, func(ctx context.Context) (err error) {
			cfg := jetstream.KeyValueConfig{Bucket: name, History: history, Storage: jetstream.FileStorage, Replicas: o.Replicas}
			if len(markerTTL) > 0 {
				cfg.LimitMarkerTTL = markerTTL[0]
			}
			b, err = j.JS.CreateOrUpdateKeyValue(ctx, cfg)
			if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
				// An external NATS server older than 2.11: keys without
				// their own TTL (they do not expire) rather than no start.
				cfg.LimitMarkerTTL = 0
				b, err = j.JS.CreateOrUpdateKeyValue(ctx, cfg)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("journal: bucket %s: %w", name, err)
		}
		return b, nil
	}
	var err error
	if j.Devices, err = kv("tether_devices", 1); err != nil {
		return err
	}
	if j.Policies, err = kv("tether_policies", 1); err != nil {
		return err
	}
	if j.State, err = kv("tether_state", 1); err != nil {
		return err
	}
	if j.Twins, err = kv("tether_twins", 1); err != nil {
		return err
	}
	if j.CAs, err = kv("tether_cas", 1); err != nil {
		return err
	}
	if j.AlertRules, err = kv("tether_alert_rules", 10); err != nil {
		return err
	}
	if j.Alerts, err = kv("tether_alerts", 1); err != nil {
		return err
	}
	// Per-key TTLs: the alert history's keys expire (app's alert ledger).
	if j.AlertHistory, err = kv("tether_alert_history", 1, AlertHistoryMarkerTTL); err != nil {
		return err
	}
	if o.Replicas > 1 {
		return j.waitStreamLeaders(ctx, replicated)
	}
	return nil
}

// Close drains the connection and stops the embedded server, if any.
func (j *Journal) Close() {
	if j.NC != nil {
		_ = j.NC.Drain()
		// Drain is asynchronous; wait briefly for it so pending acks land.
		for i := 0; i < 200 && !j.NC.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		j.NC.Close()
	}
	if j.srv != nil {
		j.srv.Shutdown()
		j.srv.WaitForShutdown()
	}
}

// Embedded reports whether the journal runs its own server.
func (j *Journal) Embedded() bool { return j.srv != nil }
