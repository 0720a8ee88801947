package delivery

import (
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/notify"
	"github.com/tether-hub/tether/internal/notify/notifytest"
	"github.com/tether-hub/tether/internal/presence"
)

// emailEnv is a test env whose Email destination mails through a test
// SMTP server that wants STARTTLS and AUTH PLAIN.
type emailEnv struct {
	*env
	srv *notifytest.SMTPServer
}

func newEmailEnv(t *testing.T) *emailEnv {
	srv := notifytest.StartSMTPTLS(t)
	srv.RequireAuth("tether", "s3cret")
	dest := NewEmailDestination(notify.SMTP{Addr: srv.Addr, From: "Tether <tether@example.com>", Username: "tether", Password: "s3cret", Insecure: true})
	v := newEnv(t, func(o *Options) { o.Destinations = map[string]Destination{events.EndpointEmail: dest} })
	return &emailEnv{env: v, srv: srv}
}

func (m *emailEnv) emailSub(name string, props events.EmailProperties, mod ...func(*events.Subscription)) {
	m.t.Helper()
	m.subTo(name, events.Destination{EndpointType: events.EndpointEmail, Properties: events.DestinationProperties{EmailProperties: props}}, mod...)
}

// waiting is how many events of subscription sub wait in its e-mail
// sender for a digest window or the rate limit.
func (m *emailEnv) waiting(sub string) int {
	r, err := m.eng.runner(sub)
	if err != nil {
		return -1
	}
	es := r.sender.(*emailSender)
	es.mu.Lock()
	defer es.mu.Unlock()
	n := 0
	for d := range es.waiting {
		for _, w := range d.waiters {
			n += len(w.events)
		}
	}
	return n
}

func subjectOf(mail notifytest.Mail) string {
	for _, l := range strings.Split(mail.Data, "\r\n") {
		if s, ok := strings.CutPrefix(l, "Subject: "); ok {
			return s
		}
	}
	return ""
}

// Without a digest, each event is one mail (over STARTTLS, authenticated)
// whose subject tells it in a line and whose body has the details and the
// event; each device's mails come in order; renewal pairs are not mailed.
func TestEmailPerEvent(t *testing.T) {
	m := newEmailEnv(t)
	m.start()
	m.emailSub("mail-me", events.EmailProperties{To: []string{"Ops <ops@example.com>", "oncall@example.com"}},
		func(s *events.Subscription) { s.Tether.SuppressRenewals = true })
	a := m.conn("sensor-17", presence.Connected)
	m.clock.Advance(6*time.Hour + 2*time.Minute)
	b := m.conn("sensor-17", presence.Disconnected, func(ce *presence.ConnectionEvent) { ce.DurationMs = (6*3600 + 2*60) * 1000 })
	r := m.conn("other", presence.Disconnected, func(ce *presence.ConnectionEvent) { ce.Reason, ce.Result = presence.ReasonClient, presence.ResultOK })
	m.conn("other", presence.Connected, func(ce *presence.ConnectionEvent) { ce.TokenRenewal, ce.RenewalOf = true, r.Sequence })
	eventually(t, "two mails", func() bool {
		return len(m.srv.Mails()) == 2 && m.stats("mail-me").Suppressed == 2 && m.stats("mail-me").Delivered == 2
	})
	mails := m.srv.Mails()
	if m.srv.TLSMails() != 2 || mails[0].From != "tether@example.com" || strings.Join(mails[0].To, ",") != "ops@example.com,oncall@example.com" {
		t.Fatalf("envelope %+v", mails[0])
	}
	if s := subjectOf(mails[0]); s != "[Tether] sensor-17 connected at 12:00:00Z over MQTT 3.1.1" {
		t.Errorf("subject %q", s)
	}
	if s := subjectOf(mails[1]); s != "[Tether] sensor-17 disconnected at 18:02:00Z: 404104 keep-alive, after 6 h 02 min connected" {
		t.Errorf("subject %q", s)
	}
	body := mails[1].Data
	for _, want := range []string{"Device:        sensor-17\r\n", "Reason:        keep-alive\r\n", "Subscription:  mail-me\r\n",
		"Event (EventGridSchema):\r\n", `"id": "` + id(b) + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if !strings.Contains(mails[0].Data, id(a)) {
		t.Error("first mail is not the connect")
	}
	if log := m.eng.Deliveries("mail-me", 5); len(log) != 2 || !strings.Contains(log[0].Output, "mailed 1 event(s) to Ops <ops@example.com>, oncall@example.com") {
		t.Errorf("log %+v", log)
	}
}

// With a digest window, the first event opens it and everything until it
// closes goes in one mail; each device's events in order.
func TestEmailDigest(t *testing.T) {
	m := newEmailEnv(t)
	m.start()
	m.emailSub("digest", events.EmailProperties{To: []string{"ops@example.com"}, DigestWindowInSeconds: 300})
	var want []string
	for i, d := range []string{"d1", "d2", "d1", "d3"} {
		kind := presence.Connected
		if i == 2 {
			kind = presence.Disconnected
		}
		want = append(want, id(m.conn(d, kind)))
	}
	// d1's second event waits behind its first, which is in the digest.
	eventually(t, "window open", func() bool { return m.waiting("digest") == 3 && len(m.clock.Pending()) == 1 })
	if len(m.srv.Mails()) != 0 {
		t.Fatal("mailed before the window closed")
	}
	m.clock.AdvanceTo(m.clock.Pending()[0])
	eventually(t, "digest mailed", func() bool { return len(m.srv.Mails()) >= 1 })
	eventually(t, "everything delivered", func() bool {
		if m.stats("digest").Delivered == 4 {
			return true
		}
		if p := m.clock.Pending(); len(p) > 0 {
			m.clock.AdvanceTo(p[0])
		}
		return false
	})
	mails := m.srv.Mails()
	first := mails[0]
	// Devices in the order their sends joined the digest.
	if s := subjectOf(first); !strings.HasPrefix(s, "[Tether] 3 device events: ") ||
		!strings.Contains(s, "d1 connected") || !strings.Contains(s, "d2 connected") || !strings.Contains(s, "d3 connected") || len(mails) != 2 {
		t.Errorf("subject %q, %d mails", s, len(mails))
	}
	// Every event once, d1's in order.
	all := ""
	for _, ml := range mails {
		all += ml.Data
	}
	for _, w := range want {
		if strings.Count(all, `"id": "`+w+`"`) != 1 {
			t.Errorf("event %s mailed %d times", w, strings.Count(all, `"id": "`+w+`"`))
		}
	}
	if strings.Index(all, want[0]) > strings.Index(all, want[2]) {
		t.Error("d1's events out of order")
	}
	if !strings.Contains(first.Data, "events for subscription digest, from ") {
		t.Errorf("digest body:\n%s", first.Data)
	}
}

// Past maxMailsPerRecipientPerHour, events wait and go in one digest when
// the recipient may be mailed again; the count is per recipient across
// subscriptions.
func TestEmailRateLimitPerRecipient(t *testing.T) {
	m := newEmailEnv(t)
	m.start()
	m.emailSub("first", events.EmailProperties{To: []string{"ops@example.com"}, MaxMailsPerRecipientPerHour: 2})
	m.emailSub("second", events.EmailProperties{To: []string{"OPS@example.com"}, MaxMailsPerRecipientPerHour: 2},
		func(s *events.Subscription) { s.Filter.SubjectBeginsWith = "devices/never" })
	m.conn("d1", presence.Connected)
	eventually(t, "first mail", func() bool { return len(m.srv.Mails()) == 1 })
	m.clock.Advance(time.Minute)
	m.conn("d2", presence.Connected)
	eventually(t, "second mail", func() bool { return len(m.srv.Mails()) == 2 })
	m.clock.Advance(time.Minute)
	for _, d := range []string{"d3", "d4", "d5"} {
		m.conn(d, presence.Connected)
	}
	eventually(t, "three wait", func() bool { return m.waiting("first") == 3 })
	if n := len(m.srv.Mails()); n != 2 {
		t.Fatalf("%d mails past the limit", n)
	}
	// The other subscription to the same recipient is held by the same count.
	if at, ok := m.eng.o.Destinations[events.EndpointEmail].(*email).reserve([]string{"Ops <ops@example.com>"}, 2, m.clock.Now()); ok || !at.Equal(t0.Add(time.Hour)) {
		t.Fatalf("shared count: %v %v", at, ok)
	}
	m.clock.AdvanceTo(t0.Add(time.Hour))
	eventually(t, "one digest", func() bool { return len(m.srv.Mails()) == 3 && m.stats("first").Delivered == 5 })
	if s := subjectOf(m.srv.Mails()[2]); !strings.HasPrefix(s, "[Tether] 3 device events: ") ||
		!strings.Contains(s, "d3 connected") || !strings.Contains(s, "d4 connected") || !strings.Contains(s, "d5 connected") {
		t.Errorf("subject %q", s)
	}
}

// 4xx answers are retried, 5xx ones dead-letter at once (and replay
// mails them once the address works); a wrong password fails the check.
func TestEmailFailures(t *testing.T) {
	m := newEmailEnv(t)
	m.start()
	m.emailSub("mail-me", events.EmailProperties{To: []string{"ops@example.com"}})
	m.srv.Reject("451 4.3.0 mailbox busy")
	e1 := m.conn("d1", presence.Connected)
	next := waitRetry(t, m.env, "mail-me", 1)
	if st := m.stats("mail-me"); st.Retrying != 1 || !strings.Contains(st.LastError, "451") {
		t.Errorf("stats %+v", st)
	}
	m.srv.Reject("550 5.1.1 no such user")
	m.clock.AdvanceTo(next)
	eventually(t, "dead letter", func() bool { return m.stats("mail-me").DeadLettered == 1 })
	dls, _ := m.eng.DeadLetters(m.ctx, "mail-me", 0)
	if len(dls) != 1 || dls[0].Event.ID != id(e1) || dls[0].Reason != events.DeadLetterNonRetriableError ||
		dls[0].LastDeliveryOutcome != "MailRejected" || dls[0].DeliveryAttempts != 2 || !strings.Contains(dls[0].LastError, "550") {
		t.Fatalf("%+v", dls)
	}
	m.srv.Reject("")
	if n, err := m.eng.Replay(m.ctx, "mail-me"); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	eventually(t, "mailed on replay", func() bool { return len(m.srv.Mails()) == 1 })

	bad := NewEmailDestination(notify.SMTP{Addr: m.srv.Addr, From: "t@example.com", Username: "tether", Password: "wrong", Insecure: true})
	if err := bad.Check(m.ctx, events.Subscription{}); err == nil || !strings.Contains(err.Error(), "535") {
		t.Errorf("wrong password: %v", err)
	}
	if err := NewEmailDestination(notify.SMTP{}).Check(m.ctx, events.Subscription{}); err == nil || !strings.Contains(err.Error(), "--smtp-addr") {
		t.Errorf("no server: %v", err)
	}
}
