package insight

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Diagnosis is the answer to "what is wrong with this device": verdicts,
// strongest first, over one window of its history.
type Diagnosis struct {
	DeviceID string `json:"deviceId"`
	// Since and Until bound the window asked for; CountedFrom is where the
	// counts begin (earlier than Since when only hourly or daily counters
	// reach back that far).
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	CountedFrom time.Time `json:"countedFrom"`
	// Status: "problem" (a verdict names a fault), "healthy" (none, or
	// only benign ones), "no-history" (no event of the device yet).
	Status string `json:"status"`
	// Summary is one line: the first fault's title, or "no problem found"
	// with the device's numbers.
	Summary  string    `json:"summary"`
	Numbers  Numbers   `json:"numbers"`
	Verdicts []Verdict `json:"verdicts"`
	// Probe is the device's latest `tether probe`, if any.
	Probe *ProbeNote `json:"probe,omitempty"`
	// Registry is what the registry journal says about the device.
	Registry *RegistryNote `json:"registry,omitempty"`
	// PendingEvents are journal events the engine had not applied yet when
	// it answered (it is catching up after a start).
	PendingEvents int64 `json:"pendingEvents,omitempty"`
}

// Diagnosis statuses.
const (
	StatusProblem   = "problem"
	StatusHealthy   = "healthy"
	StatusNoHistory = "no-history"
)

// Numbers are the device's figures over the window.
type Numbers struct {
	Connected      bool      `json:"connected"`
	ConnectedSince time.Time `json:"connectedSince,omitzero"`
	// Connects counts every accepted connection (renewals included);
	// Reconnects only those the flap score counts.
	Connects    int            `json:"connects"`
	Renewals    int            `json:"renewals"`
	Reconnects  int            `json:"reconnects"`
	Disconnects map[string]int `json:"disconnects"` // by class: network, keep-alive, takeover, …
	Refusals    map[string]int `json:"refusals"`    // by class: refused-expired, refused-signature, …
	// FirstEvent is the device's first event in the window (the counts'
	// span starts at the later of it and CountedFrom).
	FirstEvent time.Time `json:"firstEvent,omitzero"`
	// ReconnectsPerHour is Reconnects over the window's observed span.
	ReconnectsPerHour float64   `json:"reconnectsPerHour"`
	Flap              FlapScore `json:"flap"`
	// MedianSessionSeconds is the median length of the sessions that ended
	// in the window (from the recent events the engine keeps).
	MedianSessionSeconds float64       `json:"medianSessionSeconds,omitempty"`
	TokenLifetimeSeconds float64       `json:"tokenLifetimeSeconds,omitempty"`
	KeepAliveSeconds     int           `json:"keepAliveSeconds,omitempty"`
	Sources              []SourceCount `json:"sources"`
	SDKVersions          []SDKCount    `json:"sdkVersions"`
}

// SourceCount is one source address of the device.
type SourceCount struct {
	MaskedIP string    `json:"maskedIpAddress"`
	Connects int       `json:"connects"`
	Refusals int       `json:"refusals"`
	Drops    int       `json:"drops"`
	LastSeen time.Time `json:"lastSeen"`
}

// SDKCount is one SDK version the device used.
type SDKCount struct {
	SDKVersion string    `json:"sdkVersion"`
	Events     int       `json:"events"`
	LastSeen   time.Time `json:"lastSeen"`
}

// Verdict is one cause found in the history.
type Verdict struct {
	// Cause is a stable identifier (Causes lists them).
	Cause string `json:"cause"`
	// Title says it in a few words.
	Title string `json:"title"`
	// Benign verdicts describe expected behaviour (token renewals).
	Benign bool `json:"benign,omitempty"`
	// Confidence is 0–1.
	Confidence  float64  `json:"confidence"`
	Evidence    Evidence `json:"evidence"`
	Explanation string   `json:"explanation"`
	Fix         string   `json:"fix"`
	// Query is KQL that shows the evidence, runnable as is with `tether
	// query` (POST /api/v1/query).
	Query string `json:"query"`

	strength float64 // ordering: confidence × how much of the trouble it explains
}

// Evidence is what a verdict rests on.
type Evidence struct {
	// Counts are the events the verdict rests on, by name.
	Counts map[string]int `json:"counts"`
	// Pattern is the time pattern in words ("every 45 min ± 1 %").
	Pattern string `json:"pattern,omitempty"`
	// First and Last are the first and latest of those events in the window.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Share is the part of the device's trouble (disconnects and refusals
	// other than renewals and probes) the verdict explains.
	Share       float64  `json:"share"`
	Sources     []string `json:"sources,omitempty"`
	SDKVersions []string `json:"sdkVersions,omitempty"`
	// Cause-specific figures.
	PeriodSeconds        float64   `json:"periodSeconds,omitempty"`
	IdleSeconds          float64   `json:"idleSeconds,omitempty"`
	KeepAliveSeconds     int       `json:"keepAliveSeconds,omitempty"`
	SuggestedKeepAlive   int       `json:"suggestedKeepAliveSeconds,omitempty"`
	TokenLifetimeSeconds float64   `json:"tokenLifetimeSeconds,omitempty"`
	ExpiredBySeconds     float64   `json:"expiredBySeconds,omitempty"`
	ClockSkewSeconds     *float64  `json:"clockSkewSeconds,omitempty"`
	RatePerHour          float64   `json:"ratePerHour,omitempty"`
	KeyChangedAt         time.Time `json:"keyChangedAt,omitzero"`
	ErrorsOnRenewal      *bool     `json:"errorsOnRenewal,omitempty"`
	SDK                  string    `json:"sdk,omitempty"`
	// Samples are 3–5 of the records, with their times.
	Samples []Sample `json:"samples"`
}

// Sample is one record of the evidence, in the Connections log's words.
type Sample struct {
	Time              time.Time `json:"time"`
	OperationName     string    `json:"operationName"`
	ResultType        string    `json:"resultType,omitempty"`
	ResultDescription string    `json:"resultDescription,omitempty"`
	Reason            string    `json:"reason,omitempty"`
	MaskedIP          string    `json:"maskedIpAddress,omitempty"`
	SDKVersion        string    `json:"sdkVersion,omitempty"`
	SessionID         string    `json:"sessionId,omitempty"`
	Note              string    `json:"note,omitempty"`
}

// ProbeNote is the device's latest probe.
type ProbeNote struct {
	Time     time.Time `json:"time"`
	MaskedIP string    `json:"maskedIpAddress"`
	OK       bool      `json:"connected"`
	Refusal  string    `json:"refusal,omitempty"`
	Note     string    `json:"note"`
}

// RegistryNote is the device's registry history as the journal told it.
type RegistryNote struct {
	Status     string    `json:"status,omitempty"`
	Created    time.Time `json:"created,omitzero"`
	Disabled   time.Time `json:"disabled,omitzero"`
	Enabled    time.Time `json:"enabled,omitzero"`
	Deleted    time.Time `json:"deleted,omitzero"`
	KeyChanged time.Time `json:"keyChanged,omitzero"`
	KeyChange  string    `json:"keyChange,omitempty"`
	Caller     string    `json:"caller,omitempty"`
}

// Cause identifiers.
const (
	CauseDuplicateIdentity = "duplicate-identity"
	CauseTokenRenewal      = "token-renewal"
	CauseExpiredToken      = "expired-token"
	CauseWrongKey          = "wrong-key"
	CauseDisabledDevice    = "disabled-device"
	CauseIdleTimeout       = "idle-timeout"
	CauseUnstableNetwork   = "unstable-network"
	CauseHubSide           = "hub-side"
	CauseFlapping          = "flapping"
)

// Causes lists the cause identifiers, in the order the issue names them.
var Causes = []string{
	CauseDuplicateIdentity, CauseTokenRenewal, CauseExpiredToken, CauseWrongKey, CauseDisabledDevice,
	CauseIdleTimeout, CauseUnstableNetwork, CauseHubSide, CauseFlapping,
}

// minConfidence is the confidence below which a verdict is not reported.
const minConfidence = 0.3

// ErrWindow: a window the engine cannot answer.
var ErrWindow = fmt.Errorf("insight: the window must end after it starts and reach back at most %s", humanDuration(Horizon))

// Diagnose reads the device's history over [since, until] (until zero:
// the engine's time) and returns its verdicts. It looks at one device's
// counters and latest events only: its cost does not grow with the log.
func (e *Engine) Diagnose(id string, since, until time.Time) (Diagnosis, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now
	if !until.IsZero() {
		now = until.UnixMilli()
	}
	if since.IsZero() {
		since = time.UnixMilli(now).Add(-Horizon)
	}
	s := since.UnixMilli()
	if s >= now || now-s > Horizon.Milliseconds()+msHour {
		return Diagnosis{}, fmt.Errorf("%w (asked: %s to %s)", ErrWindow, since.UTC().Format(time.RFC3339), time.UnixMilli(now).UTC().Format(time.RFC3339))
	}
	diag := Diagnosis{DeviceID: id, Since: since.UTC(), Until: time.UnixMilli(now).UTC(), Verdicts: []Verdict{}}
	d := e.devices[id]
	if d == nil || d.N == 0 {
		diag.CountedFrom = diag.Since
		diag.Status = StatusNoHistory
		diag.Summary = "no connection recorded for this device yet"
		diag.Numbers = Numbers{Disconnects: map[string]int{}, Refusals: map[string]int{}, Sources: []SourceCount{}, SDKVersions: []SDKCount{}}
		if d != nil {
			diag.Registry = e.registryNote(d)
		}
		return diag, nil
	}
	f := e.facts(d, s, now)
	diag.CountedFrom = time.UnixMilli(f.from).UTC()
	diag.Numbers = f.numbers()
	for _, eval := range evaluators {
		if v := eval(f); v != nil && v.Confidence >= minConfidence {
			v.Confidence = round2(v.Confidence)
			v.Evidence.Share = round2(v.Evidence.Share)
			if v.Evidence.Samples == nil {
				v.Evidence.Samples = []Sample{}
			}
			diag.Verdicts = append(diag.Verdicts, *v)
		}
	}
	slices.SortStableFunc(diag.Verdicts, func(a, b Verdict) int {
		if a.Benign != b.Benign {
			if a.Benign {
				return 1
			}
			return -1
		}
		switch {
		case a.strength > b.strength:
			return -1
		case a.strength < b.strength:
			return 1
		}
		return 0
	})
	diag.Probe = e.probeNote(d, s)
	diag.Registry = e.registryNote(d)
	diag.Status, diag.Summary = StatusHealthy, f.healthySummary()
	if len(diag.Verdicts) > 0 && !diag.Verdicts[0].Benign {
		diag.Status = StatusProblem
		diag.Summary = diag.Verdicts[0].Title
	}
	return diag, nil
}

// facts are what every cause's evaluator reads: the device, its window
// counts and its recent events in the window.
type facts struct {
	e        *Engine
	d        *device
	since    int64
	now      int64
	from     int64 // where the counts begin
	observed int64 // the later of from and the device's first event
	n        counts
	recs     []rec // the ring's events in the window, oldest first
	trouble  int   // disconnects and refusals that are not renewals or probes
}

func (e *Engine) facts(d *device, since, now int64) *facts {
	f := &facts{e: e, d: d, since: since, now: now}
	f.n, f.from = d.window(since, now)
	f.recs = d.recent(since)
	for i := len(f.recs) - 1; i >= 0 && f.recs[i].At > now; i-- {
		f.recs = f.recs[:i] // events after until
	}
	first := now
	for c := range numClasses {
		if t := d.First[c]; t != 0 && t < first {
			first = t
		}
	}
	f.observed = max(f.from, first)
	n := &f.n
	renewed := n.sum(ClassRenewal, ClassRenewalExpiry)
	for c := range numClasses {
		if c.trouble() {
			f.trouble += int(n[c])
		}
	}
	f.trouble = max(f.trouble-renewed, 0)
	return f
}

// hours is the observed span of the window in hours (at least a minute).
func (f *facts) hours() float64 {
	return max(float64(f.now-f.observed), float64(time.Minute/time.Millisecond)) / float64(msHour)
}

func (f *facts) str(i uint32) string { return f.e.strs.str(i) }

func (f *facts) numbers() Numbers {
	n := &f.n
	d := f.d
	nb := Numbers{
		Connected:   d.Live.Connected,
		Connects:    n.sum(ClassConnect, ClassRenewal, ClassRenewalExpiry, ClassReturn),
		Renewals:    n.sum(ClassRenewal, ClassRenewalExpiry),
		Reconnects:  int(n[ClassConnect]),
		Disconnects: map[string]int{},
		Refusals:    map[string]int{},
		Flap:        f.e.flapScore(d, f.now),
	}
	if d.Live.Connected {
		nb.ConnectedSince = time.UnixMilli(d.Live.Since).UTC()
	}
	nb.ReconnectsPerHour = round1(float64(nb.Reconnects) / f.hours())
	if f.observed > f.from {
		nb.FirstEvent = time.UnixMilli(f.observed).UTC()
	}
	for c := ClassClientClose; c <= ClassProtocol; c++ {
		if n[c] > 0 {
			nb.Disconnects[c.String()] = int(n[c])
		}
	}
	for c := ClassRefusedExpired; c < numClasses; c++ {
		if n[c] > 0 {
			nb.Refusals[c.String()] = int(n[c])
		}
	}
	var durs, lifes []float64
	ka := 0
	for _, r := range f.recs {
		if r.Flags&flagProbe != 0 {
			continue
		}
		if r.Class.isConnect() {
			if _, ok := r.life(); ok {
				lifes = append(lifes, float64(r.Life))
			}
			if r.KA > 0 {
				ka = int(r.KA)
			}
		}
		if r.Class >= ClassClientClose && r.Class <= ClassProtocol {
			durs = append(durs, float64(r.Dur)/1000)
		}
	}
	nb.MedianSessionSeconds = round1(spreadOf(durs).Median)
	nb.TokenLifetimeSeconds = round1(spreadOf(lifes).Median)
	nb.KeepAliveSeconds = ka
	nb.Sources = []SourceCount{}
	for _, s := range d.Srcs {
		nb.Sources = append(nb.Sources, SourceCount{MaskedIP: f.str(s.Src), Connects: int(s.Connects), Refusals: int(s.Refusals), Drops: int(s.Drops), LastSeen: time.UnixMilli(s.Last).UTC()})
	}
	slices.SortFunc(nb.Sources, func(a, b SourceCount) int { return b.LastSeen.Compare(a.LastSeen) })
	nb.SDKVersions = []SDKCount{}
	for _, s := range d.SDKs {
		nb.SDKVersions = append(nb.SDKVersions, SDKCount{SDKVersion: f.str(s.SDK), Events: int(s.Events), LastSeen: time.UnixMilli(s.Last).UTC()})
	}
	slices.SortFunc(nb.SDKVersions, func(a, b SDKCount) int { return b.LastSeen.Compare(a.LastSeen) })
	return nb
}

// healthySummary: "no problem found: 14 connects (12 token renewals), no
// errors in 7 d".
func (f *facts) healthySummary() string {
	n := &f.n
	connects := n.sum(ClassConnect, ClassRenewal, ClassRenewalExpiry, ClassReturn)
	var b strings.Builder
	fmt.Fprintf(&b, "no problem found: %s", plural(connects, "connect"))
	if r := n.sum(ClassRenewal, ClassRenewalExpiry); r > 0 {
		fmt.Fprintf(&b, " (%s)", plural(r, "token renewal"))
	}
	if f.trouble == 0 {
		b.WriteString(", no errors")
	} else {
		fmt.Fprintf(&b, ", %s", plural(f.trouble, "other disconnect or refusal"))
	}
	fmt.Fprintf(&b, " in %s", humanDuration(time.Duration(f.now-f.observed)*time.Millisecond))
	return b.String()
}

// sample renders r as a log record.
func (f *facts) sample(r rec, note string) Sample {
	s := Sample{
		Time: r.time(), ResultType: resultType(r.Result), ResultDescription: resultDescriptions[r.Result],
		Reason: string(r.reason()), MaskedIP: f.str(r.Src), SDKVersion: f.str(r.SDK), SessionID: r.sessionID(), Note: note,
	}
	s.OperationName = "deviceConnect"
	if r.Op == opDisconnect {
		s.OperationName = "deviceDisconnect"
	}
	if r.Class == ClassTokenExpiry {
		s.ResultType, s.ResultDescription = "401003", resultDescriptions[401003]
		if s.Note == "" {
			s.Note = "then 404104 DeviceConnectionClosedRemotely"
		}
	}
	if r.Op == opRefused && s.ResultType == "" {
		s.ResultType, s.ResultDescription = "401003", resultDescriptions[401003]
	}
	return s
}

// samples picks up to 5 of the events that match keep: the first one and
// the latest four (or all when there are fewer).
func (f *facts) samples(keep func(*rec) bool, note func(*rec) string) []Sample {
	var idx []int
	for i := range f.recs {
		if keep(&f.recs[i]) {
			idx = append(idx, i)
		}
	}
	if len(idx) > 5 {
		idx = append(idx[:1], idx[len(idx)-4:]...)
	}
	out := make([]Sample, 0, len(idx))
	for _, i := range idx {
		n := ""
		if note != nil {
			n = note(&f.recs[i])
		}
		out = append(out, f.sample(f.recs[i], n))
	}
	return out
}

// span returns the first and latest time of the events of classes in the
// window (from the ring, else the device's first/last times bounded by
// the window).
func (f *facts) span(classes ...Class) (first, last time.Time) {
	var a, b int64
	for _, r := range f.recs {
		if slices.Contains(classes, r.Class) {
			if a == 0 {
				a = r.At
			}
			b = r.At
		}
	}
	for _, c := range classes {
		if t := f.d.First[c]; t != 0 && t >= f.from && (a == 0 || t < a) {
			a = t
		}
		if t := f.d.Last[c]; t != 0 && t <= f.now && t > b {
			b = t
		}
	}
	if a != 0 {
		first = time.UnixMilli(a).UTC()
	}
	if b != 0 {
		last = time.UnixMilli(b).UTC()
	}
	return first, last
}

func (e *Engine) probeNote(d *device, since int64) *ProbeNote {
	p := d.Probe
	if p.At == 0 || p.At < since {
		return nil
	}
	n := &ProbeNote{Time: time.UnixMilli(p.At).UTC(), MaskedIP: e.strs.str(p.Src), OK: p.OK}
	if p.OK {
		n.Note = fmt.Sprintf("a probe from %s connected as this device at %s: the hub, the network path from there and the device's credentials worked then",
			n.MaskedIP, n.Time.Format("2006-01-02 15:04:05 UTC"))
	} else {
		n.Refusal = p.Why.String()
		n.Note = fmt.Sprintf("a probe from %s was refused (%s) at %s", n.MaskedIP, n.Refusal, n.Time.Format("2006-01-02 15:04:05 UTC"))
	}
	return n
}

func (e *Engine) registryNote(d *device) *RegistryNote {
	g := d.Reg
	if g == (regState{}) {
		return nil
	}
	t := func(ms int64) time.Time {
		if ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms).UTC()
	}
	return &RegistryNote{Status: g.Status, Created: t(g.Created), Disabled: t(g.Disabled), Enabled: t(g.Enabled),
		Deleted: t(g.Deleted), KeyChanged: t(g.KeyChanged), KeyChange: g.KeyChange, Caller: g.Caller}
}
