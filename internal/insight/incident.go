package insight

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// IncidentOptions tune mass-disconnect detection. Zero fields take the
// defaults.
type IncidentOptions struct {
	// Window is the span bursts are counted over; default 10 s.
	Window time.Duration
	// A burst is at least MinDevices drops in a Window (default 25), at
	// least Factor times the baseline (default 5) and at least FleetShare
	// of the devices connected before it (default 1 %).
	MinDevices int
	Factor     float64
	FleetShare float64
	// BaselineSpan is the time constant of the baseline (an exponentially
	// weighted mean of drops per Window, frozen during incidents); default
	// 10 minutes.
	BaselineSpan time.Duration
	// Settle is how long after detection the incident is announced (the
	// drop is usually still going on; waiting gives the grouping more
	// devices), earlier if the drop ends first; default 3 s.
	Settle time.Duration
	// An incident closes once its drop has ended (no burst for a Window)
	// and Recovered of its devices came back (default 0.9), or none came
	// back for QuietClose (default 10 minutes), or MaxOpen after it began
	// (default 1 hour).
	Recovered  float64
	QuietClose time.Duration
	MaxOpen    time.Duration
	// Keep is how many closed incidents are remembered; default 100.
	Keep int
}

func (o *IncidentOptions) defaults() {
	if o.Window <= 0 {
		o.Window = 10 * time.Second
	}
	if o.MinDevices <= 0 {
		o.MinDevices = 25
	}
	if o.Factor <= 0 {
		o.Factor = 5
	}
	if o.FleetShare <= 0 {
		o.FleetShare = 0.01
	}
	if o.BaselineSpan <= 0 {
		o.BaselineSpan = 10 * time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 3 * time.Second
	}
	if o.Recovered <= 0 || o.Recovered > 1 {
		o.Recovered = 0.9
	}
	if o.QuietClose <= 0 {
		o.QuietClose = 10 * time.Minute
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = time.Hour
	}
	if o.Keep <= 0 {
		o.Keep = 100
	}
}

// Incident states.
const (
	IncidentOpen   = "open"
	IncidentClosed = "closed"
)

// Incident is one mass disconnect: a burst of drops well above the recent
// baseline, grouped by what the devices share.
type Incident struct {
	// ID is stable for the incident: "md-" + its start (UTC) + the
	// TETHER_CONN position at which it was detected.
	ID    string `json:"id"`
	State string `json:"state"`
	// Start is the first drop's time, LastDrop the latest's; DetectedAt
	// when the burst crossed the threshold; End when it closed.
	Start      time.Time `json:"start"`
	DetectedAt time.Time `json:"detectedAt"`
	LastDrop   time.Time `json:"lastDrop"`
	End        time.Time `json:"end,omitzero"`
	// Devices dropped; Recovered of them connected again since.
	Devices   int `json:"devices"`
	Recovered int `json:"recovered"`
	// ConnectedBefore is how many devices were connected when it began.
	ConnectedBefore int `json:"connectedBefore"`
	// Baseline is the drops expected in a window (WindowSeconds) before
	// the incident; Peak the most seen in one window during it.
	Baseline      float64 `json:"baseline"`
	Peak          int     `json:"peak"`
	WindowSeconds int     `json:"windowSeconds"`
	// Groups are the dropped devices by dimension (ResultType, Reason,
	// SdkVersion, Protocol, SourcePrefix, SourceNetwork, HubNode), most
	// common value first.
	Groups []Group `json:"groups"`
	// Summary says it in one line: "500 devices dropped in 2 s: 100 %
	// 404104 network, from 10.2.x.x, azure-iot-device/1.18.4".
	Summary string `json:"summary"`
}

// Group is one dimension of an incident.
type Group struct {
	Dimension string       `json:"dimension"`
	Values    []GroupValue `json:"values"`
}

// GroupValue is one value of a dimension: how many of the dropped devices
// had it.
type GroupValue struct {
	Value   string  `json:"value"`
	Devices int     `json:"devices"`
	Share   float64 `json:"share"`
}

// Incident dimensions, in the order Groups lists them.
const (
	DimResultType    = "ResultType"
	DimReason        = "Reason"
	DimSDK           = "SdkVersion"
	DimProtocol      = "Protocol"
	DimSourcePrefix  = "SourcePrefix"
	DimSourceNetwork = "SourceNetwork"
	DimHubNode       = "HubNode"
	numDims          = 7
)

var dimNames = [numDims]string{DimResultType, DimReason, DimSDK, DimProtocol, DimSourcePrefix, DimSourceNetwork, DimHubNode}

// drop is one disconnect that counts towards a burst.
type drop struct {
	At   int64
	Dev  string
	Dims [numDims]string
}

type secSlot struct {
	Sec int64
	N   int
}

// openIncident is an incident being followed.
type openIncident struct {
	Incident
	devices      map[string]bool // dropped device → came back
	dims         [numDims]map[string]int
	published    bool
	dropEnded    bool
	quietSince   int64
	lastRecovery int64
}

// detector finds mass disconnects in the fleet's drops.
type detector struct {
	slots    []secSlot // per second of the window, ring by second
	cur      int64     // the newest second counted
	drops    []drop    // the drops of the last window, oldest first
	baseline float64   // drops per window, EWMA
	open     *openIncident
	closed   []Incident // newest last
}

func (t *detector) init() {}

func (t *detector) window(e *Engine) int { return max(int(e.o.Incidents.Window/time.Second), 1) }

// count is the drops in the window ending at second sec.
func (t *detector) count(e *Engine, sec int64) int {
	w := int64(t.window(e))
	n := 0
	for _, s := range t.slots {
		if s.Sec > sec-w && s.Sec <= sec {
			n += s.N
		}
	}
	return n
}

// advance folds the seconds that ended before at into the baseline.
func (t *detector) advance(e *Engine, at int64) {
	sec := at / 1000
	if len(t.slots) == 0 {
		t.slots = make([]secSlot, t.window(e))
		t.cur = sec
		return
	}
	if sec <= t.cur {
		return
	}
	alpha := 1 / e.o.Incidents.BaselineSpan.Seconds()
	w := float64(t.window(e))
	if t.open == nil {
		// The second that ended, then the empty ones up to sec.
		n := t.slots[int(t.cur)%len(t.slots)]
		v := 0
		if n.Sec == t.cur {
			v = n.N
		}
		t.baseline += alpha * (float64(v)*w - t.baseline)
		if gap := sec - t.cur - 1; gap > 0 {
			t.baseline *= math.Pow(1-alpha, float64(gap))
		}
	}
	t.cur = sec
	cut := at - e.o.Incidents.Window.Milliseconds()
	i := 0
	for i < len(t.drops) && t.drops[i].At <= cut {
		i++
	}
	t.drops = t.drops[i:]
	t.step(e, at)
}

// threshold is the drops in a window that make a burst.
func (t *detector) threshold(e *Engine, inWindow int) float64 {
	o := &e.o.Incidents
	return max(float64(o.MinDevices), o.Factor*t.baseline, o.FleetShare*float64(e.nConnected+inWindow))
}

// countsAsDrop: the disconnects a mass drop is made of. Clean closes,
// token expiries (a fleet's tokens may well expire together, and renew at
// once), administrators' disables, probes and the hub's own planned
// shutdown are not; a hub that died (hub-restart) or failed is.
func countsAsDrop(c Class, r presence.Reason) bool {
	switch c {
	case ClassNetwork, ClassKeepAlive, ClassTakeover, ClassProtocol:
		return true
	case ClassHub:
		return r != presence.ReasonServerShutdown
	}
	return false
}

func (t *detector) disconnected(e *Engine, d *device, r *rec, ev *presence.ConnectionEvent) {
	if !countsAsDrop(r.Class, ev.Reason) {
		return
	}
	if len(t.slots) == 0 {
		t.advance(e, r.At)
	}
	sec := r.At / 1000
	if sec < t.cur-int64(t.window(e)) {
		return // older than the window (events of a replay out of order)
	}
	s := &t.slots[int(sec)%len(t.slots)]
	if s.Sec != sec {
		*s = secSlot{Sec: sec}
	}
	s.N++
	dr := drop{At: r.At, Dev: d.ID, Dims: dropDims(ev)}
	if o := t.open; o != nil && !o.dropEnded {
		o.add(dr)
		o.quietSince = 0
	} else {
		t.drops = append(t.drops, dr)
	}
	t.step(e, r.At)
}

func (t *detector) connected(e *Engine, d *device, r *rec) {
	o := t.open
	if o == nil || r.Class == ClassProbe {
		return
	}
	if back, in := o.devices[d.ID]; in && !back {
		o.devices[d.ID] = true
		o.Recovered++
		o.lastRecovery = r.At
		t.step(e, r.At)
	}
}

// step opens, announces and closes incidents at time now.
func (t *detector) step(e *Engine, now int64) {
	o := &e.o.Incidents
	n := t.count(e, now/1000)
	if inc := t.open; inc != nil && inc.dropEnded && len(t.drops) > 0 && float64(n) >= t.threshold(e, n) {
		// A new burst while the last one's devices are still coming back:
		// that one closes as it stands, this one is its own incident.
		t.close(e, now)
	}
	if t.open == nil {
		if len(t.drops) == 0 || float64(n) < t.threshold(e, n) {
			return
		}
		start := t.drops[0].At
		inc := &openIncident{
			Incident: Incident{
				ID:    "md-" + time.UnixMilli(start).UTC().Format("20060102T150405Z") + fmt.Sprintf("-%d", e.connSeq),
				State: IncidentOpen, Start: time.UnixMilli(start).UTC(), DetectedAt: time.UnixMilli(now).UTC(),
				ConnectedBefore: e.nConnected + len(t.drops), Baseline: math.Round(t.baseline*100) / 100,
				WindowSeconds: t.window(e),
			},
			devices: map[string]bool{},
		}
		for i := range inc.dims {
			inc.dims[i] = map[string]int{}
		}
		for _, dr := range t.drops {
			inc.add(dr)
		}
		t.drops = nil
		t.open = inc
	}
	inc := t.open
	inc.Peak = max(inc.Peak, n)
	if !inc.dropEnded {
		if float64(n) < max(2*t.baseline, float64(o.MinDevices)/5) {
			if inc.quietSince == 0 {
				inc.quietSince = now
			}
			if now-inc.quietSince >= o.Window.Milliseconds() {
				inc.dropEnded = true
			}
		} else {
			inc.quietSince = 0
		}
	}
	if !inc.published && (inc.dropEnded || now-inc.DetectedAt.UnixMilli() >= o.Settle.Milliseconds()) {
		inc.published = true
		e.emitIncident(inc, now)
	}
	if !inc.dropEnded {
		return
	}
	lastMove := max(inc.lastRecovery, inc.LastDrop.UnixMilli())
	if float64(inc.Recovered) >= o.Recovered*float64(inc.Devices) ||
		now-lastMove >= o.QuietClose.Milliseconds() || now-inc.Start.UnixMilli() >= o.MaxOpen.Milliseconds() {
		t.close(e, now)
	}
}

// close ends the open incident at now.
func (t *detector) close(e *Engine, now int64) {
	inc := t.open
	if !inc.published {
		inc.published = true
		e.emitIncident(inc, now)
	}
	inc.State = IncidentClosed
	inc.End = time.UnixMilli(now).UTC()
	e.emitIncident(inc, now)
	t.closed = append(t.closed, inc.snapshot())
	if keep := e.o.Incidents.Keep; len(t.closed) > keep {
		t.closed = t.closed[len(t.closed)-keep:]
	}
	t.open = nil
}

// sweep runs the timers when no event comes.
func (t *detector) sweep(e *Engine, now int64) {
	if t.open != nil {
		t.step(e, now)
	}
}

func (o *openIncident) add(dr drop) {
	if _, ok := o.devices[dr.Dev]; ok {
		return
	}
	o.devices[dr.Dev] = false
	o.Devices++
	if t := time.UnixMilli(dr.At).UTC(); t.After(o.LastDrop) {
		o.LastDrop = t
	}
	for i, v := range dr.Dims {
		o.dims[i][v]++
	}
}

// snapshot is the incident as it stands, with its groups and summary.
func (o *openIncident) snapshot() Incident {
	inc := o.Incident
	inc.Groups = make([]Group, 0, numDims)
	for i, m := range o.dims {
		g := Group{Dimension: dimNames[i]}
		for v, n := range m {
			g.Values = append(g.Values, GroupValue{Value: v, Devices: n, Share: math.Round(float64(n)/float64(max(o.Devices, 1))*1000) / 1000})
		}
		slices.SortFunc(g.Values, func(a, b GroupValue) int {
			if a.Devices != b.Devices {
				return b.Devices - a.Devices
			}
			return strings.Compare(a.Value, b.Value)
		})
		if len(g.Values) > 5 {
			g.Values = g.Values[:5]
		}
		inc.Groups = append(inc.Groups, g)
	}
	inc.Summary = summary(&inc)
	return inc
}

// summary: "1,240 devices dropped in 60 s: 97 % 404104 network, from
// 10.2.x.x, azure-iot-device/1.18.4[; 1,203 came back]".
func summary(inc *Incident) string {
	var b strings.Builder
	span := inc.LastDrop.Sub(inc.Start).Round(time.Second)
	fmt.Fprintf(&b, "%s devices dropped in %s", thousands(inc.Devices), humanDuration(max(span, time.Second)))
	top := func(dim string) (GroupValue, bool) {
		for _, g := range inc.Groups {
			if g.Dimension == dim && len(g.Values) > 0 && g.Values[0].Value != "" && g.Values[0].Share >= 0.5 {
				return g.Values[0], true
			}
		}
		return GroupValue{}, false
	}
	var parts []string
	rt, okRT := top(DimResultType)
	rs, okRS := top(DimReason)
	switch {
	case okRT && okRS:
		share := min(rt.Share, rs.Share)
		parts = append(parts, fmt.Sprintf("%s %s %s", percent(share), rt.Value, rs.Value))
	case okRT:
		parts = append(parts, fmt.Sprintf("%s %s", percent(rt.Share), rt.Value))
	case okRS:
		parts = append(parts, fmt.Sprintf("%s %s", percent(rs.Share), rs.Value))
	}
	if v, ok := top(DimSourcePrefix); ok && v.Share >= 0.8 {
		parts = append(parts, fmt.Sprintf("from %s (%s)", v.Value, percent(v.Share)))
	} else if v, ok := top(DimSourceNetwork); ok {
		parts = append(parts, fmt.Sprintf("from %s (%s)", v.Value, percent(v.Share)))
	}
	if v, ok := top(DimSDK); ok {
		parts = append(parts, fmt.Sprintf("%s (%s)", v.Value, percent(v.Share)))
	}
	if len(parts) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(parts, ", "))
	}
	if inc.State == IncidentClosed {
		fmt.Fprintf(&b, "; %s of %s came back", thousands(inc.Recovered), thousands(inc.Devices))
	}
	return b.String()
}

func percent(share float64) string {
	p := share * 100
	if p >= 99.5 || p < 10 {
		return fmt.Sprintf("%.0f %%", math.Floor(p+0.5))
	}
	return fmt.Sprintf("%.0f %%", p)
}

// thousands writes n with comma separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// dropDims are the dimensions of one drop.
func dropDims(ev *presence.ConnectionEvent) [numDims]string {
	rt := ev.Result.Type
	if rt == "" {
		rt = "Success"
	}
	return [numDims]string{
		rt, string(ev.Reason), sdkShort(ev.SDKVersion), ev.Protocol,
		ev.MaskedIP, sourceNetwork(ev.MaskedIP), hubNode(ev.Hub, ev.Sequence),
	}
}

// sdkShort is "name/version" of a DeviceClientType, without its
// parenthesised platform part (the simulator's profile is kept).
func sdkShort(s string) string {
	if i := strings.IndexByte(s, ' '); i > 0 && !strings.HasPrefix(s, "tether-sim/") {
		return s[:i]
	}
	return s
}

// sourceNetwork is the /16 of a masked IPv4 address ("10.2.x.x"), or the
// first two groups of an IPv6 one.
func sourceNetwork(masked string) string {
	if masked == "" {
		return ""
	}
	if strings.Count(masked, ".") == 3 {
		p := strings.SplitN(masked, ".", 3)
		return p[0] + "." + p[1] + ".x.x"
	}
	if p := strings.SplitN(masked, ":", 3); len(p) == 3 {
		return p[0] + ":" + p[1] + "::/32"
	}
	return masked
}

// hubNode is the node that recorded the event: the hub name and the
// sequence number's node field.
func hubNode(hub, seq string) string {
	if len(seq) == 64 {
		return hub + "/" + seq[32:40]
	}
	return hub
}

// emitIncident records an incident's announcement or close.
func (e *Engine) emitIncident(o *openIncident, now int64) {
	inc := o.snapshot()
	kind := KindMassDisconnect
	if inc.State == IncidentClosed {
		kind = KindMassDisconnectResolved
	}
	e.o.Emit(Record{
		ID: inc.ID + ":" + inc.State, Kind: kind, Time: time.UnixMilli(now).UTC(), Hub: e.o.Hub,
		Source: e.connSeq, Incident: &inc,
	})
}

// Incidents returns the open incident (if any) and the closed ones, newest
// first, at most limit (0: all kept).
func (e *Engine) Incidents(limit int) []Incident {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Incident
	if e.det.open != nil {
		out = append(out, e.det.open.snapshot())
	}
	for i := len(e.det.closed) - 1; i >= 0; i-- {
		out = append(out, e.det.closed[i])
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
