package alert

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/tether-hub/tether/internal/notify"
)

// ActionGroup is a named set of destinations that rules notify.
type ActionGroup struct {
	Name    string   `json:"name"`
	Actions []Action `json:"actions"`
	Pos     string   `json:"-"`
}

// Action is one destination: exactly one of the pointers is set.
type Action struct {
	Webhook *WebhookAction `json:"webhook,omitempty"`
	Email   *EmailAction   `json:"email,omitempty"`
	Command *CommandAction `json:"command,omitempty"`
	NATS    *NATSAction    `json:"nats,omitempty"`
}

// Kind names the action's destination type.
func (a Action) Kind() string {
	switch {
	case a.Webhook != nil:
		return "webhook"
	case a.Email != nil:
		return "email"
	case a.Command != nil:
		return "command"
	case a.NATS != nil:
		return "nats"
	}
	return "none"
}

// WebhookAction POSTs the common alert schema JSON.
type WebhookAction struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Timeout time.Duration     `json:"timeout,omitempty"`
}

// EmailAction mails a summary and the JSON through the SMTP server.
type EmailAction struct {
	To []string `json:"to"`
}

// CommandAction runs a local program with the alert JSON on stdin.
type CommandAction struct {
	Argv    []string      `json:"run"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// NATSAction publishes the alert JSON on a subject of the hub's NATS.
type NATSAction struct {
	Subject string `json:"subject"`
}

// SMTPConfig is the mail server email actions use (the rules file's
// smtp section).
type SMTPConfig = notify.SMTP

// destKey identifies a destination across reloads: the same group,
// position and definition keep their send loop.
func destKey(group string, i int, a Action, smtp SMTPConfig) string {
	b, _ := json.Marshal(a)
	k := group + "\x00" + strconv.Itoa(i) + "\x00" + string(b)
	if a.Email != nil {
		s, _ := json.Marshal(smtp)
		k += string(s) + smtp.Password
	}
	return k
}
