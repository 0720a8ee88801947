package probe

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// run is one probe's state: what earlier steps found, for later ones.
type run struct {
	t        *target
	cfg      Config
	rep      *Report
	addrs    []net.IP       // from step 1
	addr     map[int]string // port → the ip:port that connected in step 2
	passed   map[string]bool
	tls      map[int]*TLSResult
	clock    *ClockResult
	mqttOK   bool // step 5 connected
	wsOK     bool // step 6 connected
	progress func(string)
}

// Run probes and returns the report. Only a Config that cannot be used
// (no or bad connection string, bad flags) is an error: everything the
// network does is in the report. A cancelled ctx ends the run early with
// the steps done so far (Report.Interrupted).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	t, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	trust := "system"
	if t.roots != nil {
		trust = caLabel(t.caName)
	}
	r := &run{
		t: t, cfg: cfg,
		rep: &Report{
			ClientType: t.clientType, HostName: t.cs.HostName, DeviceID: t.cs.DeviceID, ModuleID: t.cs.ModuleID,
			DialHost: t.dialHost, MQTTPort: t.mqttPort, HTTPSPort: t.httpsPort,
			Proxy: t.redactedProxy(), Trust: trust, Started: t.now(),
		},
		addr: map[int]string{}, passed: map[string]bool{}, tls: map[int]*TLSResult{},
		progress: cfg.Progress,
	}
	if r.progress == nil {
		r.progress = func(string) {}
	}
	if cfg.OnStart != nil {
		cfg.OnStart(r.rep)
	}
	steps := []func(context.Context) Step{
		r.dnsStep,
		func(ctx context.Context) Step { return r.tcpStep(ctx, t.mqttPort) },
		r.httpsTCPStep,
		func(ctx context.Context) Step { return r.tlsStep(ctx, t.mqttPort) },
		func(ctx context.Context) Step { return r.tlsStep(ctx, t.httpsPort) },
		r.clockStep,
		r.mqttTLSStep,
		r.webSocketStep,
		r.keepAliveStep,
	}
	for _, step := range steps {
		if ctx.Err() != nil {
			r.rep.Interrupted = true
			break
		}
		start := time.Now()
		s := step(ctx)
		if s.Millis == 0 && s.Status != Skip {
			s.Millis = ms(time.Since(start))
		}
		if s.Status == Pass || s.Status == Warn {
			r.passed[key(s.Number, s.Target)] = true
		}
		r.rep.Steps = append(r.rep.Steps, s)
		if cfg.OnStep != nil {
			cfg.OnStep(s)
		}
	}
	if ctx.Err() != nil {
		r.rep.Interrupted = true
	}
	r.rep.finish()
	return r.rep, nil
}

func key(number int, target string) string { return strconv.Itoa(number) + " " + target }

// needs returns a skip step when the step (number, target) did not pass.
func (r *run) needs(s *Step, number int, target string) bool {
	if r.passed[key(number, target)] {
		return true
	}
	s.Status = Skip
	s.Summary = fmt.Sprintf("not run: needs %s to pass", Ref{number, stepNames[number], target})
	return false
}

func (r *run) newStep(number int, target string) Step {
	return Step{Number: number, Name: stepNames[number], Target: target}
}

// Targets as the report names them.
func (r *run) mqttTarget() string  { return r.t.mqttAddr() }
func (r *run) httpsTarget() string { return r.t.httpsAddr() }

func itoa(n int) string { return strconv.Itoa(n) }
