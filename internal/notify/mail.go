package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// SMTP is a mail server and the hub's account on it.
type SMTP struct {
	// Addr is host:port (587 with STARTTLS when offered, 25, or a local
	// relay).
	Addr     string `json:"addr"`
	From     string `json:"from"`
	Username string `json:"username,omitempty"`
	// Password comes from the environment; it is never written out.
	Password string `json:"-"`
	// Insecure skips certificate verification of STARTTLS (test relays).
	Insecure bool `json:"insecureSkipVerify,omitempty"`
}

// MailTimeout bounds one SendMail or CheckMail when the caller's context
// has no earlier deadline.
const MailTimeout = 30 * time.Second

// ErrNoMailServer: SendMail or CheckMail without an address.
var ErrNoMailServer = errors.New("no SMTP server configured")

// configError is a mistake in SMTP that no retry fixes.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// MailFinal reports whether a SendMail error is final: the server
// answered 5xx (a wrong address, refused credentials, a policy) or the
// configuration is wrong. 4xx answers and network errors may pass.
func MailFinal(err error) bool {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 500
	}
	var ce configError
	return errors.As(err, &ce)
}

// session is an SMTP conversation up to authentication: EHLO, STARTTLS
// when the server offers it, AUTH PLAIN when a username is set (net/smtp
// refuses PLAIN without TLS except to localhost).
func session(ctx context.Context, s SMTP) (*smtp.Client, func(), error) {
	if s.Addr == "" {
		return nil, nil, configError{ErrNoMailServer}
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, nil, configError{fmt.Errorf("SMTP address %q: %w", s.Addr, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, MailTimeout)
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancelled context (the caller gives up) breaks the conversation.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	c, err := smtp.NewClient(conn, host)
	done := func() {
		stop()
		if c != nil {
			_ = c.Close()
		}
		_ = conn.Close()
		cancel()
	}
	fail := func(what string, err error) (*smtp.Client, func(), error) {
		done()
		return nil, nil, fmt.Errorf("smtp %s%s: %w", s.Addr, what, err)
	}
	if err != nil {
		return fail("", err)
	}
	if err := c.Hello("tether"); err != nil {
		return fail("", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, InsecureSkipVerify: s.Insecure, MinVersion: tls.VersionTLS12}); err != nil {
			return fail(" STARTTLS", err)
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			var te *textproto.Error
			if !errors.As(err, &te) {
				// net/smtp's own refusal (no TLS to a remote server, no
				// AUTH offered): a configuration matter.
				err = configError{err}
			}
			return fail(" authentication", err)
		}
	}
	return c, done, nil
}

// SendMail delivers msg (headers and body, see Message) to the
// recipients in one SMTP transaction.
func SendMail(ctx context.Context, s SMTP, to []string, msg []byte) error {
	c, done, err := session(ctx, s)
	if err != nil {
		return err
	}
	defer done()
	if err := c.Mail(envelopeAddress(s.From)); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	for _, r := range to {
		if err := c.Rcpt(envelopeAddress(r)); err != nil {
			return fmt.Errorf("smtp RCPT TO %s: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	return c.Quit()
}

// CheckMail proves that the server takes the account: it connects, says
// EHLO, starts TLS when offered, authenticates when a username is set,
// and quits without sending anything.
func CheckMail(ctx context.Context, s SMTP) error {
	if s.From == "" {
		return configError{errors.New("no sender address (From) configured")}
	}
	c, done, err := session(ctx, s)
	if err != nil {
		return err
	}
	defer done()
	return c.Quit()
}

// envelopeAddress is the addr-spec of "Name <a@b>" (MAIL FROM and RCPT TO
// take the bare address).
func envelopeAddress(a string) string {
	if i := strings.LastIndexByte(a, '<'); i >= 0 {
		if j := strings.IndexByte(a[i:], '>'); j > 0 {
			return a[i+1 : i+j]
		}
	}
	return strings.TrimSpace(a)
}

// Message is a plain-text mail: From, To, an encoded Subject, Date,
// Message-ID and MIME headers, then body with CRLF line ends.
func Message(from string, to []string, subject, body string, date time.Time) []byte {
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", date.UTC().Format(time.RFC1123Z))
	var id [12]byte
	_, _ = rand.Read(id[:])
	hdr("Message-ID", fmt.Sprintf("<%x@tether>", id))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	body = strings.ReplaceAll(body, "\r\n", "\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	if !strings.HasSuffix(body, "\n") {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}
