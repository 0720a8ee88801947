package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/notify"
)

// email is the Email destination: mails through the hub's SMTP server.
//
// A mail tells one event, or everything of a digest window: the first
// event opens the window and the events that come during it (of any
// device; each device's in order, as always) go in one mail when it
// closes. Mails are rate limited per recipient: a recipient gets at most
// maxMailsPerRecipientPerHour mails in any hour from subscriptions with
// that limit (the count is shared by every e-mail subscription of the
// hub). Past the limit the events wait, and whatever gathered meanwhile
// goes in one digest once every recipient may be mailed again; nothing is
// dropped, and the attempt counts as one.
type email struct {
	nothingKept
	smtp notify.SMTP

	mu   sync.Mutex
	sent map[string][]time.Time // recipient (lower-case address) → mails in the last hour, oldest first
}

// maxDigestJSON bounds how many events a digest mail attaches as JSON
// (all are listed in its text).
const maxDigestJSON = 200

// NewEmailDestination returns the Email destination for the hub's SMTP
// server (tether serve --smtp-addr, --smtp-from, --smtp-username; the
// password from TETHER_SMTP_PASSWORD).
func NewEmailDestination(s notify.SMTP) Destination {
	return &email{smtp: s, sent: map[string][]time.Time{}}
}

// Check proves that the server takes the hub's account (connect, STARTTLS
// when offered, authentication); nothing is sent.
func (m *email) Check(ctx context.Context, _ events.Subscription) error {
	if m.smtp.Addr == "" || m.smtp.From == "" {
		return errors.New("the hub has no SMTP server: start it with --smtp-addr and --smtp-from (and --smtp-username with TETHER_SMTP_PASSWORD)")
	}
	return notify.CheckMail(ctx, m.smtp)
}

func (m *email) Open(sub events.Subscription, env SendEnv) Sender {
	return &emailSender{m: m, env: env}
}

func recipientKey(a string) string {
	if addr, err := mail.ParseAddress(a); err == nil {
		return strings.ToLower(addr.Address)
	}
	return strings.ToLower(strings.TrimSpace(a))
}

// reserve counts a mail to every recipient of to at now if each may get
// another under limit per hour; otherwise it counts nothing and returns
// when they all may (ok false).
func (m *email) reserve(to []string, limit int, now time.Time) (at time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at = now
	for _, r := range to {
		k := recipientKey(r)
		sent := m.sent[k]
		for len(sent) > 0 && !sent[0].After(now.Add(-time.Hour)) {
			sent = sent[1:]
		}
		if len(sent) == 0 {
			delete(m.sent, k)
			continue
		}
		m.sent[k] = sent
		if len(sent) >= limit {
			if free := sent[len(sent)-limit].Add(time.Hour); free.After(at) {
				at = free
			}
		}
	}
	if at.After(now) {
		return at, false
	}
	for _, r := range to {
		k := recipientKey(r)
		m.sent[k] = append(m.sent[k], now)
	}
	return now, true
}

type emailSender struct {
	m   *email
	env SendEnv

	mu      sync.Mutex
	open    *digest // the digest new sends join, if any
	waiting map[*digest]bool
	closed  bool
}

// digest is one mail in the making: the sends whose events it tells.
type digest struct {
	sub     events.Subscription
	waiters []*waiter
	timer   Timer
	sending bool
}

type waiter struct {
	events []events.Event
	done   chan Result
}

// Send adds the batch to the open digest, or opens one (closing after the
// digest window, at once without one), and waits for its mail.
func (s *emailSender) Send(ctx context.Context, b Batch) Result {
	w := &waiter{events: b.Events, done: make(chan Result, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Result{Aborted: true}
	}
	d, now := s.open, false
	if d == nil {
		d = &digest{sub: b.Sub}
		if s.waiting == nil {
			s.waiting = map[*digest]bool{}
		}
		s.waiting[d] = true
		window := time.Duration(b.Sub.Destination.Properties.DigestWindowInSeconds) * time.Second
		if window > 0 {
			s.open = d // later sends join it until it closes
			d.timer = s.env.Clock.AfterFunc(window, func() { s.due(d) })
		} else {
			now = true
		}
	}
	d.waiters = append(d.waiters, w)
	s.mu.Unlock()
	if now {
		go s.due(d)
	}
	select {
	case r := <-w.done:
		return r
	case <-ctx.Done():
		s.leave(d, w)
		return Result{Aborted: true}
	}
}

// leave takes w out of d unless d's mail is on its way.
func (s *emailSender) leave(d *digest, w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.sending {
		return
	}
	for i, x := range d.waiters {
		if x == w {
			d.waiters = append(d.waiters[:i], d.waiters[i+1:]...)
			break
		}
	}
}

// due runs when d's window has closed (or the rate limit has passed): if
// a recipient may not be mailed yet, d waits (and stays open, so what
// comes meanwhile joins it); otherwise its mail goes.
func (s *emailSender) due(d *digest) {
	s.mu.Lock()
	if s.closed || d.sending || !s.waiting[d] {
		s.mu.Unlock()
		return
	}
	if len(d.waiters) == 0 { // all left
		delete(s.waiting, d)
		if s.open == d {
			s.open = nil
		}
		s.mu.Unlock()
		return
	}
	p := d.sub.Destination.Properties
	now := s.env.Clock.Now()
	if at, ok := s.m.reserve(p.To, p.MaxMailsPerRecipientPerHour, now); !ok {
		if s.open != nil && s.open != d {
			// Another digest already waits: this one's events join it.
			s.open.waiters = append(s.open.waiters, d.waiters...)
			delete(s.waiting, d)
		} else {
			s.open = d
			d.timer = s.env.Clock.AfterFunc(at.Sub(now), func() { s.due(d) })
		}
		s.mu.Unlock()
		return
	}
	if s.open == d {
		s.open = nil
	}
	d.sending = true
	delete(s.waiting, d)
	ws := d.waiters
	s.mu.Unlock()
	go func() { // not on the clock's goroutine
		r := s.mail(d.sub, ws, now)
		for _, w := range ws {
			w.done <- r
		}
	}()
}

// mail sends the digest's mail.
func (s *emailSender) mail(sub events.Subscription, ws []*waiter, now time.Time) Result {
	var evs []events.Event
	for _, w := range ws {
		evs = append(evs, w.events...)
	}
	subject, body := mailText(sub, evs)
	msg := notify.Message(s.m.smtp.From, sub.Destination.Properties.To, subject, body, now)
	// Not the send's context: a mail on its way finishes (within
	// notify.MailTimeout) even when the runner stops.
	err := notify.SendMail(context.Background(), s.m.smtp, sub.Destination.Properties.To, msg)
	switch {
	case err == nil:
		return Result{OK: true, Output: fmt.Sprintf("mailed %d event(s) to %s", len(evs), strings.Join(sub.Destination.Properties.To, ", "))}
	case notify.MailFinal(err):
		return Result{Final: true, Outcome: "MailRejected", Err: err.Error()}
	}
	return Result{Outcome: "MailServerUnavailable", Err: err.Error()}
}

// Close ends the waits: digests that have not started their mail are
// abandoned (their events go back to JetStream and are mailed after a
// restart); mails on their way finish.
func (s *emailSender) Close() {
	s.mu.Lock()
	s.closed = true
	ds := s.waiting
	s.waiting, s.open = nil, nil
	s.mu.Unlock()
	for d := range ds {
		if d.timer != nil {
			d.timer.Stop()
		}
		for _, w := range d.waiters {
			w.done <- Result{Aborted: true}
		}
	}
}

// mailText is the subject and body of a mail telling evs (in delivery
// order): one event's summary as the subject, or a count and the first
// few for a digest; the body has each event's summary and details, then
// the events as JSON in the subscription's schema.
func mailText(sub events.Subscription, evs []events.Event) (string, string) {
	var b strings.Builder
	var subject string
	if len(evs) == 1 {
		e := evs[0]
		subject = "[Tether] " + events.Summary(e)
		b.WriteString(events.Summary(e) + "\n\n")
		for _, l := range events.Details(e) {
			b.WriteString(l + "\n")
		}
		fmt.Fprintf(&b, "%-15s%s\n", "Subscription:", sub.Name)
	} else {
		var heads []string
		for i, e := range evs {
			if i == 3 {
				heads = append(heads, fmt.Sprintf("and %d more", len(evs)-3))
				break
			}
			s := events.Summary(e)
			if j := strings.Index(s, " at "); j > 0 {
				s = s[:j]
			}
			heads = append(heads, s)
		}
		subject = fmt.Sprintf("[Tether] %d device events: %s", len(evs), strings.Join(heads, ", "))
		fmt.Fprintf(&b, "%d events for subscription %s, from %s to %s:\n\n", len(evs), sub.Name,
			events.FormatTime(evs[0].Time), events.FormatTime(evs[len(evs)-1].Time))
		for _, e := range evs {
			b.WriteString(e.Time.UTC().Format("2006-01-02 ") + events.Summary(e) + "\n")
		}
	}
	js := evs
	if len(js) > maxDigestJSON {
		js = js[:maxDigestJSON]
	}
	fmt.Fprintf(&b, "\nEvent%s (%s):\n", map[bool]string{true: "", false: "s"}[len(evs) == 1], sub.EventDeliverySchema)
	for _, e := range js {
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, events.Encode(sub.EventDeliverySchema, e), "", "  ")
		b.WriteString(pretty.String() + "\n")
	}
	if len(js) < len(evs) {
		fmt.Fprintf(&b, "(the first %d of %d events; the others are in the list above)\n", len(js), len(evs))
	}
	return subject, b.String()
}
