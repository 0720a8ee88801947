// Package notifytest has receivers for notifications (alert actions,
// event subscriptions) that tests start on loopback port 0: a minimal
// SMTP server, with or without STARTTLS.
package notifytest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/tether-hub/tether/internal/certs"
)

// Mail is one message an SMTPServer accepted.
type Mail struct {
	From string
	To   []string
	Data string // headers and body, CRLF line ends, dot-unstuffed
}

// SMTPServer speaks just enough SMTP (RFC 5321: EHLO/HELO, MAIL, RCPT,
// DATA, RSET, NOOP, QUIT; RFC 4954 AUTH PLAIN when RequireAuth was
// called; RFC 3207 STARTTLS when started with StartSMTPTLS) to receive
// mail from net/smtp. net/smtp sends PLAIN credentials in clear only to
// localhost. Reject, when set, answers RCPT with that reply (e.g. "550 no
// such user" or "451 try later").
type SMTPServer struct {
	Addr string
	ln   net.Listener
	tls  *tls.Config // STARTTLS offered when set

	mu         sync.Mutex
	mails      []Mail
	reject     string
	user, pass string // required credentials; "" user: none
	tlsMails   int    // mails received over TLS
}

// StartSMTP starts a server on 127.0.0.1:0 without STARTTLS, stopped at
// the end of the test.
func StartSMTP(t testing.TB) *SMTPServer {
	t.Helper()
	return start(t, nil)
}

// StartSMTPTLS starts a server on 127.0.0.1:0 that offers STARTTLS with a
// certificate of a dev CA made for the test (clients must skip
// verification) and refuses MAIL and AUTH before it.
func StartSMTPTLS(t testing.TB) *SMTPServer {
	t.Helper()
	cert, err := certs.EnsureDev(t.TempDir(), []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	return start(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

func start(t testing.TB, conf *tls.Config) *SMTPServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTPServer{Addr: ln.Addr().String(), ln: ln, tls: conf}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

// Reject makes RCPT answer reply ("" accepts again).
func (s *SMTPServer) Reject(reply string) {
	s.mu.Lock()
	s.reject = reply
	s.mu.Unlock()
}

// RequireAuth makes the server offer AUTH PLAIN and refuse MAIL until a
// client has authenticated with user and pass.
func (s *SMTPServer) RequireAuth(user, pass string) {
	s.mu.Lock()
	s.user, s.pass = user, pass
	s.mu.Unlock()
}

// Mails returns the accepted messages.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// TLSMails is how many of the accepted messages came over TLS.
func (s *SMTPServer) TLSMails() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tlsMails
}

func (s *SMTPServer) serve(c net.Conn) {
	defer func() { c.Close() }()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(line string) bool {
		w.WriteString(line + "\r\n")
		return w.Flush() == nil
	}
	if !reply("220 tether-test ESMTP") {
		return
	}
	var m Mail
	authed, secure := false, false
	s.mu.Lock()
	user, pass := s.user, s.pass
	s.mu.Unlock()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(verb, "EHLO"):
			w.WriteString("250-tether-test\r\n")
			if s.tls != nil && !secure {
				w.WriteString("250-STARTTLS\r\n")
			}
			if user != "" && (s.tls == nil || secure) {
				w.WriteString("250-AUTH PLAIN\r\n")
			}
			reply("250 8BITMIME")
		case verb == "STARTTLS" && s.tls != nil && !secure:
			if !reply("220 2.0.0 ready to start TLS") {
				return
			}
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, secure, m = tc, true, Mail{}
			r, w = bufio.NewReader(tc), bufio.NewWriter(tc)
		case s.tls != nil && !secure && (strings.HasPrefix(verb, "AUTH") || strings.HasPrefix(verb, "MAIL FROM:")):
			reply("530 5.7.0 Must issue a STARTTLS command first")
		case strings.HasPrefix(verb, "AUTH PLAIN "):
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(line[len("AUTH PLAIN "):]))
			parts := strings.Split(string(raw), "\x00")
			if err == nil && len(parts) == 3 && user != "" && parts[1] == user && parts[2] == pass {
				authed = true
				reply("235 2.7.0 Authentication successful")
			} else {
				reply("535 5.7.8 Authentication credentials invalid")
			}
		case strings.HasPrefix(verb, "HELO"):
			reply("250 tether-test")
		case strings.HasPrefix(verb, "MAIL FROM:") && user != "" && !authed:
			reply("530 5.7.0 Authentication required")
		case strings.HasPrefix(verb, "MAIL FROM:"):
			m = Mail{From: strings.Trim(line[len("MAIL FROM:"):], "<> ")}
			if i := strings.Index(m.From, " "); i > 0 {
				m.From = strings.Trim(m.From[:i], "<>")
			}
			reply("250 OK")
		case strings.HasPrefix(verb, "RCPT TO:"):
			s.mu.Lock()
			rej := s.reject
			s.mu.Unlock()
			if rej != "" {
				reply(rej)
				continue
			}
			m.To = append(m.To, strings.Trim(line[len("RCPT TO:"):], "<> "))
			reply("250 OK")
		case verb == "DATA":
			if len(m.To) == 0 {
				reply("503 no recipients")
				continue
			}
			reply("354 end with <CRLF>.<CRLF>")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				l = strings.TrimPrefix(l, ".") // dot-unstuffing
				data.WriteString(l)
			}
			m.Data = data.String()
			s.mu.Lock()
			s.mails = append(s.mails, m)
			if secure {
				s.tlsMails++
			}
			s.mu.Unlock()
			reply("250 OK queued")
		case verb == "RSET":
			m = Mail{}
			reply("250 OK")
		case verb == "NOOP":
			reply("250 OK")
		case verb == "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 command not implemented")
		}
	}
}
