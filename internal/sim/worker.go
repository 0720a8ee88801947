package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

// WorkerSpec is what a worker process runs: devices [From, To) of Config,
// starting at Start. It travels as JSON on the worker's stdin (it holds
// the owner connection string, which must not appear on a command line).
type WorkerSpec struct {
	Config     Config    `json:"config"`
	From       int       `json:"from"`
	To         int       `json:"to"`
	KeySeed    string    `json:"keySeed"`
	Start      time.Time `json:"start"`
	APIBase    string    `json:"apiBase"`
	ConnString string    `json:"connString"`
}

// workerMsg is one line a worker writes: stats every second, the ledger
// once at the end.
type workerMsg struct {
	Stats  *Snapshot   `json:"stats,omitempty"`
	Ledger []Expect    `json:"ledger,omitempty"`
	Twins  *TwinLedger `json:"twins,omitempty"`
	Done   bool        `json:"done,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// RunWorker runs spec's devices until the duration ends or ctx is
// cancelled, writing JSON lines to out. api may be nil unless the
// disabled fault is on.
func RunWorker(ctx context.Context, spec WorkerSpec, api *hubclient.Client, out io.Writer) error {
	cfg := spec.Config
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if spec.From < 0 || spec.To > cfg.Devices || spec.From >= spec.To {
		return fmt.Errorf("worker range [%d, %d) outside the fleet of %d", spec.From, spec.To, cfg.Devices)
	}
	hard, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFleet(hard, &cfg, spec.From, spec.To, spec.KeySeed, spec.Start, api)
	runCtx := ctx
	if cfg.Duration > 0 {
		var c context.CancelFunc
		runCtx, c = context.WithDeadline(ctx, spec.Start.Add(cfg.Duration))
		defer c()
	}
	done := make(chan struct{})
	go func() { f.run(); close(done) }()
	enc := json.NewEncoder(out)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stopping := false
	for {
		select {
		case <-done:
			s := f.stats.Snapshot()
			return enc.Encode(workerMsg{Stats: &s, Ledger: f.ledger.Entries(), Twins: f.twins.snapshot(), Done: true})
		case <-runCtx.Done():
			if !stopping {
				stopping = true
				close(f.stop)
				time.AfterFunc(f.rampEnd+60*time.Second, cancel)
			}
		case <-tick.C:
			s := f.stats.Snapshot()
			if err := enc.Encode(workerMsg{Stats: &s}); err != nil {
				return err
			}
		}
	}
}

// part is one process's share of a run: the local fleet or a worker.
type part struct {
	fleet *fleet // local

	w    Worker // remote
	mu   sync.Mutex
	last Snapshot
	led  []Expect
	tw   *TwinLedger
	err  error
}

func newRemotePart(w Worker) *part { return &part{w: w} }

// readRemote consumes a worker's lines until it exits.
func (p *part) readRemote() {
	sc := bufio.NewScanner(p.w.Out)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	done := false
	for sc.Scan() {
		var m workerMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // not ours (a stray log line)
		}
		p.mu.Lock()
		if m.Stats != nil {
			p.last = *m.Stats
		}
		if m.Done {
			p.led, p.tw, done = m.Ledger, m.Twins, true
		}
		if m.Error != "" {
			p.err = fmt.Errorf("worker: %s", m.Error)
		}
		p.mu.Unlock()
	}
	err := p.w.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !done && p.err == nil {
		p.err = fmt.Errorf("worker ended without its ledger: %v %v", sc.Err(), err)
	}
}

func (p *part) stats() Snapshot {
	if p.fleet != nil {
		return p.fleet.stats.Snapshot()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *part) ledger() []Expect {
	if p.fleet != nil {
		return p.fleet.ledger.Entries()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.led
}

func (p *part) twinLedger() *TwinLedger {
	if p.fleet != nil {
		return p.fleet.twins.snapshot()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tw
}

func sumStats(parts []*part) Snapshot {
	var s Snapshot
	for _, p := range parts {
		s = s.Add(p.stats())
	}
	return s
}
