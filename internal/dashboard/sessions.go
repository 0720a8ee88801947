package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// session is one signed-in browser.
type session struct {
	policy  string
	keySum  [sha256.Size]byte // the key it signed in with, hashed
	csrf    string
	created time.Time
	seen    time.Time
	// ended is closed when the session is removed (sign-out, expiry
	// found, the table full): requests still running for it, such as event
	// streams, end with it.
	ended chan struct{}
}

// sessions holds the signed-in sessions in memory, keyed by the hash of
// the cookie value (a hub restart signs everyone out). At most max are
// kept: a full table first forgets expired sessions, then the one idle
// longest, so memory stays bounded whatever the sign-in rate.
type sessions struct {
	mu       sync.Mutex
	m        map[[sha256.Size]byte]*session
	max      int
	idle     time.Duration
	lifetime time.Duration
}

func newSessions(max int, idle, lifetime time.Duration) *sessions {
	return &sessions{m: map[[sha256.Size]byte]*session{}, max: max, idle: idle, lifetime: lifetime}
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session and returns its cookie value.
func (s *sessions) create(policy string, keySum [sha256.Size]byte, now time.Time) (string, *session) {
	tok := randomToken()
	ss := &session{policy: policy, keySum: keySum, csrf: randomToken(), created: now, seen: now, ended: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		s.prune(now)
	}
	s.m[sha256.Sum256([]byte(tok))] = ss
	return tok, ss
}

// prune forgets expired sessions and, if the table is still full, the
// one idle longest. s.mu is held.
func (s *sessions) prune(now time.Time) {
	var oldest [sha256.Size]byte
	var oldestSeen time.Time
	for k, ss := range s.m {
		if s.expired(ss, now) {
			s.drop(k)
			continue
		}
		if oldestSeen.IsZero() || ss.seen.Before(oldestSeen) {
			oldest, oldestSeen = k, ss.seen
		}
	}
	if len(s.m) >= s.max {
		s.drop(oldest)
	}
}

// drop forgets the session of key k and ends its requests. s.mu is held.
func (s *sessions) drop(k [sha256.Size]byte) {
	if ss, ok := s.m[k]; ok {
		close(ss.ended)
		delete(s.m, k)
	}
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.seen) > s.idle || now.Sub(ss.created) > s.lifetime
}

// get returns the live session of cookie value tok and marks it seen; an
// expired one is forgotten.
func (s *sessions) get(tok string, now time.Time) (session, bool) {
	if tok == "" {
		return session{}, false
	}
	k := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[k]
	if !ok {
		return session{}, false
	}
	if s.expired(ss, now) {
		s.drop(k)
		return session{}, false
	}
	ss.seen = now
	return *ss, true
}

// remove ends the session of cookie value tok.
func (s *sessions) remove(tok string) {
	k := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	s.drop(k)
	s.mu.Unlock()
}

// len is the number of sessions held (expired ones included until pruned).
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// sameToken compares a presented CSRF token in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
