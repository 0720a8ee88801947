package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/presence"
)

// Bucket names.
const (
	OwnersBucket  = "tether_owners"
	NodesBucket   = "tether_nodes"
	LeadersBucket = "tether_leaders"
	ClusterBucket = "tether_cluster"
)

// DefaultLease is Options.Lease's default: a node silent this long is
// dead, and its devices are recorded disconnected (node-lost). A node
// whose process is gone is found sooner (two missed heartbeats and no
// route to it, suspect.go); the lease is the bound on that too, so it
// must outlast a Raft election of the groups a dead node led (its
// journal writes wait for it: 4–9 s in nats-server) plus the adoptions:
// at 10 s one e2e run stored its last node-lost at 10.03 s (the killed
// node led TETHER_CONN); the e2e test runs at this value.
const DefaultLease = 12 * time.Second

// Options configure a Node.
type Options struct {
	JS jetstream.JetStream
	NC *nats.Conn
	// Node names this node, unique in the cluster and stable across its
	// restarts.
	Node     string
	Replicas int
	// Lease is how long a node may stay silent before the others take
	// its devices (default DefaultLease).
	Lease time.Duration
	// Epoch is this start's epoch (journal.NextEpoch); the first node of a
	// cluster makes it the cluster's base epoch.
	Epoch uint64
	// End ends the device's live session sessionID as a takeover and
	// reports whether there was one (broker.Broker.EndSession).
	End func(deviceID, sessionID string) bool
	// Adopted records the end of a session this node adopted from a dead
	// one (presence.Tracker.Adopted).
	Adopted func(s *presence.Session, reason presence.Reason, result presence.Result, detail string)
	// Forget drops a session that ends here unrecorded (another node
	// took it, or this node was cut off: fence.go) from presence
	// (presence.Tracker.Forget); nil: nothing to drop.
	Forget func(s *presence.Session)
	// Info is published in the node's lease (addresses, for status).
	Info   map[string]string
	Logger *slog.Logger
	// OnLead, when set, is told when this node takes or loses a shared
	// job (leader.go), calls serialised, off the heartbeat. On taking it,
	// ctx is the lead's term: it is cancelled when the term ends (not
	// renewed in time, taken, node stopping), and the job's work must
	// stop under it at once, before another node can take the job. On
	// losing it, ctx bounds the stop. A term fenced (Leads false: no new
	// work should start) and revived by a renewal before its context was
	// cancelled is told again, leading with the same ctx: the job goes on.
	OnLead func(ctx context.Context, job string, leading bool)
	// Retry runs a bucket creation until a forming cluster answers it
	// (journal.Journal.UntilReady); nil: once.
	Retry func(context.Context, func(context.Context) error) error
	// TakeoverTimeout bounds a takeover request to another node (default
	// 10 s).
	TakeoverTimeout time.Duration
}

// Owner is a device's record in tether_owners.
type Owner struct {
	Node string `json:"node"`
	Boot string `json:"boot"`
	// Ending: the node adopted the session of a dead node and is
	// recording its end.
	Ending  bool              `json:"ending,omitempty"`
	Session *presence.Session `json:"session"`
}

// Lease is a node's record in tether_nodes.
type Lease struct {
	Node    string    `json:"node"`
	Boot    string    `json:"boot"`
	Started time.Time `json:"started"`
	Seen    time.Time `json:"seen"`
	Devices int       `json:"devices"`
	// LeaseMS is the node's lease (Options.Lease): the others time its
	// adoption by it (fence.go).
	LeaseMS int64             `json:"leaseMs,omitempty"`
	Info    map[string]string `json:"info,omitempty"`
}

// owned is whose an owner record is, as the index knows it: node, run
// and session.
type owned struct{ node, boot, session string }

// hold is a device this node owns in tether_owners.
type hold struct {
	session  string
	rev      uint64
	adopting bool
	// releasing: this node deletes the record (release); the delete is
	// not a takeover (lease.go note).
	releasing bool
	// closed: the broker's end of a session the fence ended has run
	// (Ending); until then the fence asks again (sweep).
	closed bool
	done   chan struct{} // closed once released (finish)
	once   sync.Once
}

// finish lets the claims and takeover requests waiting for h go on. Two
// paths may end one hold: its release, and another node's rewrite of the
// record while the release waits for the bucket (an election after a
// node loss: the owner watch sees the new owner first).
func (h *hold) finish() { h.once.Do(func() { close(h.done) }) }

// Node is this hub's membership in the cluster.
type Node struct {
	o       Options
	log     *slog.Logger
	boot    string
	started time.Time
	base    uint64

	owners, nodes, leaders jetstream.KeyValue

	mu      sync.Mutex
	held    map[string]*hold    // by device id
	index   map[string]owned    // KV key → its owner (zero when free), from the watch
	beats   map[string]beatSeen // by node: its last heartbeat seen (suspect.go)
	probing map[string]bool     // the silent nodes being probed now
	// noAnswer holds the silent nodes' first probes that found no
	// responders, and reconnects this node's reconnects to NATS seen
	// (suspect.go).
	noAnswer      map[string]noAnswer
	unreached     map[string]time.Time // per silent node, its run of unanswered probes' start (suspect.go)
	reconnects    uint64
	reconnectedAt time.Time        // when the watchdog noticed the last of them
	ownersRev     uint64           // the last tether_owners revision the feed delivered
	terms         map[string]*term // the jobs this node leads (leader.go)
	// renewedAt is when the last stored renewal of the lease was sent;
	// cut: the node fenced itself, and cutHolds are the sessions it ended
	// (fence.go).
	renewedAt time.Time
	cut       bool
	cutHolds  map[string]*hold
	offline   time.Time        // when this node's NATS connection went down; zero while up (fence.go)
	fenced    map[string]*term // terms fenced, their contexts not yet cancelled (leader.go)
	closing   bool             // Close began: no job is taken any more

	reaping  atomic.Bool // a reaper round is running
	applyMu  sync.Mutex  // serialises OnLead; guards applied
	applied  map[string]*term
	told     map[string]int // the revivals of each applied term OnLead was told of (n.mu)
	leadWake chan struct{}

	sub    *nats.Subscription
	cancel context.CancelFunc
	life   context.Context // until Close: work the node starts on its own (settleCut)
	wg     sync.WaitGroup
	stats  Stats
}

// Stats count what the node did.
type Stats struct {
	Claims, RemoteTakeovers, Adopted uint64
	// Probes counts the probes of silent nodes (suspect.go).
	Probes uint64
	// AskedAgain counts claims that found no responders right after this
	// node's own reconnect and asked the owner again (claim.go).
	AskedAgain uint64
	// Fences counts the times this node fenced itself (fence.go).
	Fences uint64
	// GoneByRoute and GoneByLease count the nodes this node took for gone
	// and adopted: nobody serving their subject, or silent for the lease
	// and unreachable by half the cluster or more (suspect.go).
	GoneByRoute, GoneByLease uint64
	// Reaches counts the probes this node made for another (suspect.go).
	Reaches uint64
}

// Key is the tether_owners key of a device id.
func Key(deviceID string) string { return base64.RawURLEncoding.EncodeToString([]byte(deviceID)) }

// Open creates the buckets if missing and joins: the node's lease is
// written and its takeover subject answered. Sessions its previous run
// left open are recorded ended (hub-restart) before Open returns, so call
// it before the broker accepts devices.
func Open(ctx context.Context, o Options) (*Node, error) {
	if o.Node == "" || strings.ContainsAny(o.Node, ".*> ") {
		return nil, fmt.Errorf("cluster: node name %q: needed, without '.', '*', '>' or spaces", o.Node)
	}
	if o.End == nil || o.Adopted == nil {
		return nil, errors.New("cluster: End and Adopted are required")
	}
	if o.Lease == 0 {
		o.Lease = DefaultLease
	}
	if o.TakeoverTimeout == 0 {
		o.TakeoverTimeout = 10 * time.Second
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	n := &Node{o: o, log: o.Logger.With("component", "cluster", "node", o.Node), boot: newBoot(), started: time.Now(),
		held: map[string]*hold{}, index: map[string]owned{}, beats: map[string]beatSeen{}, probing: map[string]bool{}, noAnswer: map[string]noAnswer{}, unreached: map[string]time.Time{}, cutHolds: map[string]*hold{}, terms: map[string]*term{}, fenced: map[string]*term{},
		applied: map[string]*term{}, told: map[string]int{}, leadWake: make(chan struct{}, 1)}
	if o.Retry == nil {
		o.Retry = func(ctx context.Context, op func(context.Context) error) error { return op(ctx) }
	}
	// The node's lifetime, from before its takeover subject is answered
	// (answerReach works under it) until Close.
	lctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.life = cancel, lctx
	opened := false
	defer func() {
		if !opened {
			cancel()
		}
	}()
	bucket := func(name string, ttl time.Duration) (jetstream.KeyValue, error) {
		var kv jetstream.KeyValue
		err := o.Retry(ctx, func(ctx context.Context) (err error) {
			kv, err = o.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 1,
				Storage: jetstream.FileStorage, Replicas: o.Replicas, TTL: ttl})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: bucket %s: %w", name, err)
		}
		return kv, nil
	}
	var err error
	if n.owners, err = bucket(OwnersBucket, 0); err != nil {
		return nil, err
	}
	if n.nodes, err = bucket(NodesBucket, o.Lease); err != nil {
		return nil, err
	}
	if n.leaders, err = bucket(LeadersBucket, o.Lease); err != nil {
		return nil, err
	}
	meta, err := bucket(ClusterBucket, 0)
	if err != nil {
		return nil, err
	}
	if n.base, err = baseEpoch(ctx, meta, o.Epoch); err != nil {
		return nil, err
	}
	if _, err := n.heartbeat(ctx); err != nil {
		return nil, err
	}
	n.sub, err = o.NC.Subscribe(takeoverSubject(o.Node), n.onTakeover)
	if err != nil {
		return nil, fmt.Errorf("cluster: takeover subject: %w", err)
	}
	if err := n.o.NC.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	watcher, err := n.loadIndex(context.Background())
	if err != nil {
		_ = n.sub.Unsubscribe()
		return nil, err
	}
	beats, err := n.loadBeats(context.Background())
	if err != nil {
		_ = watcher.Stop()
		_ = n.sub.Unsubscribe()
		return nil, err
	}
	n.reapOwn(ctx)
	for _, job := range Jobs {
		n.campaign(ctx, job)
	}
	n.wg.Add(8)
	go n.watchConn(lctx)
	go n.renew(lctx)
	go n.guard(lctx)
	go n.watchOwners(lctx, watcher)
	go n.watchNodes(lctx, beats)
	go n.watchdog(lctx)
	go n.loop(lctx)
	go n.tellLeads(lctx)
	opened = true
	return n, nil
}

// Close leaves the cluster: the jobs this node leads stop and their keys
// are deleted, so other nodes take them at once; once the sessions the
// broker's Stop ended (it runs before) have released their records, the
// heartbeat stops and the node's lease is deleted, so the others know at
// once that it left. Bounded by ctx.
func (n *Node) Close(ctx context.Context) error {
	if n.cancel == nil {
		return nil
	}
	n.resign(ctx)
	// Ended sessions release their records once their ends are stored.
	for n.holding() > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if left := n.holding(); left > 0 {
		n.log.Warn("leaving with device records not released; the others record those sessions node-lost", "devices", left)
	}
	n.cancel()
	n.wg.Wait()
	_ = n.sub.Unsubscribe()
	return n.nodes.Delete(ctx, n.o.Node)
}

// Name is the node's name; Boot identifies this start of it.
func (n *Node) Name() string { return n.o.Node }
func (n *Node) Boot() string { return n.boot }

// Lease is the configured lease.
func (n *Node) LeaseDuration() time.Duration { return n.o.Lease }

func newBoot() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// baseEpoch returns the cluster's base epoch, making candidate it if the
// cluster has none yet.
func baseEpoch(ctx context.Context, kv jetstream.KeyValue, candidate uint64) (uint64, error) {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], candidate)
	if _, err := kv.Create(ctx, "epoch", buf[:]); err == nil {
		return candidate, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("cluster: base epoch: %w", err)
	}
	e, err := kv.Get(ctx, "epoch")
	if err != nil {
		return 0, fmt.Errorf("cluster: base epoch: %w", err)
	}
	if len(e.Value()) != 8 {
		return 0, fmt.Errorf("cluster: stored base epoch is %d bytes, want 8", len(e.Value()))
	}
	return binary.BigEndian.Uint64(e.Value()), nil
}

func takeoverSubject(node string) string { return "tether.cluster.takeover." + node }

func decodeOwner(e jetstream.KeyValueEntry) (Owner, error) {
	var o Owner
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return o, fmt.Errorf("cluster: owner record %s revision %d: %w", e.Key(), e.Revision(), err)
	}
	return o, nil
}

// holding is how many records the node holds.
func (n *Node) holding() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.held)
}

// OwnerOf is the node that holds deviceID's session as this node's view
// of tether_owners has it (kept from the bucket's change feed, no read):
// "" when nobody does. The view may lag a write by a moment; routing a
// call by it (cross-node methods, C2D, desired pushes) is a hint, and a
// call routed to a node that no longer holds the device finds it offline.
func (n *Node) OwnerOf(deviceID string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.index[Key(deviceID)].node
}
