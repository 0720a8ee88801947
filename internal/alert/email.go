package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/notify"
)

// emailSender sends a plain-text mail with a summary and the payload
// through the SMTP server: STARTTLS when the server offers it, PLAIN
// authentication when a username is set (net/smtp refuses it without TLS
// except to localhost). SMTP 5xx answers are final; 4xx and network
// errors are retried.
func emailSender(cfg SMTPConfig, e EmailAction, t Target) sendFunc {
	return func(ctx context.Context, n notification) error {
		if cfg.Addr == "" {
			return Permanent(errors.New("no SMTP server configured (smtp.addr in the rules file)"))
		}
		msg := notify.Message(cfg.From, e.To, "[Tether] "+EmailSubject(n.alert), emailBody(n, t), time.Now())
		err := notify.SendMail(ctx, cfg, e.To, msg)
		if notify.MailFinal(err) {
			return Permanent(err)
		}
		return err
	}
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

// emailBody is the text of an alert mail: a summary, then the payload.
func emailBody(n notification, t Target) string {
	a := n.alert
	var b strings.Builder
	fmt.Fprintf(&b, "Alert rule:   %s\n", a.Rule.Name)
	fmt.Fprintf(&b, "Condition:    %s\n", a.Condition)
	fmt.Fprintf(&b, "Severity:     %s\n", a.Rule.Severity)
	if a.Rule.Kind == KindLog {
		fmt.Fprintf(&b, "Query:        %s\n", a.Rule.Query)
	} else {
		fmt.Fprintf(&b, "Metric:       %s (%s over %s)\n", a.Rule.Metric, a.Rule.Aggregation, a.Rule.Window)
	}
	fmt.Fprintf(&b, "Criterion:    %s %s %g\n", a.Rule.Aggregation, a.Rule.Operator, a.Rule.Threshold)
	if a.HasValue {
		fmt.Fprintf(&b, "Value:        %g\n", a.Value)
	}
	for _, d := range sortedDims(a.Dimensions) {
		fmt.Fprintf(&b, "Dimension:    %s = %s\n", d.Name, d.Value)
	}
	fmt.Fprintf(&b, "Fired:        %s\n", formatTime(a.FiredAt))
	if a.Condition == Resolved {
		fmt.Fprintf(&b, "Resolved:     %s (%s)\n", formatTime(a.ResolvedAt), a.Reason)
	}
	fmt.Fprintf(&b, "Alert id:     %s\n", a.ID)
	if a.Rule.Description != "" {
		fmt.Fprintf(&b, "\n%s\n", a.Rule.Description)
	}
	b.WriteString("\nCommon alert schema:\n")
	var pretty bytes.Buffer
	if json.Indent(&pretty, n.payload, "", "  ") == nil {
		b.WriteString(pretty.String())
	} else {
		b.Write(n.payload)
	}
	b.WriteString("\n")
	return b.String()
}
