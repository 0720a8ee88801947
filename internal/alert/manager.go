package alert

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Alert is one transition, as notified.
type Alert struct {
	ID         string
	Rule       Rule
	Condition  State // Fired or Resolved
	Dimensions map[string]string
	Value      float64
	HasValue   bool
	FiredAt    time.Time
	ResolvedAt time.Time // zero when Fired
	// The window of the evaluation that made the transition.
	WindowStart, WindowEnd time.Time
	Reason                 string
}

// Record is the history's form of a.
func (a Alert) Record() Record {
	r := Record{
		Time: a.FiredAt, AlertID: a.ID, Rule: a.Rule.Name, SignalType: a.Rule.Kind.SignalType(),
		Severity: a.Rule.Severity.String(), Condition: a.Condition, Key: seriesKey(a.Rule.SplitBy, a.Dimensions),
		Dimensions: a.Dimensions, Operator: a.Rule.Operator, Threshold: a.Rule.Threshold,
		FiredAt: a.FiredAt, Reason: a.Reason,
	}
	if a.HasValue {
		v := a.Value
		r.Value = &v
	}
	if a.Condition == Resolved {
		t := a.ResolvedAt
		r.Time, r.ResolvedAt = t, &t
	}
	return r
}

// NotifyFunc receives transitions in order; it must not block for long
// (the Dispatcher only queues).
type NotifyFunc func(Alert)

// Options of a Manager. Metrics and Logs may be nil: rules of that kind
// then fail to evaluate (the error is in their status).
type Options struct {
	Metrics MetricQueryFunc
	Logs    LogQueryFunc
	Notify  NotifyFunc
	History History // required
	// Now is the clock (default time.Now); tests inject one and call
	// Evaluate instead of Run.
	Now func() time.Time
	// LogDelay ends a log rule's window this long before the evaluation
	// time, so records still on their way to the log store are counted
	// (default 2s; negative: none).
	LogDelay time.Duration
	// Offset delays each scheduled evaluation past its multiple of the
	// frequency (default 100ms; negative: none), so the metric sampler
	// has recorded the second that just ended: the window [t−W, t) then
	// includes it.
	Offset time.Duration
	// NoDataGrace is how long a fired series of a metric rule may go
	// without data before an evaluation without data counts as
	// "condition not met" (default 5s). Until then such an evaluation is
	// no evidence either way: the sampler may simply be behind (a loaded
	// hub, or the first second after a start).
	NoDataGrace time.Duration
	Logger      *slog.Logger
	// IDSeed, when set, makes an alert's id a function of the seed, the
	// rule's name, the series and the evaluation time that fired it (a
	// UUID of their SHA-256) instead of random: the nodes of a cluster,
	// evaluating the same rules on the same schedule and data, give one
	// alert one id, so a Resolved sent by another alerts leader than the
	// Fired names the same alert. The app seeds it with the hub's
	// resource id.
	IDSeed string
	// NewID makes alert ids without IDSeed (default: random UUIDs).
	NewID func() string
}

// Manager holds the rules, evaluates them and keeps their alerts' state.
type Manager struct {
	opt Options
	log *slog.Logger

	mu       sync.Mutex
	rules    map[string]*ruleState
	restored map[string][]Record // fired before a restart, until the first SetRules
	started  time.Time           // no series had data before it
	runCtx   context.Context     // set while Run runs
}

type ruleState struct {
	evalMu sync.Mutex // one evaluation at a time

	mu        sync.Mutex
	rule      Rule
	fp        string
	instances map[string]*instance
	lastEval  time.Time
	lastErr   error
	evals     uint64
	failures  uint64

	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager restores the fired alerts from the history; they are
// attached to their rules by the first SetRules.
func NewManager(opt Options) (*Manager, error) {
	if opt.History == nil {
		return nil, errors.New("alert: a History is required")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.LogDelay == 0 {
		opt.LogDelay = 2 * time.Second
	}
	if opt.LogDelay < 0 {
		opt.LogDelay = 0
	}
	if opt.Offset == 0 {
		opt.Offset = 100 * time.Millisecond
	}
	if opt.Offset < 0 {
		opt.Offset = 0
	}
	if opt.NoDataGrace <= 0 {
		opt.NoDataGrace = 5 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.NewID == nil {
		opt.NewID = newUUID
	}
	if opt.Notify == nil {
		opt.Notify = func(Alert) {}
	}
	m := &Manager{opt: opt, log: opt.Logger, rules: map[string]*ruleState{}, restored: map[string][]Record{}, started: opt.Now()}
	for _, r := range opt.History.Active() {
		m.restored[r.Rule] = append(m.restored[r.Rule], r)
	}
	return m, nil
}

func fingerprint(r Rule) string {
	r.Pos, r.Description, r.ActionGroups, r.RateLimit = "", "", nil, RateLimit{}
	b, _ := json.Marshal(r)
	return string(b) + r.Frequency.String() + r.Window.String()
}

// SetRules replaces the rule set (a reload). Unchanged rules keep their
// state; a changed rule keeps its fired alerts and forgets its past
// evaluations; the fired alerts of removed or disabled rules resolve.
// Rules must be valid (Load checks them).
func (m *Manager) SetRules(rules []Rule) error {
	seen := map[string]bool{}
	for i := range rules {
		r := &rules[i]
		r.Defaults()
		if ps := r.Validate(); len(ps) > 0 {
			return fmt.Errorf("rule %q: %s: %s", r.Name, ps[0].Field, ps[0].Msg)
		}
		if seen[r.Name] {
			return fmt.Errorf("rule %q is defined twice", r.Name)
		}
		seen[r.Name] = true
	}
	now := m.opt.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rules {
		rs := m.rules[r.Name]
		fp := fingerprint(r)
		switch {
		case rs == nil:
			rs = &ruleState{rule: r, fp: fp, instances: map[string]*instance{}}
			m.rules[r.Name] = rs
			m.restore(rs, m.restored[r.Name])
			delete(m.restored, r.Name)
		case rs.fp != fp:
			m.stopLoop(rs)
			rs.mu.Lock()
			rs.rule, rs.fp = r, fp
			for k, in := range rs.instances {
				if in.state == Fired {
					in.reset(r.Evaluations)
				} else {
					delete(rs.instances, k)
				}
			}
			rs.lastErr = nil
			rs.mu.Unlock()
		default:
			rs.mu.Lock()
			rs.rule = r // description, action groups, rate limit, position
			rs.mu.Unlock()
		}
		if r.Disabled {
			m.stopLoop(rs)
			m.resolveAll(rs, now, "rule disabled")
		} else if m.runCtx != nil && rs.cancel == nil {
			m.startLoop(rs)
		}
	}
	for name, rs := range m.rules {
		if !seen[name] {
			m.stopLoop(rs)
			m.resolveAll(rs, now, "rule removed")
			delete(m.rules, name)
		}
	}
	// Alerts fired before a restart by rules that no longer exist.
	for name, recs := range m.restored {
		rs := &ruleState{rule: ruleFromRecord(recs[0]), instances: map[string]*instance{}}
		m.restore(rs, recs)
		m.resolveAll(rs, now, "rule removed")
		delete(m.restored, name)
	}
	return nil
}

// restore puts alerts fired before a restart back in place.
func (m *Manager) restore(rs *ruleState, recs []Record) {
	for _, rec := range recs {
		in := newInstance(rec.Key, rec.Dimensions, rs.rule.Evaluations)
		if in.dims == nil {
			in.dims = map[string]string{}
		}
		in.state, in.alertID, in.firedAt = Fired, rec.AlertID, rec.FiredAt
		if rec.Value != nil {
			in.value, in.hasData = *rec.Value, true
		}
		rs.instances[rec.Key] = in
	}
}

func ruleFromRecord(rec Record) Rule {
	r := Rule{Name: rec.Rule, Kind: KindMetric, Operator: rec.Operator, Threshold: rec.Threshold}
	if rec.SignalType == "Log" {
		r.Kind = KindLog
	}
	fmt.Sscanf(rec.Severity, "Sev%d", (*int)(&r.Severity))
	return r
}

// resolveAll resolves every fired instance of rs at t.
func (m *Manager) resolveAll(rs *ruleState, t time.Time, reason string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for k, in := range rs.instances {
		if in.state == Fired {
			m.resolve(rs, in, t, t, reason)
		}
		delete(rs.instances, k)
	}
}

// Evaluate evaluates rule name with its window ending at t (tests call it
// with an injected clock; Run calls it on schedule).
func (m *Manager) Evaluate(ctx context.Context, name string, t time.Time) error {
	m.mu.Lock()
	rs := m.rules[name]
	m.mu.Unlock()
	if rs == nil {
		return fmt.Errorf("no rule %q", name)
	}
	return m.evaluate(ctx, rs, t)
}

// EvaluateAll evaluates every enabled rule at t, in name order.
func (m *Manager) EvaluateAll(ctx context.Context, t time.Time) error {
	var errs []error
	for _, name := range m.names() {
		if err := m.Evaluate(ctx, name, t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.rules))
	for n := range m.rules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (m *Manager) evaluate(ctx context.Context, rs *ruleState, t time.Time) error {
	rs.evalMu.Lock()
	defer rs.evalMu.Unlock()
	rs.mu.Lock()
	rule, fp := rs.rule, rs.fp
	rs.mu.Unlock()
	if rule.Disabled {
		return nil
	}
	end := t
	if rule.Kind == KindLog {
		end = t.Add(-m.opt.LogDelay)
	}
	obs, err := m.observe(ctx, &rule, end)

	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.fp != fp || rs.rule.Disabled {
		return nil // reloaded meanwhile
	}
	rs.lastEval = t
	rs.evals++
	if err != nil {
		rs.failures++
		if rs.lastErr == nil || rs.lastErr.Error() != err.Error() {
			m.log.Warn("alert rule evaluation failed", "rule", rule.Name, "err", err)
		}
		rs.lastErr = err
		return fmt.Errorf("rule %q: %w", rule.Name, err)
	}
	rs.lastErr = nil
	from := end.Add(-rule.Window)
	seen := make(map[string]bool, len(obs))
	for _, o := range obs {
		seen[o.key] = true
		in := rs.instances[o.key]
		if in == nil {
			in = newInstance(o.key, o.dims, rule.Evaluations)
			rs.instances[o.key] = in
		}
		in.lastEval = t
		if !o.hasData {
			in.hasData = false
			if m.noEvidence(&rule, in, end) {
				continue
			}
			m.step(rs, in, false, t, from, end)
			continue
		}
		in.value, in.hasData, in.lastData = o.value, true, end
		m.step(rs, in, rule.Operator.Holds(o.value, rule.Threshold), t, from, end)
	}
	for k, in := range rs.instances {
		if seen[k] {
			continue
		}
		in.hasData, in.lastEval = false, t
		if m.noEvidence(&rule, in, end) {
			continue
		}
		m.step(rs, in, false, t, from, end)
		if in.idle() {
			delete(rs.instances, k)
		}
	}
	return nil
}

// noEvidence reports whether an evaluation without data, ending at end,
// leaves a fired instance of a metric rule as it is. A series that had
// data recently (or the manager just started) is more likely late than
// gone: the sampler records each second a little after it ends, later on
// a loaded hub, and nothing before its first second after a start. Only
// once it has had no data for NoDataGrace does "no data" count as
// "condition not met". Instances that are not fired take no data as no
// violation at once. Log rules have LogDelay for late records instead,
// and a group missing from a log query's result is a count of 0.
func (m *Manager) noEvidence(r *Rule, in *instance, end time.Time) bool {
	if in.state != Fired || r.Kind != KindMetric {
		return false
	}
	since := in.lastData
	if since.Before(m.started) {
		since = m.started
	}
	return end.Sub(since) <= m.opt.NoDataGrace
}

func (m *Manager) step(rs *ruleState, in *instance, violated bool, t, from, to time.Time) {
	fire, resolve := in.step(&rs.rule, violated)
	switch {
	case fire:
		in.state, in.alertID, in.firedAt, in.resolvedAt, in.falseRun = Fired, m.alertID(rs.rule.Name, in.key, t), t, time.Time{}, 0
		m.emit(rs, in, Alert{Condition: Fired, WindowStart: from, WindowEnd: to})
	case resolve:
		m.resolve(rs, in, t, from, fmt.Sprintf("condition not met for %d evaluations", rs.rule.ResolveAfter))
	}
}

func (m *Manager) resolve(rs *ruleState, in *instance, t, from time.Time, reason string) {
	in.state, in.resolvedAt = Resolved, t
	m.emit(rs, in, Alert{Condition: Resolved, WindowStart: from, WindowEnd: t, Reason: reason})
}

// emit records the transition, then notifies it. Called with rs.mu held,
// so one rule's transitions are recorded and queued in order.
func (m *Manager) emit(rs *ruleState, in *instance, a Alert) {
	a.ID, a.Rule, a.Dimensions = in.alertID, rs.rule, in.dims
	a.Value, a.HasValue = in.value, in.hasData
	a.FiredAt, a.ResolvedAt = in.firedAt, in.resolvedAt
	if err := m.opt.History.Append(a.Record()); err != nil {
		m.log.Error("alert transition not recorded", "rule", a.Rule.Name, "alert", a.ID, "condition", a.Condition, "err", err)
	}
	m.log.Info("alert "+strings.ToLower(string(a.Condition)), "rule", a.Rule.Name, "alert", a.ID, "severity", a.Rule.Severity.String(), "dimensions", a.Dimensions, "value", a.Value)
	m.opt.Notify(a)
}

// Run evaluates every enabled rule on its schedule (multiples of its
// frequency plus Offset) until ctx ends. Rules set while it runs are scheduled
// too.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.runCtx = ctx
	for _, rs := range m.rules {
		if !rs.rule.Disabled {
			m.startLoop(rs)
		}
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	for _, rs := range m.rules {
		m.stopLoop(rs)
	}
	m.runCtx = nil
	m.mu.Unlock()
}

// startLoop and stopLoop are called with m.mu held.
func (m *Manager) startLoop(rs *ruleState) {
	ctx, cancel := context.WithCancel(m.runCtx)
	rs.cancel, rs.done = cancel, make(chan struct{})
	go m.loop(ctx, rs, rs.rule.Frequency, rs.done)
}

func (m *Manager) stopLoop(rs *ruleState) {
	if rs.cancel == nil {
		return
	}
	rs.cancel()
	<-rs.done
	rs.cancel, rs.done = nil, nil
}

func (m *Manager) loop(ctx context.Context, rs *ruleState, freq time.Duration, done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := m.opt.Now()
		off := m.opt.Offset % freq
		next := now.Add(-off).Truncate(freq).Add(freq + off)
		timer.Reset(next.Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		ectx, cancel := context.WithTimeout(ctx, max(freq, 10*time.Second))
		_ = m.evaluate(ectx, rs, next)
		cancel()
	}
}

// alertID is the id of the alert that series key of rule fires at t.
func (m *Manager) alertID(rule, key string, t time.Time) string {
	if m.opt.IDSeed == "" {
		return m.opt.NewID()
	}
	h := sha256.New()
	for _, part := range []string{m.opt.IDSeed, rule, key, strconv.FormatInt(t.UnixNano(), 10)} {
		h.Write([]byte(part))
		h.Write([]byte{0}) // no two part lists hash the same bytes
	}
	var b [16]byte
	copy(b[:], h.Sum(nil))
	return formatUUID(b, 8) // RFC 9562's version for hash-based ids other than MD5 and SHA-1
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return formatUUID(b, 4)
}

// formatUUID sets b's version and variant bits and formats it.
func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
