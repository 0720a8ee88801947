package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/cluster"
)

// The alert ledger is a cluster's record of the alert notifications it
// sent, in the replicated bucket tether_alerts (journal.Alerts). Every
// node evaluates the rules and keeps each transition it makes; only the
// node leading the alerts job notifies, and before it does it settles the
// transition against the ledger:
//
//   - one key per rule and series ("s.<hash>") holds the last transition
//     the cluster notified: its alert id and condition, when, the node
//     (and run) that claimed it and how that went (sending, sent, failed,
//     unsent). The leader claims a transition with a compare-and-set on
//     the key's revision, then notifies; so two leaders (a lead that moved
//     between two evaluations) cannot both send one transition, and a
//     Resolved names the alert id the cluster's Fired announced, whichever
//     node fired it.
//   - a node that does not lead keeps its transitions (the last few per
//     series, for ledgerHorizon) until it leads: the transitions made
//     while no node leads (after the leader's loss, until its lease
//     expires) are sent by the next leader, once; those the old leader
//     sent are found in the ledger and skipped.
//   - a claim whose node stopped before its notification went out (it
//     marks it unsent at its shutdown) or whose run is gone (no live node
//     has that run: a kill -9) is sent again by the leader. Only then can
//     a receiver see a notification twice: when the lost node had sent it
//     and died before recording so (the payload's alert id tells them
//     apart). A claim another live node's run is still sending is kept
//     and looked at again until its outcome is written or that run is
//     gone; a claim of this run that its dispatcher does not hold (the
//     write committed, its answer was lost) is sent.
//   - one key per notified transition ("t.<alert id>.<condition>") in
//     tether_alert_history (journal.AlertHistory) is the cluster's alert
//     history, the same on every node's API. Each is
//     written with its own TTL (ledgerHistoryKeep, 30 days, as long as
//     Azure Monitor keeps alerts): the bucket expires it and leaves a
//     marker its followers drop it on. The series keys (in
//     tether_alerts) have none: a series' claim lives as long as the
//     series, however long it fires (an expiry would drop a claim a
//     long-firing alert still needs, and the Resolved would go out with
//     a second Fired). The history keys earlier builds wrote in
//     tether_alerts (no TTL) are still read into the history.
//
// A single hub notifies directly and keeps its history in its data dir
// (alerts.go).

const (
	ledgerSeries  = "s."
	ledgerHistory = "t."
	// ledgerTick is how often a leader looks for transitions to settle
	// besides being woken by one (a settle that failed is retried).
	ledgerTick = 500 * time.Millisecond
	// ledgerKeep bounds the transitions a node keeps per series while
	// it does not lead.
	ledgerKeep = 8
	// ledgerTimeout bounds one settle's bucket calls.
	ledgerTimeout = 10 * time.Second
	// ledgerHorizon is how long a node that does not lead keeps its
	// transitions: far longer than a lead can be vacant (the lease), so
	// the next leader has them, and bounded, so a node that leads after
	// a long time does not replay what is long past (and series that
	// are gone are forgotten).
	ledgerHorizon = 5 * time.Minute
	// ledgerHistoryKeep is how long a history key lives (its KV TTL).
	ledgerHistoryKeep = 30 * 24 * time.Hour
)

// claimState is how a claimed notification went.
type claimState string

const (
	claimSending claimState = "sending"
	claimSent    claimState = "sent"
	claimFailed  claimState = "failed" // a destination gave up: not sent again
	claimUnsent  claimState = "unsent" // its node stopped first: the next leader sends it
)

// seriesEntry is a series key's value: the last transition the cluster
// notified, or is notifying.
type seriesEntry struct {
	Rule      string      `json:"rule"`
	Series    string      `json:"series"`
	AlertID   string      `json:"alertId"`
	Condition alert.State `json:"condition"`
	FiredAt   time.Time   `json:"firedAt"`
	At        time.Time   `json:"at"` // the transition's evaluation time
	Node      string      `json:"node"`
	Boot      string      `json:"boot"`
	State     claimState  `json:"state"`
	// WithFired: a Resolved whose Fired never went out; the claim's node
	// sends that Fired first (and so does the node that takes the claim
	// over).
	WithFired bool `json:"withFired,omitempty"`
}

// alertLedger settles and notifies this node's transitions while it
// leads the alerts job, and keeps the cluster's history.
type alertLedger struct {
	kv jetstream.KeyValue
	// hist holds the history (journal.AlertHistory); kv's history keys
	// are those written before it existed, still read.
	hist       jetstream.KeyValue
	node, boot string // this node and its run (cluster.Node.Boot)
	leads      func() bool
	// alive maps the live nodes to their runs.
	alive func(context.Context) (map[string]string, error)
	send  func(alert.Alert, func(alert.Outcome))
	log   *slog.Logger

	mu      sync.Mutex
	pending map[string][]alert.Alert // by series key: not settled yet, oldest first
	// handed holds, by series key, the revision of the claim this run
	// gave its dispatcher (until its outcome is written): a claim of this
	// run that is not there was written by a call that returned an error
	// (it committed all the same), so nobody holds it.
	handed  map[string]uint64
	failing bool // the last settle failed (logged once)
	wake    chan struct{}

	hmu     sync.Mutex
	history []alert.Record
	hkeys   []string        // history[i]'s key
	keys    map[string]bool // history keys held
	// historyKeep is the history keys' TTL (ledgerHistoryKeep; tests
	// shorten it).
	historyKeep time.Duration

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newAlertLedger(kv, hist jetstream.KeyValue, node, boot string, leads func() bool,
	alive func(context.Context) (map[string]string, error), send func(alert.Alert, func(alert.Outcome)), log *slog.Logger) *alertLedger {
	return &alertLedger{kv: kv, hist: hist, node: node, boot: boot, leads: leads, alive: alive, send: send, log: log,
		pending: map[string][]alert.Alert{}, handed: map[string]uint64{}, wake: make(chan struct{}, 1), keys: map[string]bool{},
		historyKeep: ledgerHistoryKeep}
}

// note is the manager's Notify: it keeps a and wakes the settling loop.
// It never blocks.
func (l *alertLedger) note(a alert.Alert) {
	k := seriesKey(a)
	l.mu.Lock()
	q := append(l.pending[k], a)
	if len(q) > ledgerKeep {
		q = q[len(q)-ledgerKeep:]
	}
	l.pending[k] = q
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// seriesKey is a's series' key in the bucket.
func seriesKey(a alert.Alert) string {
	sum := sha256.Sum256([]byte(a.Rule.Name + "\x00" + a.Record().Key))
	return ledgerSeries + hex.EncodeToString(sum[:16])
}

// transitionAt is when a's evaluation made it.
func transitionAt(a alert.Alert) time.Time {
	if a.Condition == alert.Resolved {
		return a.ResolvedAt
	}
	return a.FiredAt
}

// start follows the history and settles transitions until stop. The
// history's feed is opened again should it end (cluster.Follow).
func (l *alertLedger) start(ctx context.Context, retry func(context.Context, func(context.Context) error) error) error {
	rctx, cancel := context.WithCancel(context.Background())
	// The history bucket, and the history keys the claims' bucket held
	// before it (written by earlier builds; they do not expire).
	buckets := []jetstream.KeyValue{l.hist}
	if l.kv.Bucket() != l.hist.Bucket() {
		buckets = append(buckets, l.kv)
	}
	for _, kv := range buckets {
		var w jetstream.KeyWatcher
		open := func(ctx context.Context) (jetstream.KeyWatcher, error) { return kv.Watch(ctx, ledgerHistory+">") }
		err := retry(ctx, func(context.Context) (err error) {
			w, err = open(rctx)
			return err
		})
		if err != nil {
			cancel()
			l.wg.Wait()
			return fmt.Errorf("alert history: watching bucket %s: %w", kv.Bucket(), err)
		}
		// Each bucket's keys are held under its name: a reopened feed of
		// one drops only that bucket's keys it no longer has.
		in := kv.Bucket() + "/"
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			cluster.Follow(rctx, l.log, kv.Bucket(), w, open, func(e jetstream.KeyValueEntry) { l.remember(in, e) }, func(present map[string]bool) {
				l.keepOnly(func(k string) bool {
					key, ok := strings.CutPrefix(k, in)
					return !ok || present[key]
				})
			})
		}()
	}
	l.cancel = cancel
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.run(rctx) }()
	return nil
}

// stop ends both loops. Notifications already handed to the dispatcher
// finish (or are marked unsent) in its Close.
func (l *alertLedger) stop() {
	if l.cancel != nil {
		l.cancel()
		l.wg.Wait()
	}
}

// remember applies a change of the history: a record added, or one
// gone (its TTL expired, or deleted).
// in names the bucket (its keys are held as in+key).
func (l *alertLedger) remember(in string, e jetstream.KeyValueEntry) {
	key := in + e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		l.keepOnly(func(k string) bool { return k != key })
		return
	}
	var r alert.Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		l.log.Warn("alert history: an entry of the cluster's history is not a record", "key", e.Key(), "err", err)
		return
	}
	l.hmu.Lock()
	defer l.hmu.Unlock()
	if !l.keys[key] {
		l.keys[key] = true
		l.history = append(l.history, r)
		l.hkeys = append(l.hkeys, key)
	}
}

// keepOnly drops the history records whose keys keep refuses (those a
// reopened feed no longer has: expired while no feed ran).
func (l *alertLedger) keepOnly(keep func(string) bool) {
	l.hmu.Lock()
	defer l.hmu.Unlock()
	j := 0
	for i, k := range l.hkeys {
		if keep(k) {
			l.history[j], l.hkeys[j] = l.history[i], k
			j++
		} else {
			delete(l.keys, k)
		}
	}
	clear(l.history[j:])
	l.history, l.hkeys = l.history[:j], l.hkeys[:j]
}

// History lists the cluster's notified transitions, in the order they
// were claimed.
func (l *alertLedger) History(q alert.HistoryQuery) []alert.Record {
	l.hmu.Lock()
	defer l.hmu.Unlock()
	return alert.ListRecords(l.history, q)
}

func (l *alertLedger) run(ctx context.Context) {
	t := time.NewTicker(ledgerTick)
	defer t.Stop()
	var swept time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.wake:
		}
		if l.leads() {
			l.settleAll(ctx)
		} else if now := time.Now(); now.Sub(swept) > time.Minute {
			l.forget(now.Add(-ledgerHorizon))
			swept = now
		}
	}
}

// forget drops the kept transitions made before cutoff.
func (l *alertLedger) forget(cutoff time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, q := range l.pending {
		i := 0
		for i < len(q) && transitionAt(q[i]).Before(cutoff) {
			i++
		}
		if i == len(q) {
			delete(l.pending, k)
		} else if i > 0 {
			l.pending[k] = q[i:]
		}
	}
}

// settleAll settles every pending transition, each series in order; a
// series whose settle fails keeps the rest for the next round.
func (l *alertLedger) settleAll(ctx context.Context) {
	l.mu.Lock()
	keys := make([]string, 0, len(l.pending))
	for k := range l.pending {
		keys = append(keys, k)
	}
	l.mu.Unlock()
	var failed error
	for _, k := range keys {
		for l.leads() && ctx.Err() == nil {
			a, ok := l.next(k)
			if !ok {
				break
			}
			sctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
			err := l.settle(sctx, k, a)
			cancel()
			if err != nil {
				l.putBack(k, a)
				if !errors.Is(err, errInHand) {
					failed = err
				}
				break
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case failed != nil && !l.failing && ctx.Err() == nil:
		l.log.Warn("alert notifications held back: the cluster's record of them cannot be read or written; retrying", "bucket", l.kv.Bucket(), "err", failed)
		l.failing = true
	case failed == nil && l.failing:
		l.log.Info("alert notifications: the cluster's record answers again", "bucket", l.kv.Bucket())
		l.failing = false
	}
}

func (l *alertLedger) next(k string) (alert.Alert, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.pending[k]
	if len(q) == 0 {
		delete(l.pending, k)
		return alert.Alert{}, false
	}
	if len(q) == 1 {
		delete(l.pending, k)
	} else {
		l.pending[k] = q[1:]
	}
	return q[0], true
}

func (l *alertLedger) putBack(k string, a alert.Alert) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[k] = append([]alert.Alert{a}, l.pending[k]...)
}

// errClaimed: another node wrote the series' key between this node's
// read and its claim.
var errClaimed = errors.New("claimed by another node meanwhile")

// errInHand: another live node's run is sending the transition; it is
// checked again until that claim's outcome is written or its run is gone.
var errInHand = errors.New("being sent by another node")

// settle notifies a unless the ledger shows the cluster did already (or
// a is older than what it did), retrying a claim another node raced.
func (l *alertLedger) settle(ctx context.Context, k string, a alert.Alert) error {
	for attempt := 0; ; attempt++ {
		err := l.settleOnce(ctx, k, a)
		if !errors.Is(err, errClaimed) || attempt == 2 {
			return err
		}
	}
}

func (l *alertLedger) settleOnce(ctx context.Context, k string, a alert.Alert) error {
	var cur *seriesEntry
	var rev uint64
	e, err := l.kv.Get(ctx, k)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return err
	default:
		var s seriesEntry
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			// Not ours to keep: the next claim replaces it.
			l.log.Warn("alert ledger: an entry is not a series record; replaced", "key", k, "err", err)
		} else {
			cur = &s
		}
		rev = e.Revision()
	}
	orphan := false
	if cur != nil {
		if orphan, err = l.orphaned(ctx, k, rev, cur); err != nil {
			return err
		}
	}
	if cur != nil && cur.Condition == a.Condition {
		if !orphan {
			if cur.State == claimSending && (cur.Node != l.node || cur.Boot != l.boot) &&
				time.Since(transitionAt(a)) < ledgerHorizon {
				// Another node's run has it but may die before it
				// sends: keep it until that is known.
				return errInHand
			}
			return nil // notified by this or another leader
		}
		// Claimed by a node that stopped or died before it was sent
		// (whichever evaluation of this node's made the transition): send
		// it as the cluster announced it.
		a.ID, a.FiredAt = cur.AlertID, cur.FiredAt
		if a.Condition == alert.Resolved {
			a.ResolvedAt = cur.At
		}
		return l.claimAndSend(ctx, k, rev, a, a.Condition == alert.Resolved && cur.WithFired)
	}
	if cur != nil && transitionAt(a).Before(cur.At) {
		return nil // the cluster notified a later transition of the series
	}
	switch {
	case a.Condition == alert.Fired:
		return l.claimAndSend(ctx, k, rev, a, false)
	case cur == nil:
		return nil // a Resolved of an alert the cluster never announced
	}
	// A Resolved of the alert the ledger holds fired: it names that alert.
	a.ID, a.FiredAt = cur.AlertID, cur.FiredAt
	// Orphaned, its Fired never went out (as far as the cluster knows):
	// the claim sends the Fired, then the Resolved; sending the Fired
	// before the claim would send it again on each retry of a failed one.
	return l.claimAndSend(ctx, k, rev, a, orphan)
}

// orphaned reports whether cur's notification is in nobody's hands: its
// node marked it unsent, or the run that claimed it is gone.
func (l *alertLedger) orphaned(ctx context.Context, k string, rev uint64, cur *seriesEntry) (bool, error) {
	switch {
	case cur.State == claimUnsent:
		return true, nil
	case cur.State != claimSending:
		return false, nil
	case cur.Node == l.node && cur.Boot == l.boot:
		l.mu.Lock()
		defer l.mu.Unlock()
		h, ok := l.handed[k]
		return !ok || h != rev, nil // held if this run's dispatcher has it
	}
	alive, err := l.alive(ctx)
	if err != nil {
		return false, fmt.Errorf("listing the live nodes: %w", err)
	}
	return alive[cur.Node] != cur.Boot, nil
}

// claimAndSend writes a as the series' notified transition (a
// compare-and-set on rev; 0: the key must not exist), records it in the
// history and hands it to the dispatcher, whose outcome is written back.
// withFired (a Resolved): its Fired goes first, once the claim is made.
func (l *alertLedger) claimAndSend(ctx context.Context, k string, rev uint64, a alert.Alert, withFired bool) error {
	s := seriesEntry{Rule: a.Rule.Name, Series: a.Record().Key, AlertID: a.ID, Condition: a.Condition, FiredAt: a.FiredAt,
		At: transitionAt(a), Node: l.node, Boot: l.boot, State: claimSending, WithFired: withFired}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if rev == 0 {
		rev, err = l.kv.Create(ctx, k, b)
	} else {
		rev, err = l.kv.Update(ctx, k, b, rev)
	}
	if isWrongSequence(err) {
		return errClaimed
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.handed[k] = rev
	l.mu.Unlock()
	if withFired {
		f := a
		f.Condition, f.ResolvedAt, f.Reason = alert.Fired, time.Time{}, ""
		l.recordHistory(ctx, f)
		l.send(f, nil)
	}
	l.recordHistory(ctx, a)
	l.send(a, func(o alert.Outcome) { l.done(k, rev, s, o) })
	return nil
}

// isWrongSequence reports a compare-and-set that lost to another write.
func isWrongSequence(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// recordHistory adds a to the cluster's history (once per alert and
// condition).
func (l *alertLedger) recordHistory(ctx context.Context, a alert.Alert) {
	b, err := json.Marshal(a.Record())
	if err == nil {
		key := ledgerHistory + a.ID + "." + string(a.Condition)
		_, err = l.hist.Create(ctx, key, b, jetstream.KeyTTL(l.historyKeep))
		if ttlRefused(err) {
			// A bucket made without per-key TTLs (an older server in
			// the cluster): kept without expiry rather than lost.
			_, err = l.hist.Create(ctx, key, b)
		}
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		l.log.Error("alert transition not recorded in the cluster's history", "rule", a.Rule.Name, "alert", a.ID, "condition", a.Condition, "err", err)
	}
}

// jsErrMessageTTLDisabled is nats-server's JSMessageTTLDisabledErr.
const jsErrMessageTTLDisabled = 10166

// ttlRefused reports a write refused for its TTL (the bucket does not
// allow per-key TTLs).
func ttlRefused(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrMessageTTLDisabled
}

// done writes the outcome of the notification claimed at rev, unless the
// series moved on meanwhile.
func (l *alertLedger) done(k string, rev uint64, s seriesEntry, o alert.Outcome) {
	switch o {
	case alert.Sent:
		s.State = claimSent
	case alert.Failed:
		s.State = claimFailed
	default:
		s.State = claimUnsent
	}
	b, err := json.Marshal(s)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	if _, err := l.kv.Update(ctx, k, b, rev); err != nil && !isWrongSequence(err) {
		// The claim may still read "sending": it stays this run's.
		l.log.Warn("alert ledger: the outcome of a notification not recorded", "rule", s.Rule, "alert", s.AlertID, "condition", s.Condition, "outcome", s.State, "err", err)
		return
	}
	l.mu.Lock()
	if l.handed[k] == rev {
		delete(l.handed, k)
	}
	l.mu.Unlock()
}
