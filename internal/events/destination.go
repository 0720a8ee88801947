package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// Tether's destination types besides Event Grid's WebHook: the analogues
// of Event Grid's queue and Event Hubs handlers (Stream), of Functions and
// Automation (Command), and of the Logic Apps e-mail tutorial (Email).
const (
	// EndpointStream appends every event to a NATS JetStream stream on the
	// hub's NATS, one message per event on a subject per device.
	EndpointStream = "Stream"
	// EndpointCommand runs a program of the hub's command directory per
	// event (or batch), with the events as JSON on its standard input.
	EndpointCommand = "Command"
	// EndpointEmail mails a readable account of each event (or of a
	// digest window) through the hub's SMTP server.
	EndpointEmail = "Email"
)

// EndpointTypes are the destination types, WebHook first.
var EndpointTypes = []string{EndpointWebHook, EndpointStream, EndpointCommand, EndpointEmail}

// ParseEndpointType returns the canonical spelling of a destination type,
// matched without regard to case.
func ParseEndpointType(s string) (string, bool) {
	for _, t := range EndpointTypes {
		if strings.EqualFold(s, t) {
			return t, true
		}
	}
	return "", false
}

// StreamProperties of a Stream destination. The stream belongs to the
// subscription: the hub creates it when the subscription is checked,
// updates its limits with the subscription, and deletes it with the
// subscription.
//
// Each event is one message on SubjectPrefix.<device>.<kind> (kind:
// connected, disconnected, created, deleted, telemetry; the device id
// encoded as a NATS token, see journal.EncodeToken), its body the event
// in the subscription's schema (one JSON object), Nats-Msg-Id its id.
type StreamProperties struct {
	// StreamName: letters, digits, '-' and '_', at most 64; not starting
	// with TETHER_, KV_ or OBJ_ (the hub's own). Default
	// EVENTS_<NAME> in upper case with '-' as '_'.
	StreamName string `json:"streamName,omitempty"`
	// SubjectPrefix: NATS tokens (letters, digits, '-', '_') joined by
	// dots, not under tether. (the journal's). Default events.<name in
	// lower case>.
	SubjectPrefix string `json:"subjectPrefix,omitempty"`
	// RetentionInHours: how long messages are kept, 1–87600, default 168
	// (7 days).
	RetentionInHours int `json:"retentionInHours,omitempty"`
	// MaxMessages, MaxBytes and MaxMessagesPerSubject (per device and
	// kind) bound the stream; the oldest messages go first. 0: no limit.
	MaxMessages           int64 `json:"maxMessages,omitempty"`
	MaxBytes              int64 `json:"maxBytes,omitempty"`
	MaxMessagesPerSubject int64 `json:"maxMessagesPerSubject,omitempty"`
}

// CommandProperties of a Command destination. Exit status 0 is a
// delivery; anything else, or no exit within the timeout (the program and
// its process group are killed), is a failed attempt retried on the
// subscription's schedule; a program that cannot be started fails for
// good. What it writes is kept in the subscription's delivery log.
type CommandProperties struct {
	// Command is the program and its arguments (no shell). The program is
	// a file of the hub's command directory (tether serve
	// --event-command-dir), named relative to it or by a path inside it.
	Command []string `json:"command,omitempty"`
	// TimeoutInSeconds: 1–3600, default 30.
	TimeoutInSeconds int `json:"timeoutInSeconds,omitempty"`
	// MaxConcurrency: how many runs at once, each for other devices;
	// 1–64, default 4.
	MaxConcurrency int `json:"maxConcurrency,omitempty"`
}

// EmailProperties of an Email destination: through the hub's SMTP server
// (tether serve --smtp-addr, the password from the environment).
type EmailProperties struct {
	// To: 1–50 addresses ("ops@example.com" or "Ops <ops@example.com>").
	To []string `json:"to,omitempty"`
	// DigestWindowInSeconds: 0 (the default) mails each event as it comes;
	// otherwise the first event opens a window of this many seconds
	// (1–86400) and one mail tells everything that came in it.
	DigestWindowInSeconds int `json:"digestWindowInSeconds,omitempty"`
	// MaxMailsPerRecipientPerHour: 1–3600, default 60. Past it, events
	// wait and go in one digest once a recipient may be mailed again
	// (nothing is dropped).
	MaxMailsPerRecipientPerHour int `json:"maxMailsPerRecipientPerHour,omitempty"`
}

// Defaults and limits of the destination kinds.
const (
	DefaultStreamBatch              = 100
	DefaultRetentionHours           = 168
	MaxRetentionHours               = 87600
	DefaultCommandTimeoutSeconds    = 30
	MaxCommandTimeoutSeconds        = 3600
	DefaultCommandConcurrency       = 4
	MaxCommandConcurrency           = 64
	MaxCommandArgs                  = 64
	MaxEmailRecipients              = 50
	MaxDigestWindowSeconds          = 86400
	DefaultMailsPerRecipientPerHour = 60
	MaxMailsPerRecipientPerHour     = 3600
	maxStreamName                   = 64
	maxSubjectPrefix                = 128
)

// Validation methods of the destinations that have no handshake: what the
// hub checked before delivering.
const (
	MethodStream  = "StreamCreated"     // the stream exists with the subscription's limits
	MethodCommand = "CommandChecked"    // the program is an executable file of the command directory
	MethodEmail   = "MailServerChecked" // the SMTP server took the hub's account
)

// Kind is the destination's canonical type (WebHook when unset).
func (d Destination) Kind() string {
	if d.EndpointType == "" {
		return EndpointWebHook
	}
	if t, ok := ParseEndpointType(d.EndpointType); ok {
		return t
	}
	return d.EndpointType
}

// Target names where the events go, for people: the webhook URL, the
// stream and its subjects, the command line, or the recipients.
func (d Destination) Target() string {
	p := d.Properties
	switch d.Kind() {
	case EndpointStream:
		return p.StreamName + " (" + p.SubjectPrefix + ".>)"
	case EndpointCommand:
		return QuoteArgs(p.Command)
	case EndpointEmail:
		return strings.Join(p.To, ", ")
	}
	return p.EndpointURL
}

// QuoteArgs writes argv as a shell would read it back: arguments with
// spaces, quotes or shell characters in single quotes.
func QuoteArgs(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]{}~#!") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// ValidationMethod is how s's destination is proven before delivery: the
// webhook handshake of its schema, or the check of its kind.
func (s Subscription) ValidationMethod() string {
	switch s.Destination.Kind() {
	case EndpointStream:
		return MethodStream
	case EndpointCommand:
		return MethodCommand
	case EndpointEmail:
		return MethodEmail
	}
	if s.EventDeliverySchema == CloudEventSchemaV1_0 {
		return MethodAbuseProtection
	}
	return MethodValidationEvent
}

// destinationDigest identifies the destination definition a check was made
// for: any change of it needs a new check.
func (s Subscription) destinationDigest() string {
	b, _ := json.Marshal(s.Destination)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// WithCheck returns s after a check of its (non-webhook) destination that
// started at start and ended at end with err: Succeeded, or Failed with
// err in Validation.Error.
func (s Subscription) WithCheck(err error, start, end time.Time) Subscription {
	v := &ValidationState{Method: s.ValidationMethod(), Endpoint: s.Destination.Target(), Checked: s.destinationDigest(), StartedAt: start}
	if err != nil {
		v.Error = err.Error()
		s.ProvisioningState = Failed
	} else {
		v.ValidatedAt = end
		s.ProvisioningState = Succeeded
	}
	s.Validation = v
	return s
}

// BatchLimit is how many events one delivery may take: maxEventsPerBatch,
// or for e-mail one event per mail (no digest) or any number (a digest
// tells all).
func (s Subscription) BatchLimit() int {
	if s.Destination.Kind() == EndpointEmail {
		if s.Destination.Properties.DigestWindowInSeconds > 0 {
			return MaxMaxEventsPerBatch
		}
		return 1
	}
	return max(s.Destination.Properties.MaxEventsPerBatch, 1)
}

// ConcurrencyLimit is how many deliveries of s may run at once (0: the
// engine's limit): maxConcurrency for commands.
func (s Subscription) ConcurrencyLimit() int {
	if s.Destination.Kind() == EndpointCommand {
		return s.Destination.Properties.MaxConcurrency
	}
	return 0
}

// DefaultStreamName is the stream of a Stream subscription named name
// that sets none.
func DefaultStreamName(name string) string {
	return "EVENTS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// DefaultSubjectPrefix is the subject prefix of a Stream subscription
// named name that sets none.
func DefaultSubjectPrefix(name string) string { return "events." + NameKey(name) }

// applyDefaults fills the unset members of the destination's kind (key:
// the subscription's name key).
func (d *Destination) applyDefaults(key string) {
	d.EndpointType = d.Kind()
	p := &d.Properties
	p.EndpointURL = strings.TrimSpace(p.EndpointURL)
	batch := DefaultMaxEventsPerBatch
	switch d.EndpointType {
	case EndpointStream:
		batch = DefaultStreamBatch
		p.StreamName = strings.TrimSpace(p.StreamName)
		if p.StreamName == "" && key != "" {
			p.StreamName = DefaultStreamName(key)
		}
		p.SubjectPrefix = strings.TrimSpace(p.SubjectPrefix)
		if p.SubjectPrefix == "" && key != "" {
			p.SubjectPrefix = DefaultSubjectPrefix(key)
		}
		if p.RetentionInHours == 0 {
			p.RetentionInHours = DefaultRetentionHours
		}
	case EndpointCommand:
		if p.TimeoutInSeconds == 0 {
			p.TimeoutInSeconds = DefaultCommandTimeoutSeconds
		}
		if p.MaxConcurrency == 0 {
			p.MaxConcurrency = DefaultCommandConcurrency
		}
	case EndpointEmail:
		for i, a := range p.To {
			p.To[i] = strings.TrimSpace(a)
		}
		if p.MaxMailsPerRecipientPerHour == 0 {
			p.MaxMailsPerRecipientPerHour = DefaultMailsPerRecipientPerHour
		}
		return // no batching options
	}
	if p.MaxEventsPerBatch == 0 {
		p.MaxEventsPerBatch = batch
	}
	if p.PreferredBatchSizeInKilobytes == 0 {
		p.PreferredBatchSizeInKilobytes = DefaultPreferredBatchSizeKB
	}
}

// property is one destination property: its JSON name, whether it is set,
// and the kinds it belongs to.
type property struct {
	name  string
	set   bool
	kinds []string
}

func (p DestinationProperties) members() []property {
	batching := []string{EndpointWebHook, EndpointStream, EndpointCommand}
	stream, command, email := []string{EndpointStream}, []string{EndpointCommand}, []string{EndpointEmail}
	return []property{
		{"endpointUrl", p.EndpointURL != "", []string{EndpointWebHook}},
		{"maxEventsPerBatch", p.MaxEventsPerBatch != 0, batching},
		{"preferredBatchSizeInKilobytes", p.PreferredBatchSizeInKilobytes != 0, batching},
		{"streamName", p.StreamName != "", stream},
		{"subjectPrefix", p.SubjectPrefix != "", stream},
		{"retentionInHours", p.RetentionInHours != 0, stream},
		{"maxMessages", p.MaxMessages != 0, stream},
		{"maxBytes", p.MaxBytes != 0, stream},
		{"maxMessagesPerSubject", p.MaxMessagesPerSubject != 0, stream},
		{"command", p.Command != nil, command},
		{"timeoutInSeconds", p.TimeoutInSeconds != 0, command},
		{"maxConcurrency", p.MaxConcurrency != 0, command},
		{"to", p.To != nil, email},
		{"digestWindowInSeconds", p.DigestWindowInSeconds != 0, email},
		{"maxMailsPerRecipientPerHour", p.MaxMailsPerRecipientPerHour != 0, email},
	}
}

// check validates the destination under o; fail records a problem at a
// field path.
func (d Destination) check(fail func(field, msg string), o ValidateOptions) {
	const at = "destination.properties."
	kind, ok := ParseEndpointType(d.Kind())
	if !ok {
		fail("destination.endpointType", quote(d.EndpointType)+" is not supported: use "+strings.Join(EndpointTypes, ", "))
		if d.Properties.EndpointURL != "" { // most likely meant as a webhook
			if msg := checkEndpoint(d.Properties.EndpointURL, o); msg != "" {
				fail(at+"endpointUrl", msg)
			}
		}
		return
	}
	if why := o.Unavailable[kind]; why != "" {
		fail("destination.endpointType", kind+" destinations are not available on this hub: "+why)
	}
	p := d.Properties
	for _, m := range p.members() {
		if m.set && !containsFold(m.kinds, kind) {
			fail(at+m.name, "applies to "+strings.Join(m.kinds, ", ")+" destinations, not "+kind)
		}
	}
	switch kind {
	case EndpointWebHook:
		if msg := checkEndpoint(p.EndpointURL, o); msg != "" {
			fail(at+"endpointUrl", msg)
		}
	case EndpointStream:
		if msg := checkStreamName(p.StreamName); msg != "" {
			fail(at+"streamName", msg)
		}
		if msg := checkSubjectPrefix(p.SubjectPrefix); msg != "" {
			fail(at+"subjectPrefix", msg)
		}
		checkRange(fail, at+"retentionInHours", p.RetentionInHours, 1, MaxRetentionHours)
		for _, l := range []struct {
			name string
			v    int64
		}{{"maxMessages", p.MaxMessages}, {"maxBytes", p.MaxBytes}, {"maxMessagesPerSubject", p.MaxMessagesPerSubject}} {
			if l.v < 0 {
				fail(at+l.name, "must be 0 (no limit) or more (is "+strconv.FormatInt(l.v, 10)+")")
			}
		}
	case EndpointCommand:
		checkCount(fail, at+"command", len(p.Command), MaxCommandArgs, "the program (a file of the hub's command directory) and its arguments", "words")
		if len(p.Command) > 0 && strings.TrimSpace(p.Command[0]) == "" {
			fail(at+"command[0]", "the program is empty")
		}
		for i, a := range p.Command {
			if strings.ContainsRune(a, 0) || len(a) > 4096 {
				fail(at+"command["+strconv.Itoa(i)+"]", "must be at most 4096 bytes without NUL")
			}
		}
		checkRange(fail, at+"timeoutInSeconds", p.TimeoutInSeconds, 1, MaxCommandTimeoutSeconds)
		checkRange(fail, at+"maxConcurrency", p.MaxConcurrency, 1, MaxCommandConcurrency)
	case EndpointEmail:
		checkCount(fail, at+"to", len(p.To), MaxEmailRecipients, "at least one address", "addresses")
		for i, a := range p.To {
			if _, err := mail.ParseAddress(a); err != nil {
				fail(at+"to["+strconv.Itoa(i)+"]", quote(a)+" is not an e-mail address")
			}
		}
		if v := p.DigestWindowInSeconds; v < 0 || v > MaxDigestWindowSeconds {
			fail(at+"digestWindowInSeconds", "must be 0 (a mail per event) to "+strconv.Itoa(MaxDigestWindowSeconds)+" (is "+strconv.Itoa(v)+")")
		}
		checkRange(fail, at+"maxMailsPerRecipientPerHour", p.MaxMailsPerRecipientPerHour, 1, MaxMailsPerRecipientPerHour)
	}
}

// checkCount requires 1 to max items (unit) in a list member; need says
// what an empty one lacks.
func checkCount(fail func(field, msg string), field string, n, max int, need, unit string) {
	switch {
	case n == 0:
		fail(field, "required: "+need)
	case n > max:
		fail(field, "at most "+strconv.Itoa(max)+" "+unit+" (has "+strconv.Itoa(n)+")")
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func checkStreamName(n string) string {
	if n == "" {
		return "required"
	}
	if len(n) > maxStreamName {
		return "at most " + strconv.Itoa(maxStreamName) + " characters (is " + strconv.Itoa(len(n)) + ")"
	}
	for i := 0; i < len(n); i++ {
		if !tokenByte(n[i]) {
			return "may hold only letters, digits, '-' and '_'"
		}
	}
	up := strings.ToUpper(n)
	for _, p := range []string{"TETHER_", "KV_", "OBJ_"} {
		if strings.HasPrefix(up, p) {
			return "names starting with " + p + " belong to the hub"
		}
	}
	return ""
}

func checkSubjectPrefix(s string) string {
	if s == "" {
		return "required"
	}
	if len(s) > maxSubjectPrefix {
		return "at most " + strconv.Itoa(maxSubjectPrefix) + " characters (is " + strconv.Itoa(len(s)) + ")"
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return "has an empty token (two dots, or a dot at an end)"
		}
		for i := 0; i < len(tok); i++ {
			if !tokenByte(tok[i]) {
				return "tokens may hold only letters, digits, '-' and '_' (no wildcards)"
			}
		}
	}
	first, _, _ := strings.Cut(s, ".")
	if first == "tether" || strings.EqualFold(first, "_INBOX") {
		return "subjects under " + first + ". belong to the hub"
	}
	return ""
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
