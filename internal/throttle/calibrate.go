package throttle

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"time"
)

// What a connect costs the hub, priced per transport. Only the server
// key's public-key work in a TLS handshake depends on the deployment (the
// certificate's key type) and is timed at start (handshakeCost); the rest
// is the hub's own code, measured with the connect benchmarks as the hub's
// CPU from the first dial until it is idle again (the journal, the
// Connections log, metrics and insights included), divided by the
// connects. Quiet runs of 2026-12-07 on main 0c643f9 (the connect path of
// 72f0429), the 2-core benchmark machine (AMD EPYC, shared):
//
//	storm -n 5000 -c 200 -modes tcp,tls12 -reps 2 -brokers bare,tether ...   # bench/results/2026-12-07-session11-broker11-storm-quiet.md
//	BENCH_SUITE_ARGS='-storms=false -no-eventlat -idle-tcp' bench/run        # 10,000 plain TCP held (accept11)
//	BENCH_STEPS=suite bench/run                                              # storms of 5,000 (accept11)
//
// plain TCP 164–233 µs per connect (storm: 176 until idle, 164 on the
// broker11 branch; suite storms 198 and 202 during the storm; 233 with
// what it leaves behind with 10,000 held), TLS 1.2 300–406 µs (storm: 300
// until idle, 307 on broker11; suite 338 and 396; 391 and 406 with
// 10,000 held), of which the dev
// certificate's ECDSA P-256 signature and X25519 key agreement are
// ~122 µs (handshakeCost on that machine). The prices are the upper end:
// 235 µs plain, 235 + 40 µs + the key's work TLS (~400 µs).
// Not in the price: what subscriptions cost per event (a webhook POST per
// connect and per disconnect: eventlat's CPU per cycle, ~400–500 µs for
// both events) and the device's later disconnect.
const (
	// PlainConnectCost is a plain-TCP connect: accept, the CONNECT, the
	// SAS check, presence, the journal append, and the log record,
	// metrics and insight work it leaves behind.
	PlainConnectCost = 235 * time.Microsecond
	// TLSConnectOverhead is what TLS adds to a connect besides the key's
	// signature and key agreement: the handshake's hashing and messages,
	// the record layer, crypto/tls's allocations.
	TLSConnectOverhead = 40 * time.Microsecond
)

// connectShare is the part of the machine the default rate gives to new
// connections during a storm; the rest keeps the API, the journal and the
// connected devices served.
const connectShare = 0.5

// Sizing is the default hub-wide connect rates and the costs they were
// derived from.
type Sizing struct {
	TLSRate, PlainRate float64       // connects a second, each kind alone
	TLSCost, PlainCost time.Duration // CPU a connect of each kind
}

// DefaultConnectRates sizes the hub-wide new-connection rates to this
// machine: connectShare of its cores' time divided by the cost of one
// connect. A TLS connect costs the server's signature with key and one
// key agreement, timed here (a few milliseconds at start), plus
// TLSConnectOverhead and PlainConnectCost; a plain-TCP one costs
// PlainConnectCost. An RSA 2048 key costs ~1 ms a signature where ECDSA
// P-256 costs ~30 µs, so the TLS rate follows the certificate the hub
// serves.
func DefaultConnectRates(key crypto.Signer, cores int) Sizing {
	return sizing(handshakeCost(key), cores)
}

// sizing is DefaultConnectRates for a key whose work costs handshake.
func sizing(handshake time.Duration, cores int) Sizing {
	s := Sizing{TLSCost: handshake + TLSConnectOverhead + PlainConnectCost, PlainCost: PlainConnectCost}
	s.TLSRate, s.PlainRate = connectRate(s.TLSCost, cores), connectRate(s.PlainCost, cores)
	return s
}

// connectRate is the rate connectShare of cores sustains when one connect
// costs cost.
func connectRate(cost time.Duration, cores int) float64 {
	return connectShare * float64(max(cores, 1)) / cost.Seconds()
}

// handshakeCost times the server's public-key work in one TLS handshake:
// the best of three rounds of 8 (on a shared machine the fastest round is
// the least disturbed one).
func handshakeCost(key crypto.Signer) time.Duration {
	digest := sha256.Sum256([]byte("tether calibration"))
	var opts crypto.SignerOpts = crypto.SHA256
	msg := digest[:]
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		opts = crypto.Hash(0)
	}
	peer, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return 0
	}
	const rounds, n = 3, 8
	best := time.Duration(1<<63 - 1)
	for range rounds {
		start := time.Now()
		for range n {
			if _, err := key.Sign(rand.Reader, msg, opts); err != nil {
				return 0
			}
			k, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				return 0
			}
			if _, err := k.ECDH(peer.PublicKey()); err != nil {
				return 0
			}
		}
		best = min(best, time.Since(start)/n)
	}
	return best
}
