package broker

import "github.com/tether-hub/tether/internal/presence"

// Claims extends the session table's one-live-session rule over a cluster
// of hubs (internal/cluster). The table decides among this hub's
// connections; Claims then decides among the hubs, ending the device's
// session on another one first.
type Claims interface {
	// Claim makes s the device's live session cluster-wide: a session of
	// the device on another node is ended (400027 recorded there) before
	// it returns. It sets s.Epoch, which orders the device's sequence
	// numbers across nodes. An error refuses the connect.
	Claim(s *presence.Session) error
	// Ending is told that a claimed session ends, before its end is
	// recorded; it may set s.Ended. False means the session is no longer
	// this node's (another node recorded its end): nothing is recorded.
	Ending(s *presence.Session) bool
}

// EndSession ends the device's live session whose presence session id is
// sessionID as a takeover by a connection on another node, and reports
// whether there was one. The end is recorded as usual (400027).
func (b *Broker) EndSession(deviceID, sessionID string) bool {
	s := b.table.live(deviceID)
	if s == nil {
		return false
	}
	// The session is in the table before its connect goroutine sets ps.
	s.endMu.Lock()
	ps := s.ps
	s.endMu.Unlock()
	if ps == nil || ps.ID != sessionID {
		return false
	}
	s.requestEnd(causeTakeover)
	return true
}
