package notify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/notify"
	"github.com/tether-hub/tether/internal/notify/notifytest"
)

// A mail goes through a server that offers STARTTLS and wants AUTH PLAIN
// after it; headers and body arrive as Message wrote them.
func TestSendMailSTARTTLSAndAuth(t *testing.T) {
	srv := notifytest.StartSMTPTLS(t)
	srv.RequireAuth("tether", "s3cret")
	s := notify.SMTP{Addr: srv.Addr, From: "Tether <tether@example.com>", Username: "tether", Password: "s3cret", Insecure: true}
	msg := notify.Message(s.From, []string{"ops@example.com"}, "sensor-17 disconnected — 404104", "line 1\nline 2\n.dot line", time.Date(2026, 3, 1, 3, 12, 5, 0, time.UTC))
	if err := notify.CheckMail(context.Background(), s); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := notify.SendMail(context.Background(), s, []string{"Ops <ops@example.com>"}, msg); err != nil {
		t.Fatal(err)
	}
	mails := srv.Mails()
	if len(mails) != 1 || srv.TLSMails() != 1 {
		t.Fatalf("%d mails, %d over TLS", len(mails), srv.TLSMails())
	}
	m := mails[0]
	if m.From != "tether@example.com" || len(m.To) != 1 || m.To[0] != "ops@example.com" {
		t.Errorf("envelope %q %q", m.From, m.To)
	}
	for _, want := range []string{"From: Tether <tether@example.com>\r\n", "To: ops@example.com\r\n",
		"Subject: =?utf-8?q?sensor-17_disconnected_=E2=80=94_404104?=\r\n", "Date: Sun, 01 Mar 2026 03:12:05 +0000\r\n",
		"Content-Type: text/plain; charset=utf-8\r\n", "\r\n\r\nline 1\r\nline 2\r\n.dot line\r\n"} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.Data)
		}
	}
}

// Without skipping verification, the test server's certificate (a dev CA
// the client does not know) is refused: nothing is sent in clear instead.
func TestSendMailVerifiesCertificate(t *testing.T) {
	srv := notifytest.StartSMTPTLS(t)
	s := notify.SMTP{Addr: srv.Addr, From: "tether@example.com"}
	err := notify.SendMail(context.Background(), s, []string{"ops@example.com"}, []byte("x\r\n"))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || len(srv.Mails()) != 0 {
		t.Fatalf("err %v, %d mails", err, len(srv.Mails()))
	}
}

// 5xx answers and configuration mistakes are final; 4xx and network
// errors are not.
func TestMailFinal(t *testing.T) {
	srv := notifytest.StartSMTP(t)
	srv.RequireAuth("tether", "s3cret")
	ctx := context.Background()
	good := notify.SMTP{Addr: srv.Addr, From: "tether@example.com", Username: "tether", Password: "s3cret"}
	wrong := good
	wrong.Password = "nope"
	err := notify.CheckMail(ctx, wrong)
	if err == nil || !notify.MailFinal(err) || !strings.Contains(err.Error(), "535") {
		t.Errorf("wrong password: %v (final %v)", err, notify.MailFinal(err))
	}
	srv.Reject("451 4.3.0 try later")
	err = notify.SendMail(ctx, good, []string{"ops@example.com"}, []byte("x\r\n"))
	if err == nil || notify.MailFinal(err) {
		t.Errorf("451: %v (final %v)", err, notify.MailFinal(err))
	}
	srv.Reject("550 5.1.1 no such user")
	if err := notify.SendMail(ctx, good, []string{"ops@example.com"}, []byte("x\r\n")); err == nil || !notify.MailFinal(err) {
		t.Errorf("550: %v", err)
	}
	for _, s := range []notify.SMTP{{From: "a@b"}, {Addr: "no-port", From: "a@b"}, {Addr: srv.Addr}} {
		if err := notify.CheckMail(ctx, s); err == nil || !notify.MailFinal(err) {
			t.Errorf("%+v: %v", s, err)
		}
	}
	srvDown := notify.SMTP{Addr: "127.0.0.1:1", From: "a@b"}
	if err := notify.CheckMail(ctx, srvDown); err == nil || notify.MailFinal(err) {
		t.Errorf("refused connection: %v", err)
	}
	if !errors.Is(notify.CheckMail(ctx, notify.SMTP{From: "a@b"}), notify.ErrNoMailServer) {
		t.Error("ErrNoMailServer")
	}
}
