package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"
)

// PublishFunc publishes data on a NATS subject (the app passes the
// journal's connection).
type PublishFunc func(ctx context.Context, subject string, data []byte) error

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	Target  Target
	Publish PublishFunc  // NATS actions; nil: they fail
	HTTP    *http.Client // webhooks; default: a client with no overall timeout (each action has one)
	Retry   RetryPolicy  // default DefaultRetry
	Queue   int          // per destination, default 256
	Now     func() time.Time
	Logger  *slog.Logger
}

// Dispatcher turns transitions into notifications on one send loop per
// destination, rate limited per rule.
type Dispatcher struct {
	opt DispatcherOptions
	log *slog.Logger
	ctx context.Context // the send loops'; cancelled when Close gives up
	end context.CancelFunc

	mu         sync.Mutex
	groups     map[string]ActionGroup
	loops      map[string]*sendLoop
	byGroup    map[string][]*sendLoop
	buckets    map[string]*bucket
	suppressed map[string]bool // alert ids whose Fired was rate limited
	limited    uint64
	closed     bool
	wg         sync.WaitGroup
}

// NewDispatcher returns a dispatcher without action groups (SetGroups).
func NewDispatcher(opt DispatcherOptions) *Dispatcher {
	if opt.HTTP == nil {
		opt.HTTP = &http.Client{}
	}
	if opt.Retry.Attempts == 0 {
		opt.Retry = DefaultRetry
	}
	if opt.Queue <= 0 {
		opt.Queue = 256
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{
		opt: opt, log: opt.Logger, ctx: ctx, end: cancel,
		groups: map[string]ActionGroup{}, loops: map[string]*sendLoop{}, byGroup: map[string][]*sendLoop{},
		buckets: map[string]*bucket{}, suppressed: map[string]bool{},
	}
}

// SetGroups replaces the action groups (a reload). Destinations whose
// definition is unchanged keep their send loop and queue; removed ones
// finish what they have queued and stop.
func (d *Dispatcher) SetGroups(groups []ActionGroup, smtp SMTPConfig) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	loops := map[string]*sendLoop{}
	d.groups = map[string]ActionGroup{}
	d.byGroup = map[string][]*sendLoop{}
	for _, g := range groups {
		d.groups[g.Name] = g
		for i, a := range g.Actions {
			k := destKey(g.Name, i, a, smtp)
			l := d.loops[k]
			if l == nil {
				l = d.newLoop(g.Name, a, smtp)
				d.wg.Add(1)
				go func() { defer d.wg.Done(); l.run(d.ctx) }()
			}
			loops[k] = l
			d.byGroup[g.Name] = append(d.byGroup[g.Name], l)
		}
	}
	for k, l := range d.loops {
		if loops[k] == nil {
			close(l.q)
		}
	}
	d.loops = loops
}

func (d *Dispatcher) newLoop(group string, a Action, smtp SMTPConfig) *sendLoop {
	st := DestinationStats{Group: group, Kind: a.Kind()}
	var send sendFunc
	switch {
	case a.Webhook != nil:
		st.Target = redactURL(a.Webhook.URL)
		send = webhookSender(d.opt.HTTP, *a.Webhook)
	case a.Email != nil:
		st.Target = fmt.Sprint(a.Email.To)
		send = emailSender(smtp, *a.Email, d.opt.Target)
	case a.Command != nil:
		st.Target = a.Command.Argv[0]
		send = commandSender(*a.Command)
	case a.NATS != nil:
		st.Target = a.NATS.Subject
		send = natsSender(d.opt.Publish, *a.NATS)
	}
	return newSendLoop(st, send, d.opt.Queue, d.opt.Retry, d.log)
}

// Notify queues a on the destinations of the rule's action groups. It
// never blocks.
func (d *Dispatcher) Notify(a Alert) { d.NotifyDone(a, nil) }

// NotifyDone is Notify, then done (when not nil) with the outcome once
// every destination has finished with a: Sent also when nothing was to
// be sent (no action groups, rate limited). done runs on a send loop's
// goroutine, or on the caller's when nothing was queued.
func (d *Dispatcher) NotifyDone(a Alert, done func(Outcome)) {
	out, track, dropped := d.queue(a, done)
	if track == nil && done != nil {
		done(out)
	}
	// Outside d.mu: done may take its time.
	for range dropped {
		track.finish(Failed)
	}
}

// queue queues a; with done, it returns the tracker that will call it
// (nil when nothing was queued: out is the outcome) and how many
// destinations dropped a (their queues full).
func (d *Dispatcher) queue(a Alert, done func(Outcome)) (out Outcome, track *tracker, dropped int) {
	if len(a.Rule.ActionGroups) == 0 {
		return Sent, nil, 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return Abandoned, nil, 0
	}
	if !d.allow(a) {
		return Sent, nil, 0
	}
	payload, err := json.Marshal(BuildPayload(a, d.opt.Target))
	if err != nil {
		d.log.Error("alert payload", "rule", a.Rule.Name, "err", err)
		return Failed, nil, 0
	}
	var loops []*sendLoop
	seen := map[*sendLoop]bool{}
	for _, name := range a.Rule.ActionGroups {
		if _, ok := d.groups[name]; !ok {
			d.log.Warn("alert rule names an unknown action group", "rule", a.Rule.Name, "action_group", name)
			continue
		}
		for _, l := range d.byGroup[name] {
			if !seen[l] {
				seen[l] = true
				loops = append(loops, l)
			}
		}
	}
	if len(loops) == 0 {
		return Sent, nil, 0
	}
	n := notification{alert: a, payload: payload}
	if done != nil {
		n.track = &tracker{left: len(loops), out: Sent, done: done}
	}
	for _, l := range loops {
		if !l.enqueue(n) {
			dropped++
		}
	}
	return Sent, n.track, dropped
}

// allow applies the rule's rate limit to Fired notifications; a Resolved
// goes out exactly when its Fired did. Called with d.mu held.
func (d *Dispatcher) allow(a Alert) bool {
	if a.Condition == Resolved {
		if d.suppressed[a.ID] {
			delete(d.suppressed, a.ID)
			return false
		}
		return true
	}
	lim := a.Rule.RateLimit
	if lim.Count <= 0 || lim.Per <= 0 {
		return true
	}
	b := d.buckets[a.Rule.Name]
	if b == nil || b.limit != lim {
		b = &bucket{limit: lim, tokens: float64(lim.Count), last: d.opt.Now()}
		d.buckets[a.Rule.Name] = b
	}
	if b.take(d.opt.Now()) {
		return true
	}
	d.suppressed[a.ID] = true
	d.limited++
	d.log.Warn("alert notification suppressed by the rule's rate limit", "rule", a.Rule.Name, "alert", a.ID,
		"limit", fmt.Sprintf("%d per %s", lim.Count, lim.Per))
	return false
}

// bucket is a token bucket of RateLimit.Count tokens refilled over Per.
type bucket struct {
	limit  RateLimit
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time) bool {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(b.limit.Count), b.tokens+el.Seconds()*float64(b.limit.Count)/b.limit.Per.Seconds())
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// Stats lists every destination's counters, plus the number of
// notifications the rate limits suppressed.
func (d *Dispatcher) Stats() (dests []DestinationStats, rateLimited uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, g := range d.groupNames() {
		for _, l := range d.byGroup[g] {
			dests = append(dests, l.snapshot())
		}
	}
	return dests, d.limited
}

func (d *Dispatcher) groupNames() []string {
	names := make([]string, 0, len(d.groups))
	for n := range d.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close stops accepting notifications, lets the send loops deliver what
// they hold until ctx ends, then abandons the rest.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		for _, l := range d.loops {
			close(l.q)
		}
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.end()
		return nil
	case <-ctx.Done():
		d.end()
		<-done
		return fmt.Errorf("alert notifications still queued at shutdown were abandoned: %w", ctx.Err())
	}
}
