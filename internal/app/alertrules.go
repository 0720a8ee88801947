package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/journal"
)

// The alert rules in force are one rules file for the whole cluster,
// kept under one key of the replicated bucket tether_alert_rules
// (journal.AlertRules). A reload (SIGHUP, POST /api/v1/alerts/reload) on
// any node checks the file that node reads and publishes its text; every
// node applies what the bucket holds, in revision order, from its watch
// (the publishing node at once). A single hub runs the same code on a
// bucket of one replica.
//
// At start (docs/operations.md, "Alert rules in a cluster"):
//   - a single hub publishes its --rules file, or clears the bucket
//     without one: the file decides, as before the bucket;
//   - a cluster node seeds an empty bucket with its --rules file; once
//     the bucket holds rules it decides: a node whose file differs logs
//     both and serves the bucket's, and only a reload publishes a file,
//     so a node restarted with a stale file changes nothing.
//
// Rules that do not load on a node (a problem, or an smtp.passwordEnv not
// set there) never replace the rules in force there.

// rulesKey is the bucket's one key.
const rulesKey = "rules"

// publishedRules is the key's value: a rules file as a node read it.
type publishedRules struct {
	File     string    `json:"file"`     // its path on that node
	Node     string    `json:"node"`     // the node that read it
	LoadedAt time.Time `json:"loadedAt"` // when
	SHA256   string    `json:"sha256"`   // of Text
	Text     []byte    `json:"text"`
}

func newPublished(file, node string, text []byte, now time.Time) publishedRules {
	sum := sha256.Sum256(text)
	return publishedRules{File: file, Node: node, LoadedAt: now.UTC(), SHA256: hex.EncodeToString(sum[:]), Text: text}
}

// describe names the rules for a log line: revision, node, file, time
// and the start of the digest.
func (p publishedRules) describe(rev uint64) string {
	return fmt.Sprintf("revision %d (%s on node %s at %s, sha256 %.12s)", rev, p.File, p.Node, p.LoadedAt.Format(time.RFC3339), p.SHA256)
}

// current is the bucket's entry (nil when it holds none).
func (s *alertService) current(ctx context.Context) (*publishedRules, uint64, error) {
	var e jetstream.KeyValueEntry
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		e, err = s.kv.Get(ctx, rulesKey)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("alert rules: reading bucket %s: %w", s.kv.Bucket(), err)
	}
	p, err := decodePublished(e)
	if err != nil {
		return nil, 0, err
	}
	return &p, e.Revision(), nil
}

func decodePublished(e jetstream.KeyValueEntry) (publishedRules, error) {
	var p publishedRules
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return p, fmt.Errorf("alert rules: revision %d of bucket %s is not a rules entry: %w", e.Revision(), e.Bucket(), err)
	}
	return p, nil
}

// publish writes p as the rules in force; create only if the bucket is
// empty (jetstream.ErrKeyExists otherwise).
func (s *alertService) publish(ctx context.Context, p publishedRules, create bool) (uint64, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return 0, err
	}
	var rev uint64
	err = s.retry(ctx, func(ctx context.Context) (err error) {
		if create {
			rev, err = s.kv.Create(ctx, rulesKey, b)
		} else {
			rev, err = s.kv.Put(ctx, rulesKey, b)
		}
		return err
	})
	return rev, err
}

// readFile reads and checks this node's rules file.
func (s *alertService) readFile(now time.Time) (publishedRules, alert.Config, error) {
	text, err := os.ReadFile(s.file)
	if err != nil {
		return publishedRules{}, alert.Config{}, fmt.Errorf("rules file: %w", err)
	}
	cfg, err := alert.Load(text, s.opts(s.file))
	if err != nil {
		return publishedRules{}, alert.Config{}, err
	}
	return newPublished(s.file, s.node, text, now), cfg, nil
}

// start puts the rules of the start in force (the policy above). A
// rules file with problems stops the start; bucket rules that do not
// load here leave the node without rules (and the alerts fired before
// the restart pending) until a revision that loads.
func (s *alertService) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var file *publishedRules
	var fileCfg alert.Config
	if s.file != "" {
		p, cfg, err := s.readFile(time.Now())
		if err != nil {
			return err
		}
		file, fileCfg = &p, cfg
	}
	cur, rev, err := s.current(ctx)
	if err != nil {
		return err
	}
	switch {
	case !s.clustered && file == nil && cur != nil:
		if err := s.retry(ctx, func(ctx context.Context) error { return s.kv.Purge(ctx, rulesKey) }); err != nil {
			return fmt.Errorf("alert rules: clearing bucket %s: %w", s.kv.Bucket(), err)
		}
		s.log.Info("alert rules of an earlier run cleared: the hub runs without --rules", "was", cur.describe(rev))
		cur = nil
	case !s.clustered && file != nil && (cur == nil || cur.SHA256 != file.SHA256 || cur.File != file.File || cur.Node != file.Node):
		if rev, err = s.publish(ctx, *file, false); err != nil {
			return fmt.Errorf("alert rules: writing bucket %s: %w", s.kv.Bucket(), err)
		}
		cur = file
	case s.clustered && file != nil && cur == nil:
		rev, err = s.publish(ctx, *file, true)
		switch {
		case errors.Is(err, jetstream.ErrKeyExists): // another node seeded it first
			if cur, rev, err = s.current(ctx); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("alert rules: seeding bucket %s: %w", s.kv.Bucket(), err)
		default:
			cur = file
			s.log.Info("alert rules: the cluster had none; this node's file is now in force everywhere", "rules", cur.describe(rev))
		}
	}
	s.seen = rev
	if cur == nil {
		return s.mgr.SetRules(nil) // resolves what was fired by rules no longer served
	}
	if file != nil && cur.SHA256 != file.SHA256 {
		s.log.Warn("alert rules: this node's --rules file differs from the rules in force in the cluster; the cluster's stay in force (reload this node's file, SIGHUP or 'tether alert reload', to put it in force everywhere)",
			"file", file.File, "file_sha256", file.SHA256[:12], "in_force", cur.describe(rev))
	}
	cfg := fileCfg
	if cur.SHA256 != fileSHA(file) {
		if cfg, err = alert.Load(cur.Text, s.opts(cur.File)); err != nil {
			s.refuse(*cur, rev, err)
			return nil
		}
	}
	return s.setConfig(cfg, *cur, rev)
}

func fileSHA(p *publishedRules) string {
	if p == nil {
		return ""
	}
	return p.SHA256
}

// watch applies the bucket's later revisions until ctx ends. It starts
// with the entry start saw (skipped: not newer), so a write between the
// two is not missed.
func (s *alertService) watch(ctx context.Context) (done <-chan struct{}, err error) {
	var w jetstream.KeyWatcher
	// Not the attempt's context: the watch outlives it.
	err = s.retry(ctx, func(context.Context) (err error) {
		w, err = s.kv.Watch(ctx, rulesKey)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("alert rules: watching bucket %s: %w", s.kv.Bucket(), err)
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		journal.FollowKV(ctx, w, func(e jetstream.KeyValueEntry) bool {
			if e != nil {
				s.apply(e)
			}
			return true
		})
	}()
	return ch, nil
}

// apply puts a revision from the watch in force, unless this node has
// seen it (or a newer one) already or it does not load here.
func (s *alertService) apply(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rev := e.Revision()
	if rev <= s.seen {
		return
	}
	s.seen = rev
	if e.Operation() != jetstream.KeyValuePut {
		if s.source.Load() == nil {
			return
		}
		s.disp.SetGroups(nil, alert.SMTPConfig{})
		if err := s.mgr.SetRules(nil); err != nil {
			s.log.Error("alert rules: clearing", "err", err)
			return
		}
		s.source.Store(nil)
		s.log.Info("alert rules cleared in the cluster: none in force", "revision", rev)
		return
	}
	p, err := decodePublished(e)
	if err != nil {
		s.refused.Add(1)
		s.log.Error("alert rules not put in force on this node; the rules in force are unchanged", "err", err)
		return
	}
	cfg, err := alert.Load(p.Text, s.opts(p.File))
	if err != nil {
		s.refuse(p, rev, err)
		return
	}
	if err := s.setConfig(cfg, p, rev); err != nil {
		s.refuse(p, rev, err)
		return
	}
	s.log.Info("alert rules from the cluster in force", "rules", p.describe(rev), "count", len(cfg.Rules), "action_groups", len(cfg.ActionGroups))
}

func (s *alertService) refuse(p publishedRules, rev uint64, err error) {
	s.refused.Add(1)
	in := "none"
	if src := s.source.Load(); src != nil {
		in = fmt.Sprintf("revision %d", src.Revision)
	}
	s.log.Error("alert rules "+p.describe(rev)+" do not load on this node; the rules in force here ("+in+") are unchanged", "err", err)
}

// setConfig puts cfg, published as p at rev, in force. Called with s.mu.
// The groups first: a rule's notifications find the groups it names.
func (s *alertService) setConfig(cfg alert.Config, p publishedRules, rev uint64) error {
	s.disp.SetGroups(cfg.ActionGroups, cfg.SMTP)
	if err := s.mgr.SetRules(cfg.Rules); err != nil {
		return err
	}
	s.seen = max(s.seen, rev)
	s.source.Store(&api.ReloadResult{File: p.File, Rules: len(cfg.Rules), ActionGroups: len(cfg.ActionGroups),
		LoadedAt: p.LoadedAt, Revision: rev, LoadedBy: p.Node})
	return nil
}
