package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// emailSender sends a plain-text mail with a summary and the payload
// through the SMTP server: STARTTLS when the server offers it, PLAIN
// authentication when a username is set (net/smtp refuses it without TLS
// except to localhost). SMTP 5xx answers are final; 4xx and network
// errors are retried.
func emailSender(cfg SMTPConfig, e EmailAction, t Target) sendFunc {
	return func(ctx context.Context, n notification) error {
		msg := emailMessage(cfg.From, e.To, n, t)
		err := sendMail(ctx, cfg, e.To, msg)
		var te *textproto.Error
		if errors.As(err, &te) && te.Code >= 500 {
			return Permanent(err)
		}
		return err
	}
}

func sendMail(ctx context.Context, cfg SMTPConfig, to []string, msg []byte) error {
	if cfg.Addr == "" {
		return Permanent(errors.New("no SMTP server configured (smtp.addr in the rules file)"))
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return Permanent(fmt.Errorf("smtp.addr %q: %w", cfg.Addr, err))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", cfg.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", cfg.Addr, err)
	}
	defer c.Close()
	if err := c.Hello("tether"); err != nil {
		return fmt.Errorf("smtp %s: %w", cfg.Addr, err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, InsecureSkipVerify: cfg.Insecure, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("smtp %s STARTTLS: %w", cfg.Addr, err)
		}
	}
	if cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", cfg.Username, cfg.Password, host)); err != nil {
			return fmt.Errorf("smtp %s authentication: %w", cfg.Addr, err)
		}
	}
	if err := c.Mail(cfg.From); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
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

// EmailSubject is the subject line of an alert mail.
func EmailSubject(a Alert) string {
	s := fmt.Sprintf("%s: %s alert rule %s", a.Condition, a.Rule.Severity, a.Rule.Name)
	if len(a.Dimensions) > 0 {
		var parts []string
		for _, d := range sortedDims(a.Dimensions) {
			parts = append(parts, d.Name+"="+d.Value)
		}
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func emailMessage(from string, to []string, n notification, t Target) []byte {
	a := n.alert
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", "[Tether] "+EmailSubject(a)))
	hdr("Date", time.Now().UTC().Format(time.RFC1123Z))
	var id [12]byte
	_, _ = rand.Read(id[:])
	hdr("Message-ID", fmt.Sprintf("<%x@tether>", id))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "Alert rule:   %s\r\n", a.Rule.Name)
	fmt.Fprintf(&b, "Condition:    %s\r\n", a.Condition)
	fmt.Fprintf(&b, "Severity:     %s\r\n", a.Rule.Severity)
	if a.Rule.Kind == KindLog {
		fmt.Fprintf(&b, "Query:        %s\r\n", a.Rule.Query)
	} else {
		fmt.Fprintf(&b, "Metric:       %s (%s over %s)\r\n", a.Rule.Metric, a.Rule.Aggregation, a.Rule.Window)
	}
	fmt.Fprintf(&b, "Criterion:    %s %s %g\r\n", a.Rule.Aggregation, a.Rule.Operator, a.Rule.Threshold)
	if a.HasValue {
		fmt.Fprintf(&b, "Value:        %g\r\n", a.Value)
	}
	for _, d := range sortedDims(a.Dimensions) {
		fmt.Fprintf(&b, "Dimension:    %s = %s\r\n", d.Name, d.Value)
	}
	fmt.Fprintf(&b, "Fired:        %s\r\n", formatTime(a.FiredAt))
	if a.Condition == Resolved {
		fmt.Fprintf(&b, "Resolved:     %s (%s)\r\n", formatTime(a.ResolvedAt), a.Reason)
	}
	fmt.Fprintf(&b, "Alert id:     %s\r\n", a.ID)
	if a.Rule.Description != "" {
		fmt.Fprintf(&b, "\r\n%s\r\n", a.Rule.Description)
	}
	b.WriteString("\r\nCommon alert schema:\r\n")
	var pretty bytes.Buffer
	if json.Indent(&pretty, n.payload, "", "  ") == nil {
		b.WriteString(strings.ReplaceAll(pretty.String(), "\n", "\r\n"))
	} else {
		b.Write(n.payload)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}
