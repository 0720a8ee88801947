package events

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ValidateOptions are the hub's policy for subscription definitions.
type ValidateOptions struct {
	// AllowHTTP accepts plain-http endpoints on any host. Without it, http
	// is accepted only for loopback hosts (localhost, 127.0.0.0/8, ::1),
	// which is what tests and receivers on the hub's own machine use;
	// everything else must be https, as Event Grid requires.
	AllowHTTP bool
	// Endpoints says which addresses webhook endpoints may have
	// (EndpointPolicy: never the hub's listeners, loopback only when
	// allowed). The zero value refuses loopback.
	Endpoints EndpointPolicy
	// Unavailable names the destination types this hub cannot deliver to,
	// with why (e.g. "Email": "no SMTP server: start the hub with
	// --smtp-addr"); subscriptions of those types are refused.
	Unavailable map[string]string
}

// Validate checks s with the default policy (ValidateOptions{}).
func (s Subscription) Validate() error { return s.ValidateWith(ValidateOptions{}) }

// ValidateWith checks s and returns a *ValidationError listing every
// problem, or nil. Zero numeric options count as unset (their default
// applies), so s need not have had ApplyDefaults.
func (s Subscription) ValidateWith(o ValidateOptions) error {
	var errs []FieldError
	fail := func(field, msg string) { errs = append(errs, FieldError{Field: field, Message: msg}) }

	if msg := checkName(s.Name); msg != "" {
		fail("name", msg)
	}
	s.Destination.check(fail, o)
	p := s.Destination.Properties
	checkRange(fail, "destination.properties.maxEventsPerBatch", p.MaxEventsPerBatch, 1, MaxMaxEventsPerBatch)
	checkRange(fail, "destination.properties.preferredBatchSizeInKilobytes", p.PreferredBatchSizeInKilobytes, 1, MaxPreferredBatchSizeKB)

	schema := EventGridSchema
	if s.EventDeliverySchema != "" {
		v, ok := ParseSchema(string(s.EventDeliverySchema))
		if !ok {
			fail("eventDeliverySchema", quote(string(s.EventDeliverySchema))+" is not supported: use EventGridSchema or CloudEventSchemaV1_0")
		}
		schema = v
	}
	checkRange(fail, "retryPolicy.maxDeliveryAttempts", s.RetryPolicy.MaxDeliveryAttempts, 1, MaxMaxDeliveryAttempts)
	checkRange(fail, "retryPolicy.eventTimeToLiveInMinutes", s.RetryPolicy.EventTimeToLiveInMinutes, 1, MaxEventTTLMinutes)
	if d := s.DeadLetterDestination; d != nil && d.EndpointType != "" &&
		!strings.EqualFold(d.EndpointType, DeadLetterTether) && !strings.EqualFold(d.EndpointType, DeadLetterNone) {
		fail("deadLetterDestination.endpointType", quote(d.EndpointType)+" is not supported: Tether keeps dead letters itself (\"Tether\", the default) or drops them (\"None\")")
	}
	checkRange(fail, "tether.renewalGraceSeconds", s.Tether.RenewalGraceSeconds, 1, MaxRenewalGraceSeconds)
	if st := s.ProvisioningState; st != "" && !knownState(st) {
		fail("provisioningState", "unknown state "+quote(string(st)))
	}
	errs = append(errs, s.Filter.check(schema)...)
	if len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

// checkName applies Event Grid's rule: 3–64 characters, letters, digits
// and hyphens.
func checkName(name string) string {
	if name == "" {
		return "required"
	}
	if n := len(name); n < MinNameLength || n > MaxNameLength {
		return "must be " + strconv.Itoa(MinNameLength) + "–" + strconv.Itoa(MaxNameLength) + " characters long (is " + strconv.Itoa(n) + ")"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "may hold only letters, digits and hyphens"
		}
	}
	return ""
}

func checkEndpoint(raw string, o ValidateOptions) string {
	if strings.TrimSpace(raw) == "" {
		return "required"
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "not a URL: " + err.Error()
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !o.AllowHTTP && !isLoopback(u.Hostname()) {
			return "must be https (plain http is accepted for loopback hosts only unless the hub allows it)"
		}
	default:
		return "must be an https URL"
	}
	if u.Host == "" || u.Hostname() == "" {
		return "has no host"
	}
	port := 443
	if strings.EqualFold(u.Scheme, "http") {
		port = 80
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return "has a bad port " + quote(p)
		}
		port = int(n)
	}
	if err := o.Endpoints.CheckHost(u.Hostname(), uint16(port)); err != nil {
		return err.Error()
	}
	if u.User != nil {
		return "must not hold credentials (user:password@); put a key in the query string"
	}
	if u.Fragment != "" {
		return "must not have a fragment (#…)"
	}
	return ""
}

func isLoopback(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// checkRange refuses v outside [lo, hi]; 0 means unset.
func checkRange(fail func(field, msg string), field string, v, lo, hi int) {
	if v != 0 && (v < lo || v > hi) {
		fail(field, "must be "+strconv.Itoa(lo)+"–"+strconv.Itoa(hi)+" (is "+strconv.Itoa(v)+")")
	}
}

func knownState(st ProvisioningState) bool {
	switch st {
	case Creating, Updating, Deleting, Succeeded, Canceled, Failed, AwaitingManualAction, Disabled:
		return true
	}
	return false
}

// check validates the filter for schema.
func (f Filter) check(schema Schema) []FieldError {
	var errs []FieldError
	for i, t := range f.IncludedEventTypes {
		if _, ok := ParseEventType(string(t)); ok {
			continue
		}
		if strings.EqualFold(string(t), string(AllEventTypes)) && len(f.IncludedEventTypes) == 1 {
			continue
		}
		errs = append(errs, FieldError{
			Field:   "filter.includedEventTypes[" + strconv.Itoa(i) + "]",
			Message: "unknown event type " + quote(string(t)) + ": use Microsoft.Devices.DeviceCreated, DeviceDeleted, DeviceConnected, DeviceDisconnected or DeviceTelemetry, Tether.Insights.MassDisconnect (or \"All\" alone)",
		})
	}
	if n := len(f.AdvancedFilters); n > MaxAdvancedFilters {
		errs = append(errs, FieldError{Field: "filter.advancedFilters", Message: "at most " + strconv.Itoa(MaxAdvancedFilters) + " filters (has " + strconv.Itoa(n) + ")"})
	}
	total := 0
	for i, a := range f.AdvancedFilters {
		_, n, e := compileFilter(schema, a, "filter.advancedFilters["+strconv.Itoa(i)+"]")
		errs = append(errs, e...)
		total += n
	}
	if total > MaxAdvancedFilterValues {
		errs = append(errs, FieldError{Field: "filter.advancedFilters", Message: "at most " + strconv.Itoa(MaxAdvancedFilterValues) + " values across all filters (has " + strconv.Itoa(total) + ")"})
	}
	return errs
}
