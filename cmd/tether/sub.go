package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/events"
)

func init() { subcommands = append(subcommands, newSubCmd) }

func newSubCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sub",
		Aliases: []string{"subscription"},
		Short:   "Manage event subscriptions (Event Grid compatible): webhooks, streams, commands, e-mail",
		Long: `Manage the hub's event subscriptions: which events (DeviceConnected,
DeviceDisconnected, DeviceCreated, DeviceDeleted, DeviceTelemetry) go where,
in the Event Grid or CloudEvents 1.0 schema, with Event Grid's filters,
retry policy and batching, and Tether's token-renewal filter. Definitions
are Event Grid event subscription "properties" (see 'tether sub show -o
json'); -f reads one from a file.

Destinations (one per subscription, all with the same order per device,
retries, dead letters and renewal filter):
  --endpoint URL    a webhook (Event Grid's)
  --stream          a NATS JetStream stream on the hub's NATS, one message per
                    event on <prefix>.<device>.<kind> (Event Hubs, queues)
  --command 'PROG'  a program of the hub's --event-command-dir, the events as
                    JSON on stdin; exit 0 delivers (Functions, Automation)
  --email ADDR,…    a mail per event or per --email-digest window through the
                    hub's --smtp-addr, rate limited per recipient (Logic Apps)

A new or changed webhook endpoint is validated before it receives anything:
Event Grid's SubscriptionValidationEvent (the endpoint echoes
validationCode, or someone opens validationUrl within 5 minutes) or the
CloudEvents OPTIONS handshake. Other destinations are checked (the stream
is created, the program found, the mail server logged in to). 'tether sub
show' tells the state and what delivery has done; 'tether sub log' lists
the last attempts.

Events whose delivery fails for good are kept as dead letters:
'tether sub deadletters NAME' lists them, --replay delivers them again.`,
	}
	cmd.AddCommand(
		newSubCreateCmd(),
		newSubListCmd(),
		newSubShowCmd(),
		newSubUpdateCmd(),
		newSubDeleteCmd(),
		newSubDeadLettersCmd(),
		newSubLogCmd(),
	)
	return cmd
}

// subFlags are the definition flags of create and update.
type subFlags struct {
	file          string
	endpoint      string
	schema        string
	types         []string
	beginsWith    string
	endsWith      string
	caseSensitive bool
	arrays        bool
	filters       []string
	clearFilters  bool
	maxAttempts   int
	ttl           time.Duration
	batch         int
	batchKB       int
	suppress      bool
	grace         time.Duration
	noDeadLetter  bool

	stream              bool
	streamName          string
	streamPrefix        string
	streamRetention     time.Duration
	streamMaxMsgs       int64
	streamMaxBytes      int64
	streamMaxPerSubject int64
	command             string
	commandTimeout      time.Duration
	commandConcurrency  int
	email               []string
	emailDigest         time.Duration
	emailRate           int
}

// destinationFlags select the destination kind: at most one of them.
var destinationFlags = map[string]string{
	"endpoint": events.EndpointWebHook, "stream": events.EndpointStream,
	"command": events.EndpointCommand, "email": events.EndpointEmail,
}

func (f *subFlags) add(cmd *cobra.Command, update bool) {
	fs := cmd.Flags()
	fs.StringVarP(&f.file, "file", "f", "", "read the definition (subscription JSON) from this file, '-' for standard input; flags override it")
	fs.StringVar(&f.endpoint, "endpoint", "", "webhook URL (https; http only for loopback unless the hub allows it)")
	fs.BoolVar(&f.stream, "stream", false, "deliver to a NATS JetStream stream of the hub (created and deleted with the subscription)")
	fs.StringVar(&f.streamName, "stream-name", "", "the stream's name (default EVENTS_<NAME>)")
	fs.StringVar(&f.streamPrefix, "stream-subject-prefix", "", "subject prefix: events go to <prefix>.<device>.<kind> (default events.<name>)")
	fs.DurationVar(&f.streamRetention, "stream-retention", 0, "how long the stream keeps events, whole hours (default 168h)")
	fs.Int64Var(&f.streamMaxMsgs, "stream-max-msgs", 0, "the stream keeps at most this many events, oldest dropped first (default no limit)")
	fs.Int64Var(&f.streamMaxBytes, "stream-max-bytes", 0, "the stream keeps at most this many bytes (default no limit)")
	fs.Int64Var(&f.streamMaxPerSubject, "stream-max-per-subject", 0, "the stream keeps at most this many events per device and kind (default no limit)")
	fs.StringVar(&f.command, "command", "", "run this program of the hub's --event-command-dir per event, with its arguments ('notify.sh --team ops'; quotes as in a shell)")
	fs.DurationVar(&f.commandTimeout, "command-timeout", 0, "kill the program after this long, whole seconds (default 30s)")
	fs.IntVar(&f.commandConcurrency, "command-concurrency", 0, "run at most this many programs at once, 1-64 (default 4)")
	fs.StringSliceVar(&f.email, "email", nil, "mail the events to these addresses, comma-separated, through the hub's SMTP server")
	fs.DurationVar(&f.emailDigest, "email-digest", 0, "gather the events of this window, whole seconds, in one mail (default 0: a mail per event)")
	fs.IntVar(&f.emailRate, "email-rate", 0, "at most this many mails per recipient an hour; more wait for one digest (default 60)")
	fs.StringVar(&f.schema, "schema", "", "delivery schema: eventgrid or cloudevents (default eventgrid)")
	fs.StringSliceVar(&f.types, "types", nil, "event types delivered, comma-separated: DeviceConnected, DeviceDisconnected, DeviceCreated, DeviceDeleted, DeviceTelemetry or All (default All)")
	fs.StringVar(&f.beginsWith, "subject-begins-with", "", "deliver only events whose subject (devices/{id}) begins with this")
	fs.StringVar(&f.endsWith, "subject-ends-with", "", "deliver only events whose subject ends with this")
	fs.BoolVar(&f.caseSensitive, "subject-case-sensitive", false, "compare the subject filters with regard to case")
	fs.BoolVar(&f.arrays, "filter-arrays", false, "let advanced filters look into arrays (enableAdvancedFilteringOnArrays)")
	fs.StringArrayVar(&f.filters, "filter", nil, "advanced filter 'KEY OPERATOR [VALUES]', repeatable, all must match: values comma-separated, "+
		"ranges as LOW,HIGH pairs separated by spaces, or a JSON array; e.g. 'data.tether.reason StringIn client,network', "+
		"'data.tether.connectDurationMs NumberLessThan 60000', 'data.x NumberInRange 1,5 10,20'"+
		map[bool]string{true: " (replaces the existing filters)", false: ""}[update])
	fs.IntVar(&f.maxAttempts, "max-attempts", 0, "maximum delivery attempts, 1-30 (default 30)")
	fs.DurationVar(&f.ttl, "ttl", 0, "event time to live, whole minutes from 1m to 1440m (default 1440m)")
	fs.IntVar(&f.batch, "batch", 0, "maximum events per delivery, 1-5000 (default 1: no batching)")
	fs.IntVar(&f.batchKB, "batch-kb", 0, "preferred batch size in kilobytes, 1-1024 (default 64)")
	fs.BoolVar(&f.suppress, "suppress-renewals", false, "deliver neither half of a SAS-token renewal (disconnect + reconnect within the grace period)")
	fs.DurationVar(&f.grace, "renewal-grace", 0, "grace period of --suppress-renewals, whole seconds from 1s to 1h (default 2m)")
	fs.BoolVar(&f.noDeadLetter, "no-deadletter", false, "drop events whose delivery fails for good instead of keeping them as dead letters")
	if update {
		fs.BoolVar(&f.clearFilters, "clear-filters", false, "remove every advanced filter")
	}
}

// changed reports whether any definition flag was given.
func (f *subFlags) changed(cmd *cobra.Command) bool {
	changed := false
	cmd.LocalNonPersistentFlags().VisitAll(func(fl *pflag.Flag) { changed = changed || fl.Changed })
	return changed
}

// apply sets the given flags in def, a subscription definition as JSON
// values. Only what the flags say is checked here; the hub checks the
// rest and lists every problem.
func (f *subFlags) apply(cmd *cobra.Command, def map[string]any) error {
	fs := cmd.Flags()
	set := func(path string, v any) error { return setPath(def, path, v) }
	var errs []error
	try := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	f.applyDestination(fs, def, set, try)
	if fs.Changed("schema") {
		s, err := parseSchemaFlag(f.schema)
		try(err)
		if err == nil {
			try(set("eventDeliverySchema", string(s)))
		}
	}
	if fs.Changed("types") {
		types := make([]any, 0, len(f.types))
		for _, t := range f.types {
			if t = strings.TrimSpace(t); t != "" {
				types = append(types, canonicalType(t))
			}
		}
		try(set("filter.includedEventTypes", types))
	}
	if fs.Changed("subject-begins-with") {
		try(set("filter.subjectBeginsWith", f.beginsWith))
	}
	if fs.Changed("subject-ends-with") {
		try(set("filter.subjectEndsWith", f.endsWith))
	}
	if fs.Changed("subject-case-sensitive") {
		try(set("filter.isSubjectCaseSensitive", f.caseSensitive))
	}
	if fs.Changed("filter-arrays") {
		try(set("filter.enableAdvancedFilteringOnArrays", f.arrays))
	}
	if f.clearFilters && fs.Changed("filter") {
		try(errors.New("--clear-filters and --filter: give one (--filter replaces the filters anyway)"))
	}
	if f.clearFilters {
		try(set("filter.advancedFilters", []any{}))
	}
	if fs.Changed("filter") {
		afs := make([]any, 0, len(f.filters))
		for _, s := range f.filters {
			af, err := parseFilterFlag(s)
			try(err)
			afs = append(afs, af)
		}
		try(set("filter.advancedFilters", afs))
	}
	positive := func(name string, v int) bool {
		if fs.Changed(name) && v < 1 {
			try(fmt.Errorf("--%s %d: must be at least 1", name, v))
			return false
		}
		return fs.Changed(name)
	}
	if positive("max-attempts", f.maxAttempts) {
		try(set("retryPolicy.maxDeliveryAttempts", f.maxAttempts))
	}
	if fs.Changed("ttl") {
		if f.ttl < time.Minute || f.ttl%time.Minute != 0 {
			try(fmt.Errorf("--ttl %s: give whole minutes, at least 1m (e.g. 90m, 24h)", f.ttl))
		} else {
			try(set("retryPolicy.eventTimeToLiveInMinutes", int(f.ttl/time.Minute)))
		}
	}
	if positive("batch", f.batch) {
		try(set("destination.properties.maxEventsPerBatch", f.batch))
	}
	if positive("batch-kb", f.batchKB) {
		try(set("destination.properties.preferredBatchSizeInKilobytes", f.batchKB))
	}
	if fs.Changed("suppress-renewals") {
		try(set("tether.suppressRenewals", f.suppress))
	}
	if fs.Changed("renewal-grace") {
		if f.grace < time.Second || f.grace%time.Second != 0 {
			try(fmt.Errorf("--renewal-grace %s: give whole seconds, at least 1s (e.g. 90s, 2m)", f.grace))
		} else {
			try(set("tether.renewalGraceSeconds", int(f.grace/time.Second)))
		}
		if s, _ := getPath(def, "tether.suppressRenewals").(bool); !s {
			try(errors.New("--renewal-grace applies to --suppress-renewals, which the subscription does not have"))
		}
	}
	if fs.Changed("no-deadletter") {
		t := events.DeadLetterTether
		if f.noDeadLetter {
			t = events.DeadLetterNone
		}
		try(set("deadLetterDestination", map[string]any{"endpointType": t}))
	}
	return errors.Join(errs...)
}

// applyDestination sets the destination flags in def. A kind flag
// (--endpoint, --stream, --command, --email) sets the kind; choosing
// another kind than def has starts its properties afresh, since each kind
// has its own. The kind's option flags set their members.
// set and try are apply's: set a member by path, collect an error.
func (f *subFlags) applyDestination(fs *pflag.FlagSet, def map[string]any, set func(string, any) error, try func(error)) {
	var kinds []string
	for flag := range destinationFlags {
		if fs.Changed(flag) {
			kinds = append(kinds, "--"+flag)
		}
	}
	if len(kinds) > 1 {
		sort.Strings(kinds)
		try(fmt.Errorf("%s: a subscription has one destination; give one of them", strings.Join(kinds, ", ")))
		return
	}
	if len(kinds) == 1 {
		kind := destinationFlags[strings.TrimPrefix(kinds[0], "--")]
		cur, _ := getPath(def, "destination.endpointType").(string)
		if k, _ := events.ParseEndpointType(cur); k == "" && cur == "" {
			cur = events.EndpointWebHook
		} else if k != "" {
			cur = k
		}
		if cur != kind {
			try(set("destination", map[string]any{"endpointType": kind, "properties": map[string]any{}}))
		} else {
			try(set("destination.endpointType", kind))
		}
	}
	if fs.Changed("endpoint") {
		try(set("destination.properties.endpointUrl", f.endpoint))
	}
	if fs.Changed("stream") && !f.stream {
		try(errors.New("--stream=false: choose another destination with --endpoint, --command or --email instead"))
	}
	str := func(flag, member, v string) {
		if fs.Changed(flag) {
			try(set("destination.properties."+member, v))
		}
	}
	str("stream-name", "streamName", f.streamName)
	str("stream-subject-prefix", "subjectPrefix", f.streamPrefix)
	if fs.Changed("stream-retention") {
		if f.streamRetention < time.Hour || f.streamRetention%time.Hour != 0 {
			try(fmt.Errorf("--stream-retention %s: give whole hours, at least 1h (e.g. 24h, 720h)", f.streamRetention))
		} else {
			try(set("destination.properties.retentionInHours", int64(f.streamRetention/time.Hour)))
		}
	}
	for flag, m := range map[string]struct {
		member string
		v      int64
	}{"stream-max-msgs": {"maxMessages", f.streamMaxMsgs}, "stream-max-bytes": {"maxBytes", f.streamMaxBytes},
		"stream-max-per-subject": {"maxMessagesPerSubject", f.streamMaxPerSubject}} {
		if fs.Changed(flag) {
			try(set("destination.properties."+m.member, m.v))
		}
	}
	if fs.Changed("command") {
		argv, err := splitWords(f.command)
		switch {
		case err != nil:
			try(fmt.Errorf("--command %q: %w", f.command, err))
		case len(argv) == 0:
			try(errors.New("--command: give the program and its arguments"))
		default:
			words := make([]any, len(argv))
			for i, a := range argv {
				words[i] = a
			}
			try(set("destination.properties.command", words))
		}
	}
	seconds := func(flag, member string, d, min time.Duration) {
		if !fs.Changed(flag) {
			return
		}
		if d < min || d%time.Second != 0 {
			try(fmt.Errorf("--%s %s: give whole seconds, at least %s", flag, d, min))
			return
		}
		try(set("destination.properties."+member, int64(d/time.Second)))
	}
	seconds("command-timeout", "timeoutInSeconds", f.commandTimeout, time.Second)
	seconds("email-digest", "digestWindowInSeconds", f.emailDigest, 0)
	if fs.Changed("command-concurrency") {
		try(set("destination.properties.maxConcurrency", f.commandConcurrency))
	}
	if fs.Changed("email") {
		to := make([]any, 0, len(f.email))
		for _, a := range f.email {
			if a = strings.TrimSpace(a); a != "" {
				to = append(to, a)
			}
		}
		try(set("destination.properties.to", to))
	}
	if fs.Changed("email-rate") {
		try(set("destination.properties.maxMailsPerRecipientPerHour", f.emailRate))
	}
}

// splitWords splits a command line as a POSIX shell would, without
// expansions: words separated by blanks; '…' keeps everything literally;
// "…" keeps everything but \ \" \$ \` escapes; a backslash outside
// quotes escapes the next character.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unclosed single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unclosed double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("backslash at the end")
			}
			i++
			if s[i] != '\n' { // a backslash-newline joins lines
				cur.WriteByte(s[i])
				inWord = true
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// parseSchemaFlag accepts eventgrid / cloudevents and the schema names.
func parseSchemaFlag(s string) (events.Schema, error) {
	switch strings.ToLower(s) {
	case "eventgrid", "event-grid", "eg":
		return events.EventGridSchema, nil
	case "cloudevents", "cloudevent", "ce":
		return events.CloudEventSchemaV1_0, nil
	}
	if v, ok := events.ParseSchema(s); ok {
		return v, nil
	}
	return "", fmt.Errorf("--schema %q: use eventgrid or cloudevents", s)
}

// canonicalType turns DeviceConnected (any case) into
// Microsoft.Devices.DeviceConnected; "All" and unknown names are passed on
// for the hub to judge.
func canonicalType(s string) string {
	if strings.EqualFold(s, string(events.AllEventTypes)) {
		return string(events.AllEventTypes)
	}
	full := s
	if !strings.Contains(s, ".") {
		full = "Microsoft.Devices." + s
	}
	if t, ok := events.ParseEventType(full); ok {
		return string(t)
	}
	return s
}

// parseFilterFlag reads 'KEY OPERATOR [VALUES]' into an advanced filter.
// VALUES is a JSON array or value, or: for range operators, LOW,HIGH pairs
// separated by spaces; for the other list operators, values separated by
// commas (and/or spaces); for single-value operators, one value. Numbers
// and booleans are converted for the operators that take them; anything
// that does not convert is sent as written, so the hub names the problem.
func parseFilterFlag(s string) (map[string]any, error) {
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return nil, fmt.Errorf("--filter %q: want 'KEY OPERATOR [VALUES]', e.g. 'data.tether.reason StringIn client,network'", s)
	}
	key, opName := fields[0], fields[1]
	op, known := events.ParseOperator(opName)
	if !known {
		op = events.Operator(opName)
	}
	af := map[string]any{"key": key, "operatorType": string(op)}
	rest := strings.TrimSpace(s[strings.Index(s, opName)+len(opName):])
	if rest == "" {
		return af, nil
	}
	single := false
	switch op {
	case events.NumberLessThan, events.NumberGreaterThan, events.NumberLessThanOrEquals, events.NumberGreaterThanOrEquals, events.BoolEquals:
		single = true
	case events.IsNullOrUndefined, events.IsNotNull:
		return nil, fmt.Errorf("--filter %q: %s takes no values", s, op)
	}
	if strings.HasPrefix(rest, "[") || strings.HasPrefix(rest, "\"") || (single && strings.HasPrefix(rest, "{")) {
		var v any
		if err := json.Unmarshal([]byte(rest), &v); err != nil {
			return nil, fmt.Errorf("--filter %q: the values are not valid JSON: %v", s, err)
		}
		if single {
			af["value"] = v
		} else {
			af["values"] = v
		}
		return af, nil
	}
	scalar := func(v string) any {
		switch {
		case strings.HasPrefix(string(op), "Number"):
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				return n
			}
		case op == events.BoolEquals:
			if b, err := strconv.ParseBool(v); err == nil {
				return b
			}
		}
		return v
	}
	switch {
	case single:
		if len(strings.Fields(rest)) != 1 {
			return nil, fmt.Errorf("--filter %q: %s takes one value", s, op)
		}
		af["value"] = scalar(rest)
	case op == events.NumberInRange || op == events.NumberNotInRange:
		var ranges []any
		for _, pair := range strings.Fields(rest) {
			lo, hi, ok := strings.Cut(pair, ",")
			if !ok {
				return nil, fmt.Errorf("--filter %q: range %q: want LOW,HIGH", s, pair)
			}
			ranges = append(ranges, []any{scalar(lo), scalar(hi)})
		}
		af["values"] = ranges
	default:
		var vals []any
		for _, v := range strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			if strings.HasPrefix(string(op), "String") {
				vals = append(vals, v)
			} else {
				vals = append(vals, scalar(v))
			}
		}
		af["values"] = vals
	}
	return af, nil
}

// setPath sets a member of nested JSON objects by dot path, creating the
// objects on the way.
func setPath(m map[string]any, path string, v any) error {
	parts := strings.Split(path, ".")
	for i, p := range parts[:len(parts)-1] {
		next, ok := m[p]
		if !ok || next == nil {
			n := map[string]any{}
			m[p] = n
			m = n
			continue
		}
		nm, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("the definition's %s is not an object", strings.Join(parts[:i+1], "."))
		}
		m = nm
	}
	m[parts[len(parts)-1]] = v
	return nil
}

// getPath reads a member by dot path (nil if missing).
func getPath(m map[string]any, path string) any {
	parts := strings.Split(path, ".")
	var cur any = m
	for _, p := range parts {
		o, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = o[p]
	}
	return cur
}

// readDefinition reads a definition file (or standard input for "-") as a
// JSON object.
func readDefinition(cmd *cobra.Command, file string) (map[string]any, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4<<20))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var def map[string]any
	if err := dec.Decode(&def); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", file, err)
	}
	if def == nil {
		return nil, fmt.Errorf("%s: not a JSON object", file)
	}
	return def, nil
}

// InvalidSubscriptionError is a 400 from the hub for a subscription
// definition (or another definition: What names it), with every problem
// it found.
type InvalidSubscriptionError struct {
	What    string // default "subscription"
	Message string
	Details []events.FieldError
}

func (e *InvalidSubscriptionError) Error() string {
	what := e.What
	if what == "" {
		what = "subscription"
	}
	if len(e.Details) == 0 {
		return "the hub refused the " + what + ": " + e.Message
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the hub refused the %s (%d problem%s):", what, len(e.Details), map[bool]string{true: "", false: "s"}[len(e.Details) == 1])
	for _, d := range e.Details {
		b.WriteString("\n  ")
		if d.Field != "" {
			b.WriteString(d.Field + ": ")
		}
		b.WriteString(d.Message)
	}
	return b.String()
}

// subCall is apiClient.do that also returns the response headers, and
// turns a 400 with field errors into an *InvalidSubscriptionError.
func subCall(ctx context.Context, c *apiClient, method, path string, body, out any, headers map[string]string) (http.Header, error) {
	resp, err := c.send(ctx, method, path, body, headers)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var inv api.InvalidError
		if resp.StatusCode == http.StatusBadRequest && json.Unmarshal(data, &inv) == nil && inv.Error.Details != nil {
			return nil, &InvalidSubscriptionError{Message: inv.Error.Message, Details: inv.Error.Details}
		}
		return nil, &APIError{Status: resp.StatusCode, Message: errorMessage(data)}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("decoding the hub's answer: %w", err)
		}
	}
	return resp.Header, nil
}

func subPath(name string) string { return "/api/v1/subscriptions/" + url.PathEscape(name) }

func newSubCreateCmd() *cobra.Command {
	var f subFlags
	cmd := &cobra.Command{
		Use:   "create NAME (--endpoint URL | --stream | --command 'PROG ARGS' | --email ADDR,…) [flags]",
		Short: "Create a subscription and validate its destination",
		Example: `  tether sub create ops-alerts --endpoint https://ops.example.com/hook \
      --types DeviceDisconnected --filter 'data.tether.reason StringIn keep-alive,network' \
      --suppress-renewals --renewal-grace 2m
  tether sub create audit --endpoint https://audit.example.com/ce --schema cloudevents --types All --batch 100
  tether sub create fleet-log --stream --types All --stream-retention 720h
  tether sub create restart-gw --command 'restart-gateway.sh --site plant1' --types DeviceDisconnected --command-timeout 2m
  tether sub create critical-down --email oncall@example.com --types DeviceDisconnected \
      --subject-begins-with devices/critical- --suppress-renewals --email-digest 5m
  tether sub create -f sub.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(); err != nil {
				return err
			}
			def := map[string]any{}
			if f.file != "" {
				var err error
				if def, err = readDefinition(cmd, f.file); err != nil {
					return err
				}
			}
			if len(args) == 1 {
				if n, ok := def["name"].(string); ok && n != "" && !strings.EqualFold(n, args[0]) {
					return fmt.Errorf("the name %q differs from the name in %s, %q", args[0], f.file, n)
				}
				def["name"] = args[0]
			} else if _, ok := def["name"]; !ok {
				return fmt.Errorf("%s takes the subscription name (or -f with a file that has one)", cmd.CommandPath())
			}
			if err := f.apply(cmd, def); err != nil {
				return err
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			var out events.Subscription
			h, err := subCall(cmd.Context(), c, http.MethodPost, "/api/v1/subscriptions", def, &out, nil)
			if err != nil {
				return err
			}
			return printSubscription(cmd, out, h.Get("ETag"))
		},
	}
	f.add(cmd, false)
	return cmd
}

func newSubListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List subscriptions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			var list api.SubscriptionList
			if _, err := subCall(cmd.Context(), c, http.MethodGet, "/api/v1/subscriptions", nil, &list, nil); err != nil {
				return err
			}
			if list.Subscriptions == nil {
				list.Subscriptions = []events.Subscription{}
			}
			w := cmd.OutOrStdout()
			if clientFlags.output == "json" {
				return printJSON(w, list.Subscriptions)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tSCHEMA\tEVENT TYPES\tKIND\tDESTINATION")
			for _, s := range list.Subscriptions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.ProvisioningState, shortSchema(s.EventDeliverySchema), typesText(s.Filter.IncludedEventTypes),
					s.Destination.Kind(), s.Destination.Target())
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(list.Subscriptions) == 0 {
				_, err = fmt.Fprintln(w, "(no subscriptions)")
			}
			return err
		},
	}
}

func newSubShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a subscription, its state, and what its delivery has done",
		Long: `Show a subscription's definition and state, then (unless -o json, which
prints the definition as the API serves it) its delivery since the hub
started: delivered, retrying, dead-lettered, failed attempts, the last
error, and the last few attempts ('tether sub log' lists more).`,
		Args: deviceArgs(1, "the subscription name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			var s events.Subscription
			h, err := subCall(cmd.Context(), c, http.MethodGet, subPath(args[0]), nil, &s, nil)
			if err != nil {
				return err
			}
			if err := printSubscription(cmd, s, h.Get("ETag")); err != nil || clientFlags.output == "json" {
				return err
			}
			var st api.SubscriptionStatus
			if _, err := subCall(cmd.Context(), c, http.MethodGet, subPath(args[0])+"/status?deliveries=5", nil, &st, nil); err != nil {
				return fmt.Errorf("the delivery figures: %w", err)
			}
			return printDelivery(cmd.OutOrStdout(), st)
		},
	}
}

func newSubUpdateCmd() *cobra.Command {
	var f subFlags
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a subscription (a new endpoint or schema is validated again)",
		Long: `Change the options given as flags and keep the others. -f replaces the
whole definition with the file's (then the flags apply). --types and
--filter replace the event types and the advanced filters. A subscription
whose validation failed is validated again by any update.`,
		Example: `  tether sub update ops-alerts --max-attempts 10 --ttl 60m
  tether sub update ops-alerts --suppress-renewals=false
  tether sub update ops-alerts --endpoint https://new.example.com/hook`,
		Args: deviceArgs(1, "the subscription name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(); err != nil {
				return err
			}
			if !f.changed(cmd) {
				return errors.New("nothing to update: give -f or the flags of the options to change (see --help)")
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			var def map[string]any
			h, err := subCall(cmd.Context(), c, http.MethodGet, subPath(args[0]), nil, &def, nil)
			if err != nil {
				return err
			}
			etag := h.Get("ETag")
			name, _ := def["name"].(string)
			if f.file != "" {
				if def, err = readDefinition(cmd, f.file); err != nil {
					return err
				}
				if n, ok := def["name"].(string); ok && n != "" && !strings.EqualFold(n, args[0]) {
					return fmt.Errorf("%s names subscription %q, not %q (a subscription cannot be renamed)", f.file, n, args[0])
				}
				if _, ok := def["name"]; !ok {
					def["name"] = name
				}
			}
			delete(def, "provisioningState")
			delete(def, "validation")
			if err := f.apply(cmd, def); err != nil {
				return err
			}
			// Conditional on the ETag just read, so a concurrent change is
			// reported instead of overwritten.
			var hdr map[string]string
			if etag != "" {
				hdr = map[string]string{"If-Match": etag}
			}
			var out events.Subscription
			h, err = subCall(cmd.Context(), c, http.MethodPut, subPath(args[0]), def, &out, hdr)
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed {
				return fmt.Errorf("subscription %s changed while it was being updated; run the command again (%w)", args[0], err)
			}
			if err != nil {
				return err
			}
			return printSubscription(cmd, out, h.Get("ETag"))
		},
	}
	f.add(cmd, true)
	return cmd
}

func newSubDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a subscription (its delivery stops; its dead letters go)",
		Args:  deviceArgs(1, "the subscription name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := outputClient()
			if err != nil {
				return err
			}
			if _, err := subCall(cmd.Context(), c, http.MethodDelete, subPath(args[0]), nil, nil, nil); err != nil {
				return err
			}
			if clientFlags.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{"name": args[0], "deleted": true})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Deleted subscription %s\n", args[0])
			return err
		},
	}
}

// deadLetterRow reads a dead letter in either schema: encoding/json
// matches member names without regard to case, so deadLetterReason and
// deadletterreason both land here; eventType/eventTime are Event Grid's,
// type/time CloudEvents'.
type deadLetterRow struct {
	ID                      string `json:"id"`
	EventType               string `json:"eventType"`
	Type                    string `json:"type"`
	Subject                 string `json:"subject"`
	DeadLetterReason        string `json:"deadLetterReason"`
	DeliveryAttempts        int    `json:"deliveryAttempts"`
	LastDeliveryOutcome     string `json:"lastDeliveryOutcome"`
	LastHTTPStatusCode      int    `json:"lastHttpStatusCode"`
	LastError               string `json:"lastError"`
	LastDeliveryAttemptTime string `json:"lastDeliveryAttemptTime"`
}

func newSubDeadLettersCmd() *cobra.Command {
	var replay, all bool
	var limit int
	cmd := &cobra.Command{
		Use:   "deadletters NAME [--replay (--all | ID…)]",
		Short: "List a subscription's dead letters, or deliver them again",
		Long: `List the events whose delivery to the subscription ended without success
(attempts or time to live exhausted, or a status that is not retried: 400,
401, 403, 404, 413), oldest first, with why. -o json prints them as Event
Grid writes dead-lettered events, in the subscription's schema.

--replay delivers the named dead letters (by event id) or --all of them
again, from their first attempt, and removes them from the list.`,
		Example: `  tether sub deadletters ops-alerts
  tether sub deadletters ops-alerts --replay --all
  tether sub deadletters ops-alerts --replay 7f928ea3-a090-524d-9170-21363caf319f`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(); err != nil {
				return err
			}
			name, ids := args[0], args[1:]
			switch {
			case !replay && (all || len(ids) > 0):
				return errors.New("--all and event ids are for --replay; to list, give only the subscription name")
			case replay && all && len(ids) > 0:
				return errors.New("--replay: give --all or event ids, not both")
			case replay && !all && len(ids) == 0:
				return errors.New("--replay: give the event ids of the dead letters to replay, or --all")
			case limit < 1:
				return fmt.Errorf("--limit %d: must be at least 1", limit)
			}
			c, err := newAPIClient()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if replay {
				var res api.ReplayResult
				body := api.ReplayRequest{IDs: ids, All: all}
				if _, err := subCall(cmd.Context(), c, http.MethodPost, subPath(name)+"/deadletters/replay", body, &res, nil); err != nil {
					return err
				}
				if clientFlags.output == "json" {
					return printJSON(w, res)
				}
				fmt.Fprintf(w, "Replayed %d dead letter%s of %s\n", res.Replayed, map[bool]string{true: "", false: "s"}[res.Replayed == 1], name)
				if len(res.NotFound) > 0 {
					return fmt.Errorf("not dead letters of %s: %s", name, strings.Join(res.NotFound, ", "))
				}
				return nil
			}
			var list api.DeadLetterList
			path := fmt.Sprintf("%s/deadletters?limit=%d", subPath(name), limit)
			if _, err := subCall(cmd.Context(), c, http.MethodGet, path, nil, &list, nil); err != nil {
				return err
			}
			if list.DeadLetters == nil {
				list.DeadLetters = []json.RawMessage{}
			}
			if clientFlags.output == "json" {
				return printJSON(w, list.DeadLetters)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tSUBJECT\tREASON\tATTEMPTS\tLAST OUTCOME\tLAST ATTEMPT")
			for _, raw := range list.DeadLetters {
				var r deadLetterRow
				if err := json.Unmarshal(raw, &r); err != nil {
					return fmt.Errorf("the hub sent a dead letter the client cannot read: %w", err)
				}
				outcome := r.LastDeliveryOutcome
				if r.LastHTTPStatusCode != 0 {
					outcome += fmt.Sprintf(" (%d)", r.LastHTTPStatusCode)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, api.ShortTypeName(firstNonEmpty(r.EventType, r.Type)), r.Subject,
					r.DeadLetterReason, r.DeliveryAttempts, dash(outcome), dash(r.LastDeliveryAttemptTime))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(list.DeadLetters) == 0 {
				_, err = fmt.Fprintf(w, "(no dead letters)\n")
			} else if len(list.DeadLetters) == limit {
				fmt.Fprintf(cmd.ErrOrStderr(), "tether: showing the first %d; --limit shows more\n", limit)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&replay, "replay", false, "deliver dead letters again: the event ids given, or --all")
	cmd.Flags().BoolVar(&all, "all", false, "with --replay: every dead letter of the subscription")
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many")
	return cmd
}

// printSubscription prints a subscription: its JSON as the API serves it,
// or a key/value table followed by what to do about a pending or failed
// validation.
func printSubscription(cmd *cobra.Command, s events.Subscription, etag string) error {
	w := cmd.OutOrStdout()
	if clientFlags.output == "json" {
		return printJSON(w, s)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	p := s.Destination.Properties
	f := s.Filter
	row("Name", s.Name)
	row("State", string(s.ProvisioningState))
	row("Destination", s.Destination.Kind()+": "+s.Destination.Target())
	for _, kv := range destinationRows(s.Destination) {
		row(kv[0], kv[1])
	}
	row("Schema", string(s.EventDeliverySchema))
	row("Event types", typesText(f.IncludedEventTypes))
	row("Subject begins with", dash(f.SubjectBeginsWith))
	row("Subject ends with", dash(f.SubjectEndsWith))
	if f.SubjectBeginsWith != "" || f.SubjectEndsWith != "" {
		row("Subject case", map[bool]string{true: "sensitive", false: "ignored"}[f.IsSubjectCaseSensitive])
	}
	if len(f.AdvancedFilters) == 0 {
		row("Advanced filters", "-")
	}
	for i, af := range f.AdvancedFilters {
		k := ""
		if i == 0 {
			k = "Advanced filters"
		}
		fmt.Fprintf(tw, "%s\t%s\n", map[bool]string{true: k + ":", false: ""}[k != ""], filterText(af))
	}
	if len(f.AdvancedFilters) > 0 && f.EnableAdvancedFilteringOnArrays {
		row("Filters look into arrays", "yes")
	}
	row("Max delivery attempts", strconv.Itoa(s.RetryPolicy.MaxDeliveryAttempts))
	row("Event time to live", (time.Duration(s.RetryPolicy.EventTimeToLiveInMinutes) * time.Minute).String())
	if s.Destination.Kind() != events.EndpointEmail {
		row("Batch", fmt.Sprintf("at most %d event(s), preferred %d KB", p.MaxEventsPerBatch, p.PreferredBatchSizeInKilobytes))
	}
	row("Dead letters", map[bool]string{true: "kept by the hub", false: "dropped"}[s.DeadLettering()])
	if s.Tether.SuppressRenewals {
		row("Token renewals", fmt.Sprintf("suppressed (grace %s)", time.Duration(s.Tether.RenewalGraceSeconds)*time.Second))
	} else {
		row("Token renewals", "delivered")
	}
	row("Validation", validationText(s))
	if etag != "" {
		row("ETag", etag)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch s.ProvisioningState {
	case events.AwaitingManualAction:
		how := "someone must open the validationUrl sent to the endpoint"
		if s.EventDeliverySchema == events.CloudEventSchemaV1_0 {
			how = "the endpoint must call the WebHook-Request-Callback URL it was sent"
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "tether: the endpoint did not validate itself; %s before the window closes, or nothing is delivered\n", how)
	case events.Failed:
		what := "endpoint failed validation"
		if s.Destination.Kind() != events.EndpointWebHook {
			what = "destination failed its check"
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "tether: the %s; nothing is delivered. Fix it, then run 'tether sub update %s' with any change to check again\n", what, s.Name)
	}
	return nil
}

// destinationRows are the options of a destination beyond its target.
func destinationRows(d events.Destination) [][2]string {
	p := d.Properties
	limit := func(v int64, unit string) string {
		if v <= 0 {
			return "no limit"
		}
		return fmt.Sprintf("%d %s", v, unit)
	}
	switch d.Kind() {
	case events.EndpointStream:
		return [][2]string{
			{"Subjects", p.SubjectPrefix + ".<device>.<connected|disconnected|created|deleted|telemetry>"},
			{"Retention", fmt.Sprintf("%s; at most %s, %s, %s per subject", time.Duration(p.RetentionInHours)*time.Hour,
				limit(p.MaxMessages, "events"), limit(p.MaxBytes, "bytes"), limit(p.MaxMessagesPerSubject, "events"))},
		}
	case events.EndpointCommand:
		return [][2]string{{"Command", fmt.Sprintf("timeout %s, at most %d at once", time.Duration(p.TimeoutInSeconds)*time.Second, p.MaxConcurrency)}}
	case events.EndpointEmail:
		mode := "a mail per event"
		if p.DigestWindowInSeconds > 0 {
			mode = "a digest every " + (time.Duration(p.DigestWindowInSeconds) * time.Second).String()
		}
		return [][2]string{{"Mail", fmt.Sprintf("%s; at most %d mails per recipient an hour", mode, p.MaxMailsPerRecipientPerHour)}}
	}
	return nil
}

// printDelivery prints the figures of a subscription's delivery and its
// last attempts.
func printDelivery(w io.Writer, st api.SubscriptionStatus) error {
	d := st.Delivery
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	fmt.Fprintln(tw, "")
	switch {
	case !d.Running:
		row("Delivery", "not running on the hub (yet)")
	case !d.Active:
		row("Delivery", "paused until the destination is validated; events are kept")
	case d.Recovering:
		row("Delivery", "recovering the events a previous run left unacknowledged")
	default:
		row("Delivery", "active")
	}
	last := ""
	if !d.LastDeliveryTime.IsZero() {
		last = " (last at " + at(d.LastDeliveryTime) + ")"
	}
	row("Delivered", strconv.FormatUint(d.Delivered, 10)+last)
	row("Retrying", strconv.FormatInt(d.Retrying, 10))
	row("Dead-lettered", strconv.FormatUint(d.DeadLettered, 10))
	if d.Dropped > 0 {
		row("Dropped", strconv.FormatUint(d.Dropped, 10))
	}
	row("Failed attempts", strconv.FormatUint(d.FailedAttempts, 10))
	row("Filtered / suppressed", fmt.Sprintf("%d / %d of %d received", d.Filtered, d.Suppressed, d.Received))
	row("Queued", fmt.Sprintf("%d (%d deliveries in flight, %d disconnects held)", d.Queued, d.InFlight, d.Held))
	if d.LastError != "" {
		row("Last error", at(d.LastErrorTime)+": "+d.LastError)
	} else {
		row("Last error", "-")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Deliveries) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nLast deliveries (newest first; 'tether sub log' shows more):")
	return printAttempts(w, st.Deliveries)
}

// printAttempts prints delivery log entries as a table.
func printAttempts(w io.Writer, as []events.DeliveryAttempt) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tATTEMPT\tEVENTS\tDEVICES\tOUTCOME\tTOOK\tDETAIL")
	for _, a := range as {
		outcome := "delivered"
		switch {
		case a.Aborted:
			outcome = "stopped"
		case !a.OK:
			outcome = a.Outcome
			if a.Final {
				outcome += " (final)"
			}
		}
		detail := a.Error
		if detail == "" {
			detail = a.Output
		}
		detail = strings.Join(strings.Fields(detail), " ")
		if len(detail) > 120 {
			detail = detail[:120] + "…"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", a.Time.UTC().Format("2006-01-02T15:04:05Z"), a.Attempt, a.Events,
			strings.Join(a.Devices, ","), outcome, time.Duration(a.Duration*float64(time.Second)).Round(time.Millisecond), dash(detail))
	}
	return tw.Flush()
}

func newSubLogCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "log NAME",
		Short: "List a subscription's last delivery attempts, with what each destination said",
		Long: `List the last delivery attempts of a subscription, newest first: when,
which devices, the outcome and what the destination said (a command's
output, the mail server's or endpoint's answer). The hub keeps the last 200
attempts per subscription in memory, since it started. -o json prints the
figures of 'tether sub show' and every attempt in full.`,
		Args: deviceArgs(1, "the subscription name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: must be at least 1", limit)
			}
			c, err := outputClient()
			if err != nil {
				return err
			}
			var st api.SubscriptionStatus
			if _, err := subCall(cmd.Context(), c, http.MethodGet, fmt.Sprintf("%s/status?deliveries=%d", subPath(args[0]), limit), nil, &st, nil); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if clientFlags.output == "json" {
				return printJSON(w, st)
			}
			if len(st.Deliveries) == 0 {
				_, err := fmt.Fprintln(w, "(no delivery attempts since the hub started)")
				return err
			}
			return printAttempts(w, st.Deliveries)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "list at most this many (the hub keeps 200)")
	return cmd
}

func validationText(s events.Subscription) string {
	v := s.Validation
	if v == nil {
		return "-"
	}
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case v.Error != "":
		return fmt.Sprintf("%s failed at %s: %s", v.Method, at(v.StartedAt), v.Error)
	case !v.ValidatedAt.IsZero():
		how := ""
		if v.Manual {
			how = " (manually)"
		}
		return fmt.Sprintf("%s, validated at %s%s", v.Method, at(v.ValidatedAt), how)
	case !v.ExpiresAt.IsZero():
		return fmt.Sprintf("%s, awaiting manual validation until %s", v.Method, at(v.ExpiresAt))
	}
	return fmt.Sprintf("%s, started at %s", v.Method, at(v.StartedAt))
}

// filterText renders an advanced filter as the --filter flag takes it,
// with the values as JSON.
func filterText(af events.AdvancedFilter) string {
	s := af.Key + " " + string(af.OperatorType)
	for _, v := range []any{af.Value, af.Values} {
		if v != nil {
			b, _ := json.Marshal(v)
			s += " " + string(b)
		}
	}
	return s
}

func typesText(ts []events.EventType) string {
	if len(ts) == 0 {
		return "All"
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ShortTypeName(string(t))
	}
	return strings.Join(out, ",")
}

func shortSchema(s events.Schema) string {
	if s == events.CloudEventSchemaV1_0 {
		return "cloudevents"
	}
	return "eventgrid"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
