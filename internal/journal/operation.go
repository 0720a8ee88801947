package journal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// The resource-log categories of IoT Hub's twin, method and query
// operations, and Tether's Administrative: an Operation belongs to one of
// them, and its subject names it (tether.ops.<category>.<device>). connlog
// uses the same names.
const (
	CategoryD2CTwinOperations = "D2CTwinOperations" // a device reads its twin or patches its reported properties
	CategoryC2DTwinOperations = "C2DTwinOperations" // the back end reads, updates or replaces a twin
	CategoryTwinQueries       = "TwinQueries"       // the back end queries twins
	CategoryDirectMethods     = "DirectMethods"     // the back end invokes a method on a device
	// CategoryAdministrative is Tether's: a change to what the hub records
	// or where it sends data (diagnostic settings, event subscriptions,
	// alert rules and action groups). IoT Hub's resource-log categories
	// have none (its Configurations category is about Automatic Device
	// Management's device configurations); Azure records these changes in
	// the Activity Log's Administrative category, whose name and ARM-style
	// operation names Tether borrows.
	CategoryAdministrative = "Administrative"
)

// OperationCategories lists the categories, in the order logs and
// settings present them.
var OperationCategories = []string{
	CategoryD2CTwinOperations, CategoryC2DTwinOperations, CategoryTwinQueries, CategoryDirectMethods,
	CategoryAdministrative,
}

// Operation names (IoT Hub's OperationName values; see OperationNames).
const (
	OpGet     = "get"     // D2CTwinOperations: the device GETs its twin
	OpUpdate  = "update"  // D2CTwinOperations: reported-properties patch; C2DTwinOperations: PATCH of tags/desired
	OpRead    = "read"    // C2DTwinOperations: GET of a twin
	OpReplace = "replace" // C2DTwinOperations: PUT of a twin
	OpQuery   = "query"   // TwinQueries
	OpSend    = "send"    // DirectMethods

	// Administrative: Azure Resource Manager's operation names of the
	// resources Tether's settings stand for (as the Activity Log names
	// them); a POST action ends in /action.
	OpDiagnosticSettingWrite  = "Microsoft.Insights/diagnosticSettings/write"
	OpDiagnosticSettingDelete = "Microsoft.Insights/diagnosticSettings/delete"
	OpEventSubscriptionWrite  = "Microsoft.EventGrid/eventSubscriptions/write"
	OpEventSubscriptionDelete = "Microsoft.EventGrid/eventSubscriptions/delete"
	OpAlertRulesReload        = "Microsoft.Insights/alertRules/reload/action"
)

// OperationNames are the operation names each category allows.
var OperationNames = map[string][]string{
	CategoryD2CTwinOperations: {OpGet, OpUpdate},
	CategoryC2DTwinOperations: {OpRead, OpUpdate, OpReplace},
	CategoryTwinQueries:       {OpQuery},
	CategoryDirectMethods:     {OpSend},
	CategoryAdministrative: {OpDiagnosticSettingWrite, OpDiagnosticSettingDelete, OpEventSubscriptionWrite,
		OpEventSubscriptionDelete, OpAlertRulesReload},
}

// Operation is one finished twin, method or query operation, as the hub
// journals it (stream TETHER_OPS) once its outcome is known: whoever
// handled it (broker for device-side twin requests, API for service-side
// calls) builds one and publishes OperationMsg(op). The log writer turns
// it into a resource-log record of its Category, the metrics collector
// into IoT Hub's operation metrics.
//
// Stored operations are read back by every later version: fields are only
// added, optional.
type Operation struct {
	// ID is unique per operation (NewOperationID): the Nats-Msg-Id that
	// stores a retried publish once, and the source of the record's
	// _ItemId and CorrelationId.
	ID string `json:"id"`
	// Time is when the operation finished (the record's TimeGenerated).
	Time time.Time `json:"time"`
	// Hub is the hub's host name ("myhub.azure-devices.net").
	Hub           string `json:"hub"`
	Category      string `json:"category"`      // one of OperationCategories
	OperationName string `json:"operationName"` // one of OperationNames[Category]
	// DeviceID is the device the operation was about; "" for twin
	// queries.
	DeviceID string `json:"deviceId,omitempty"`

	// Status is the status the caller was given: the HTTP status of the
	// hub's answer (200, 204, 400, 404, 412, 429, 504 …; for a device's
	// twin request the status of $iothub/twin/res/{status}), or, for a
	// direct method the device answered, the status the device answered
	// with (which the hub returns in its 200 body).
	Status int `json:"status"`
	// ErrorCode is IoT Hub's six-digit error code when the operation
	// failed ("404103"), "" when it succeeded. A direct method the device
	// answered succeeded, whatever status it answered with.
	ErrorCode string `json:"errorCode,omitempty"`
	// ErrorDescription is IoT Hub's name of the error ("DeviceNotOnline",
	// "GatewayTimeout"); left empty, the log names the codes it knows.
	ErrorDescription string `json:"errorDescription,omitempty"`
	// ErrorMessage is what the caller was told, for people reading the log.
	ErrorMessage string `json:"errorMessage,omitempty"`
	// DurationMs is how long the hub took, from the request to the answer.
	DurationMs int64 `json:"durationMs"`

	// Protocol ("MQTT", "MQTT-WS"), SDKVersion, MaskedIP and AuthType
	// (presence's: "sas", "policy:<name>") describe the device's session,
	// for device-side operations. For service-side operations SDKVersion
	// is the request's api-version, which is what IoT Hub logs there
	// ("2021-04-12").
	Protocol   string `json:"protocol,omitempty"`
	SDKVersion string `json:"sdkVersion,omitempty"`
	MaskedIP   string `json:"maskedIpAddress,omitempty"`
	AuthType   string `json:"authType,omitempty"`
	// Caller is the shared access policy that authorised a service-side
	// operation ("iothubowner", "service"); for an Administrative change
	// not made through the API, what made it ("SIGHUP").
	Caller string `json:"caller,omitempty"`

	// Target is what an Administrative operation changed: the diagnostic
	// setting's or subscription's name, the rules file. Before and After
	// are its definition before and after the change, as JSON (null: it
	// did not exist / no longer exists); a definition over
	// MaxDefinitionBytes is replaced by a note of its size and digest.
	Target string          `json:"target,omitempty"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`

	// MethodName is the direct method's name.
	MethodName string `json:"methodName,omitempty"`
	// RequestSize and ResponseSize are the bytes of the request body
	// (method payload, twin patch or replacement, query) and of the
	// answer's body (method response, twin document, query result page).
	RequestSize  int64 `json:"requestSize,omitempty"`
	ResponseSize int64 `json:"responseSize,omitempty"`

	// Query is a twin query's text; PageSize the page size it ran with
	// (the request's x-ms-max-item-count, else the hub's default);
	// Continuation whether the request continued an earlier page (carried
	// a continuation token); ResultCount how many items the page returned.
	Query        string `json:"query,omitempty"`
	PageSize     int    `json:"pageSize,omitempty"`
	Continuation bool   `json:"continuation,omitempty"`
	ResultCount  int    `json:"resultCount,omitempty"`
}

// Failed reports whether the operation failed (it has an error code).
func (op Operation) Failed() bool { return op.ErrorCode != "" }

// MaxDefinitionBytes bounds Operation.Before and After (Definition).
const MaxDefinitionBytes = 16 << 10

// Definition is v as an Operation's Before or After: its JSON, or, over
// MaxDefinitionBytes, {"truncated":true,"bytes":N,"sha256":"…"} so the
// log record stays small and the change can still be matched to the
// definition. nil v is JSON null.
func Definition(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	if len(b) <= MaxDefinitionBytes {
		return b
	}
	sum := sha256.Sum256(b)
	out, _ := json.Marshal(struct {
		Truncated bool   `json:"truncated"`
		Bytes     int    `json:"bytes"`
		SHA256    string `json:"sha256"`
	}{true, len(b), hex.EncodeToString(sum[:])})
	return out
}

// NewOperationID returns a fresh random id for an Operation.
func NewOperationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrInvalidOperation is wrapped by the error EncodeOperation returns for
// an Operation the journal does not take.
var ErrInvalidOperation = errors.New("journal: invalid operation")

// Validate reports every problem of op that would make its record wrong:
// no id or time, an unknown category or operation name, an error code
// that is not six digits, negative sizes or duration.
func (op Operation) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if op.ID == "" {
		bad("no id")
	}
	switch {
	case op.Time.IsZero():
		bad("no time")
	case op.Time.Before(minOpTime) || op.Time.After(maxOpTime):
		bad("time %s out of range (1678–2262)", op.Time)
	}
	if names, ok := OperationNames[op.Category]; !ok {
		bad("category %q: want one of %v", op.Category, OperationCategories)
	} else if !slices.Contains(names, op.OperationName) {
		bad("operation name %q of %s: want one of %v", op.OperationName, op.Category, names)
	}
	switch _, known := OperationNames[op.Category]; {
	case op.Category == CategoryAdministrative:
		if op.Target == "" {
			bad("no target (an Administrative operation names what it changed)")
		}
		for _, d := range []json.RawMessage{op.Before, op.After} {
			if len(d) > 0 && !json.Valid(d) {
				bad("before/after is not JSON")
			}
		}
	case known && op.DeviceID == "" && op.Category != CategoryTwinQueries:
		bad("no device id (%s operations are about a device)", op.Category)
	}
	if op.ErrorCode != "" && !sixDigits(op.ErrorCode) {
		bad("error code %q: want IoT Hub's six digits (\"404103\")", op.ErrorCode)
	}
	if op.ErrorCode == "" && op.ErrorDescription != "" {
		bad("error description %q without an error code", op.ErrorDescription)
	}
	if op.DurationMs < 0 || op.RequestSize < 0 || op.ResponseSize < 0 || op.PageSize < 0 || op.ResultCount < 0 {
		bad("negative duration, size or count")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w %s: %w", ErrInvalidOperation, op.ID, errors.Join(errs...))
	}
	return nil
}

// The times a log record can have (Unix nanoseconds).
var (
	minOpTime = time.Unix(0, math.MinInt64)
	maxOpTime = time.Unix(0, math.MaxInt64)
)

func sixDigits(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// OperationMsg is op as a message for the Publisher: its subject, its id
// as Nats-Msg-Id and its JSON, encoded (and validated) on the publisher's
// goroutine. An invalid op is not published: Done, if the caller sets it,
// gets the reason, and the publisher logs it.
func OperationMsg(op Operation) Msg {
	return Msg{
		Subject: OpsSubject(op.Category, op.DeviceID),
		ID:      op.ID,
		Encode:  func() ([]byte, error) { return EncodeOperation(op) },
	}
}

// EncodeOperation is the payload of op in TETHER_OPS: its JSON, keys as
// Operation's tags, after Validate.
func EncodeOperation(op Operation) ([]byte, error) {
	if err := op.Validate(); err != nil {
		return nil, err
	}
	op.Time = op.Time.UTC()
	b, err := json.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("journal: encoding operation %s: %w", op.ID, err)
	}
	return b, nil
}

// DecodeOperation reads a TETHER_OPS payload. It is an error (wrapping
// ErrMalformed) when the JSON is not an object of Operation's keys or
// lacks an id, a time or a category. Categories and operation names it
// does not know are returned as they are (a later version may add them):
// consumers skip what they do not know.
func DecodeOperation(data []byte) (Operation, error) {
	var op Operation
	if err := json.Unmarshal(data, &op); err != nil {
		return Operation{}, fmt.Errorf("%w: operation: %w", ErrMalformed, err)
	}
	switch {
	case op.ID == "":
		return Operation{}, fmt.Errorf("%w: operation without an id", ErrMalformed)
	case op.Time.IsZero():
		return Operation{}, fmt.Errorf("%w: operation %s without a time", ErrMalformed, op.ID)
	case op.Category == "":
		return Operation{}, fmt.Errorf("%w: operation %s without a category", ErrMalformed, op.ID)
	}
	return op, nil
}
