package sim

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

// fleet runs devices [from, to) of a run in this process.
type fleet struct {
	cfg     *Config
	prof    Profile
	from    int
	to      int
	keySeed string
	start   time.Time     // the run's start (shared by every process)
	stop    chan struct{} // closed at the end of the run: devices disconnect
	hard    context.Context
	ledger  *Ledger
	twins   *twinRecorder
	stats   *Stats
	api     *hubclient.Client // registry writes (disabled fault); may be nil without that fault
	tls     *tls.Config
	nodeTLS map[string]*tls.Config // per address of MQTTAddrs: its host as ServerName
	rampEnd time.Duration
	pace    *pacer // Config.ConnectRate (pace.go)
	payload []byte
	// scenarios is each device's scenario (ScenarioAssignment).
	scenarios []Scenario
	wg        sync.WaitGroup

	outMu sync.Mutex
	// outages are the hub's (or its nodes') outages the run caused: the
	// hub-crash fault's, known from the start in every process, and the
	// rolling restart's stops, added as they begin (outage.go).
	outages []outage
}

// DeviceKey derives device id's symmetric key from the run's key seed, so
// every process of a run signs tokens for the devices the parent
// registered without fetching keys.
func DeviceKey(keySeed, id string) string {
	h := hmac.New(sha256.New, []byte(keySeed))
	h.Write([]byte(id))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func newFleet(hard context.Context, c *Config, from, to int, keySeed string, start time.Time, api *hubclient.Client) *fleet {
	f := &fleet{
		cfg: c, prof: c.profile(), from: from, to: to, keySeed: keySeed, start: start,
		stop: make(chan struct{}), hard: hard, ledger: &Ledger{}, twins: &twinRecorder{}, stats: &Stats{}, api: api,
		rampEnd:   time.Duration(float64(c.Devices) / c.Ramp * float64(time.Second)),
		payload:   make([]byte, c.Payload),
		scenarios: ScenarioAssignment(c),
		pace:      newPacer(c, from, to),
	}
	for i := range f.payload {
		f.payload[i] = 'a' + byte(i%26)
	}
	f.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: hostOnly(c.MQTTAddr, c.HubName),
		InsecureSkipVerify: c.Insecure, ClientSessionCache: nil}
	if len(c.CAPEM) > 0 {
		pool := x509Pool(c.CAPEM)
		f.tls.RootCAs = pool
	}
	for _, a := range c.MQTTAddrs {
		if f.nodeTLS == nil {
			f.nodeTLS = map[string]*tls.Config{}
		}
		t := f.tls.Clone()
		t.ServerName = hostOnly(a, c.HubName)
		f.nodeTLS[a] = t
	}
	if at, ok := c.HubCrashAt(); ok {
		f.outages = append(f.outages, outage{addr: c.crashNode(), at: start.Add(at), crash: true})
	}
	return f
}

func hostOnly(addr, fallback string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil || h == "" {
		return fallback
	}
	return h
}

// run starts every device and waits until all have stopped.
func (f *fleet) run() {
	for i := f.from; i < f.to; i++ {
		d := f.newDevice(i, false)
		f.wg.Add(1)
		go d.run()
		if d.plan.hasTwin {
			t := f.newDevice(i, true)
			t.plan = plan{} // the twin only runs; faults are the original's
			t.hasTwin = true
			t.disabled = d.disabled
			t.startAt = d.plan.twinAt
			if d.tw != nil {
				t.tw = newTwinClient(t)
				f.twins.do(func(l *TwinLedger) { l.Paired = append(l.Paired, int32(i)) })
			}
			f.wg.Add(1)
			go t.run()
		}
	}
	f.wg.Wait()
}

func (f *fleet) newDevice(i int, twin bool) *device {
	id := f.cfg.DeviceID(i)
	stream := uint64(i) * 2
	if twin {
		stream++
	}
	r := rand.New(rand.NewPCG(f.cfg.Seed, stream))
	d := &device{f: f, idx: i, id: id, twin: twin, key: DeviceKey(f.keySeed, id), rnd: r,
		src: net.IPv4(127, 0, 0, byte(2+i%f.cfg.Sources)),
		ws:  r.Float64() < f.cfg.WebSockets, disabled: &atomic.Bool{},
	}
	d.startAt = time.Duration(float64(i) / f.cfg.Ramp * float64(time.Second))
	d.plan = planFor(f.cfg, i, r, f.rampEnd)
	if d.sc = scenarioFor(f.scenarios[i], i, r, f.rampEnd); d.sc != nil {
		d.applyScenario()
	}
	d.hasTwin = d.plan.hasTwin
	if f.cfg.Twin || f.cfg.Methods {
		d.tw = newTwinClient(d)
	}
	return d
}

// stopped reports whether the run is ending.
func (f *fleet) stopped() bool {
	select {
	case <-f.stop:
		return true
	default:
		return false
	}
}

// sleep waits d or until the run ends; it reports whether d passed.
func (f *fleet) sleep(d time.Duration) bool {
	if d <= 0 {
		return !f.stopped()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.stop:
		return false
	}
}

// since is the offset of now from the run's start.
func (f *fleet) since() time.Duration { return time.Since(f.start) }
