package testnet

import (
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a server (a node's NATS connection,
// say) and lets a test cut them the ways a network does:
//
//   - Blackhole: a partition. Nothing passes either way, and no
//     connection is closed: both sides see silence (their requests time
//     out, the server keeps the client's subscriptions until its pings
//     time out). Connections made meanwhile are accepted and hear
//     nothing. Heal lets everything held pass on, in order, as TCP's
//     retransmissions would.
//   - Sever: the server's side of every connection is closed (the server
//     drops the client at once: its subjects have no responders) while
//     the client's side stays open and silent, and so do new ones.
//   - Drop: both sides of every connection are closed (each side knows
//     at once), and new ones are closed as they come, until Heal.
type Proxy struct {
	ln net.Listener
	to string

	mu      sync.Mutex
	open    *sync.Cond // broadcast when the blackhole is lifted
	hole    bool       // Blackhole until Heal
	severed bool
	dropped bool       // Drop until Heal
	conns   []net.Conn // both sides of every connection, closed at the end
	ups     []net.Conn // the server sides
}

// NewProxy listens on 127.0.0.1 port 0 and forwards to the address to;
// it and its connections are closed when t ends.
func NewProxy(t testing.TB, to string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, to: to}
	p.open = sync.NewCond(&p.mu)
	t.Cleanup(p.close)
	go p.accept()
	return p
}

// Addr is the proxy's address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's address as a nats:// URL.
func (p *Proxy) URL() string { return "nats://" + p.Addr() }

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		severed, dropped := p.severed, p.dropped
		p.mu.Unlock()
		if severed {
			continue // held open, silent: a reconnect finds nobody either
		}
		if dropped {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.to)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.ups = append(p.ups, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies from src to dst, holding what it read while the blackhole
// lasts.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			p.mu.Lock()
			for p.hole {
				p.open.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:k]); werr != nil && !p.isSevered() {
				_ = src.Close()
				return
			} // severed: the client's side reads on, and hears nothing
		}
		if err != nil {
			if !p.isSevered() {
				_ = dst.Close()
			}
			return
		}
	}
}

func (p *Proxy) isSevered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.severed
}

// Blackhole stops everything passing, until Heal.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	p.hole = true
	p.mu.Unlock()
}

// Heal lets what the blackhole held, and what follows, pass again, and
// new connections through after a Drop.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.hole = false
	p.dropped = false
	p.open.Broadcast()
	p.mu.Unlock()
}

// Sever closes the server's side of every connection, keeps the
// clients' sides open and silent, and forwards no new connection.
func (p *Proxy) Sever() {
	p.mu.Lock()
	p.severed = true
	ups := p.ups
	p.mu.Unlock()
	for _, up := range ups {
		_ = up.Close()
	}
}

// Drop closes both sides of every connection, and each new one as it
// comes, until Heal.
func (p *Proxy) Drop() {
	p.mu.Lock()
	p.dropped = true
	conns := p.conns
	p.conns = nil
	p.ups = nil
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.hole = false
	p.open.Broadcast()
	conns := p.conns
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
