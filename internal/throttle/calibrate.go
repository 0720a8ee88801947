package throttle

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"time"
)

// ConnectOverhead is what a Tether connect costs the hub besides the TLS
// handshake's public-key operations: MQTT, the SAS check, presence, the
// journal append and the Connections log (bench/README.md: ~470 µs of CPU
// per TLS 1.2 connect with an ECDSA P-256 certificate, of which the
// handshake's signature and key agreement are ~100 µs).
const ConnectOverhead = 370 * time.Microsecond

// connectShare is the part of the machine the default rate gives to new
// connections during a storm; the rest keeps the API, the journal and the
// connected devices served.
const connectShare = 0.5

// DefaultConnectRate sizes the hub-wide new-connection rate to this
// machine: connectShare of its cores' time, divided by the cost of one
// connect — the server's signature with key and one key agreement, timed
// here (a few milliseconds at start), plus ConnectOverhead. An RSA 2048
// key costs ~1 ms a signature where ECDSA P-256 costs ~30 µs, so the rate
// follows the certificate the hub serves. It returns the rate and the
// connect cost it assumed.
func DefaultConnectRate(key crypto.Signer, cores int) (float64, time.Duration) {
	cost := handshakeCost(key) + ConnectOverhead
	return connectRate(cost, cores), cost
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
