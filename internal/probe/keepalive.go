package probe

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tether-hub/tether/internal/mqttclient"
)

// KeepAliveResult is what step 7 found.
type KeepAliveResult struct {
	Transport   string  `json:"transport"`
	IdleSeconds float64 `json:"idleSeconds"`
	// KeepAliveSeconds is the keep-alive announced in the first round's
	// CONNECT: long enough that the hub itself (1.5 × keep-alive) never
	// ends a round.
	KeepAliveSeconds int         `json:"keepAliveSeconds"`
	Rounds           []IdleRound `json:"rounds"`
	// SurvivedSeconds is the longest idle gap the flow survived (0: none).
	SurvivedSeconds float64 `json:"survivedSeconds"`
	// DiedAfterSeconds is the shortest idle after which it was found
	// dead (absent when none died); How says how: "closed" or "reset"
	// (cut while idle, at that moment), or "dead" (found dead when the
	// probe spoke after the gap: a silent drop).
	DiedAfterSeconds float64 `json:"diedAfterSeconds,omitempty"`
	How              string  `json:"how,omitempty"`
	// SuggestedKeepAliveSeconds is the longest keep-alive this path
	// allows with a margin (a device pings once per keep-alive).
	SuggestedKeepAliveSeconds int `json:"suggestedKeepAliveSeconds,omitempty"`
}

// IdleRound is one connection held idle.
type IdleRound struct {
	IdleSeconds float64 `json:"idleSeconds"`
	// Outcome: alive (answered a ping after the gap), closed or reset
	// (cut during the gap), dead (no answer, or a reset, when pinged after
	// the gap), error (could not connect).
	Outcome      string  `json:"outcome"`
	AfterSeconds float64 `json:"afterSeconds"`
	Detail       string  `json:"detail,omitempty"`
	// Traffic counts packets the hub sent during the gap (then the gap
	// was not silent).
	Traffic int `json:"traffic,omitempty"`
}

// maxIdleRounds bounds the narrowing of a silent drop: the first gap
// plus three halvings, at most about twice --idle in all.
const maxIdleRounds = 4

// keepAliveStep is step 7: hold a connection idle and see whether, when
// and how the path kills it. A silent drop is narrowed down by halving
// the gap on fresh connections.
func (r *run) keepAliveStep(ctx context.Context) Step {
	var s Step
	var dial dialFunc
	var transport string
	switch {
	case r.cfg.Idle <= 0:
		s = r.newStep(StepKeepAlive, "")
		s.Status, s.Summary = Skip, "not asked for (--idle DURATION)"
		return s
	case r.mqttOK:
		s, dial, transport = r.newStep(StepKeepAlive, r.mqttTarget()), r.dialMQTTTLS, "mqtt-tls"
	case r.wsOK:
		s, dial, transport = r.newStep(StepKeepAlive, r.httpsTarget()), r.dialWebSocket, "mqtt-ws"
	default:
		s = r.newStep(StepKeepAlive, "")
		s.Status, s.Summary = Skip, "not run: needs step 5 (mqtt) or step 6 (websocket) to connect"
		return s
	}
	idle := r.cfg.Idle
	res := &KeepAliveResult{Transport: transport, IdleSeconds: idle.Seconds(), KeepAliveSeconds: keepAliveFor(idle, r.t.timeout)}
	s.KeepAlive = res
	var lo, hi time.Duration // longest survived, shortest died
	gap := idle
	for round := 1; round <= maxIdleRounds && ctx.Err() == nil; round++ {
		r.progress(fmt.Sprintf("step 7 keepalive, round %d: holding a %s connection idle for %s", round, transport, gap.Round(time.Millisecond)))
		rd := r.idleRound(ctx, dial, gap)
		res.Rounds = append(res.Rounds, rd)
		after := time.Duration(rd.AfterSeconds * float64(time.Second))
		switch rd.Outcome {
		case "alive":
			lo = max(lo, gap)
		case "closed", "reset":
			hi, res.How = after, rd.Outcome
		case "dead":
			hi, res.How = gap, rd.Outcome
		}
		if rd.Outcome != "dead" && rd.Outcome != "alive" || hi == 0 || hi-lo <= hi/4 {
			break
		}
		gap = lo + (hi-lo)/2
	}
	res.SurvivedSeconds = lo.Seconds()
	if hi > 0 {
		res.DiedAfterSeconds = hi.Seconds()
	}
	r.keepAliveVerdict(&s, res, lo, hi)
	return s
}

// keepAliveFor is the keep-alive to announce so that the hub's own
// timeout (1.5 × keep-alive, at most 1767 s) outlasts gap + the ping.
func keepAliveFor(gap, timeout time.Duration) int {
	return int(math.Ceil((gap + timeout).Seconds())) + 1
}

func (r *run) keepAliveVerdict(s *Step, res *KeepAliveResult, lo, hi time.Duration) {
	last := res.Rounds[len(res.Rounds)-1]
	switch {
	case last.Outcome == "error":
		s.Status = Fail
		s.Summary = "could not connect for the idle test: " + last.Detail
		return
	case hi == 0 && lo > 0:
		s.Status = Pass
		res.SuggestedKeepAliveSeconds = min(int(lo.Seconds()), 1177)
		s.Summary = fmt.Sprintf("an idle connection survived %s and answered a ping", roundIdle(lo))
		s.Hint = fmt.Sprintf("keep-alives up to %ds are safe on this path (SDK defaults: Python 60, Node 180, Java 230, C 240, C# 300); longer idle periods were not tested", res.SuggestedKeepAliveSeconds)
	case hi > 0:
		s.Status = Fail
		base := lo
		if res.How != "dead" || lo == 0 {
			base = hi
		}
		res.SuggestedKeepAliveSeconds = max(1, int(base.Seconds()*0.8))
		switch res.How {
		case "closed", "reset":
			how := "closed (FIN)"
			if res.How == "reset" {
				how = "reset (RST)"
			}
			s.Summary = fmt.Sprintf("the idle connection was %s after %s by something on the path (the hub would have waited %ds)", how, roundIdle(hi), res.KeepAliveSeconds*3/2)
		default:
			window := fmt.Sprintf("between %s and %s", roundIdle(lo), roundIdle(hi))
			if lo == 0 {
				window = "within " + roundIdle(hi).String()
			}
			s.Summary = fmt.Sprintf("the path drops idle flows silently %s of silence: the connection looked open but the ping got no answer (or a reset)", window)
		}
		s.Hint = fmt.Sprintf("a NAT or firewall forgets idle flows: use a keep-alive of at most %ds on this network (the device then pings often enough), or raise the idle timeout of that NAT/firewall", res.SuggestedKeepAliveSeconds)
		if base < 1250*time.Millisecond {
			s.Hint = "idle flows die in about a second, below what an MQTT keep-alive (whole seconds) can bridge: raise the idle timeout of that NAT/firewall"
		}
	default:
		s.Status = Skip
		s.Summary = "interrupted"
	}
	if s.Status != Skip && ctxInterrupted(res) {
		s.Notes = append(s.Notes, "interrupted before the end")
	}
	for _, rd := range res.Rounds {
		if rd.Traffic > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("the hub sent %d packet(s) during a %gs gap (C2D for the device): that gap was not silent", rd.Traffic, rd.IdleSeconds))
		}
	}
}

func ctxInterrupted(res *KeepAliveResult) bool {
	for _, rd := range res.Rounds {
		if rd.Outcome == "interrupted" {
			return true
		}
	}
	return false
}

// inbound is what the reader goroutine of a round saw.
type inbound struct {
	typ byte
	err error
	at  time.Time
}

// idleRound connects, stays silent for gap while watching the flow, then
// pings.
func (r *run) idleRound(ctx context.Context, dial dialFunc, gap time.Duration) IdleRound {
	rd := IdleRound{IdleSeconds: gap.Seconds()}
	tok, _, err := r.t.token(gap + 2*r.t.timeout + tokenTTL)
	if err != nil {
		rd.Outcome, rd.Detail = "error", errText(err)
		return rd
	}
	nc, err := dial(ctx)
	if err != nil {
		rd.Outcome, rd.Detail = "error", errText(err)
		return rd
	}
	defer nc.Close()
	sess := newSession(nc, r.t.timeout)
	if _, err := sess.connect(r.connectPacket(tok, keepAliveFor(gap, r.t.timeout))); err != nil {
		rd.Outcome, rd.Detail = "error", "CONNECT: "+errText(err)
		return rd
	}
	_ = nc.SetReadDeadline(time.Time{})
	events := make(chan inbound, 16)
	go readAll(sess.br, events)
	start := time.Now()
	end := time.NewTimer(gap)
	defer end.Stop()
	tick := time.NewTicker(progressEvery(gap))
	defer tick.Stop()
idle:
	for {
		select {
		case <-ctx.Done():
			rd.Outcome, rd.AfterSeconds = "interrupted", time.Since(start).Seconds()
			return rd
		case ev := <-events:
			if ev.err == nil {
				rd.Traffic++
				continue
			}
			rd.AfterSeconds = ev.at.Sub(start).Seconds()
			rd.Outcome, rd.Detail = "closed", errText(ev.err)
			if classify(ev.err) == Reset {
				rd.Outcome = "reset"
			}
			return rd
		case <-tick.C:
			r.progress(fmt.Sprintf("step 7 keepalive: idle %s of %s, connection open", time.Since(start).Round(time.Second), gap.Round(time.Second)))
		case <-end.C:
			break idle
		}
	}
	rd.AfterSeconds = time.Since(start).Seconds()
	if err := sess.write([]byte{mqttclient.TypePingreq << 4, 0}); err != nil {
		rd.Outcome, rd.Detail = "dead", "the ping could not be sent: "+errText(err)
		return rd
	}
	wait := time.NewTimer(r.t.timeout)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			rd.Outcome = "interrupted"
			return rd
		case ev := <-events:
			switch {
			case ev.err != nil:
				rd.Outcome, rd.Detail = "dead", "the flow ended when the probe pinged: "+errText(ev.err)
				return rd
			case ev.typ == mqttclient.TypePingresp:
				rd.Outcome = "alive"
				_ = sess.write([]byte{mqttclient.TypeDisconnect << 4, 0})
				if cw, ok := nc.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
				waitEnd(events, min(r.t.timeout, 2*time.Second))
				return rd
			default:
				rd.Traffic++
			}
		case <-wait.C:
			rd.Outcome, rd.Detail = "dead", fmt.Sprintf("no PINGRESP within %s", r.t.timeout)
			return rd
		}
	}
}

// readAll forwards every packet type read, then the error that ended the
// flow, and returns.
func readAll(br *bufio.Reader, events chan<- inbound) {
	for {
		typ, _, err := readPacket(br)
		select {
		case events <- inbound{typ: typ, err: err, at: time.Now()}:
		default: // the round is over and nobody listens
			if err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitEnd waits until the reader reports the end of the flow, or d.
func waitEnd(events <-chan inbound, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case ev := <-events:
			if ev.err != nil {
				return
			}
		case <-t.C:
			return
		}
	}
}

// roundIdle rounds an idle time for reading: tenths of a second under
// ten seconds, else seconds.
func roundIdle(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func progressEvery(gap time.Duration) time.Duration {
	return min(max(gap/10, time.Second), 30*time.Second)
}
