package diag

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tether-hub/tether/internal/connlog"
)

// AllLogs stands for every category (Azure's category group "allLogs").
const AllLogs = "allLogs"

// Categories are the log categories a setting can route: every category
// the log writer writes (connlog.Categories).
var Categories = slices.Clone(connlog.Categories)

// Name rules (Azure allows more characters; Tether keeps to what names a
// JetStream consumer and a directory alike).
const (
	MinNameLength = 1
	MaxNameLength = 64
)

// Retention bounds, in days.
const (
	MaxWorkspaceRetentionDays = 730  // Log Analytics' interactive maximum
	MaxArchiveRetentionDays   = 3650 // ten years
	MaxStreamRetentionDays    = 365
)

// DefaultName is the setting that applies while none is stored.
const DefaultName = "default"

// Setting is a diagnostic setting: which log categories go to which
// destinations. At least one destination is set.
type Setting struct {
	Name string `json:"name"`
	// Categories routed: any of Categories (Connections,
	// DeviceIdentityOperations, D2CTwinOperations, C2DTwinOperations,
	// TwinQueries, DirectMethods), or allLogs (matched without regard to
	// case, stored as spelled here).
	Categories []string `json:"categories"`
	// Workspace is the embedded log store that `tether logs`, queries and
	// /api/v1/logs read.
	Workspace *Workspace `json:"workspace,omitempty"`
	// Archive is hourly JSON-lines files laid out like Azure's export to a
	// storage account.
	Archive *Archive `json:"archive,omitempty"`
	// NATS publishes each record as JSON on a subject.
	NATS *NATS `json:"nats,omitempty"`
	// BuiltIn marks the default setting that applies while no setting is
	// stored; it is never stored itself.
	BuiltIn bool `json:"builtIn,omitempty"`
}

// Workspace routes to the embedded log store.
type Workspace struct {
	// RetentionDays keeps records this many days; 0 uses the hub's
	// --log-retention. With several settings the workspace keeps the
	// longest of them.
	RetentionDays int `json:"retentionDays"`
}

// Archive routes to hourly files under the hub's archive directory:
//
//	<archive-dir>/<setting>/insights-logs-<category>/resourceId=/SUBSCRIPTIONS/<sub>/RESOURCEGROUPS/<rg>/
//	    PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/<HUB>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json
type Archive struct {
	// RetentionDays deletes hour files older than this many days; 0 keeps
	// them (Azure's meaning of 0).
	RetentionDays int `json:"retentionDays"`
}

// NATS routes to a subject: every record, as JSON in the storage shape, is
// one message with the record's _ItemId as Nats-Msg-Id.
type NATS struct {
	Subject string `json:"subject"`
	// RetentionDays > 0 keeps the messages in a JetStream stream
	// (TETHER_DIAG_<NAME>, MaxAge this many days) and publishes with
	// acknowledgements; 0 publishes them live only (core NATS).
	RetentionDays int `json:"retentionDays"`
}

// Key is the setting's name in lower case: names are unique without
// regard to case.
func (s Setting) Key() string { return strings.ToLower(s.Name) }

// Routes reports whether s routes category.
func (s Setting) Routes(category string) bool {
	for _, c := range s.Categories {
		if strings.EqualFold(c, AllLogs) || strings.EqualFold(c, category) {
			return true
		}
	}
	return false
}

// Default is the setting that applies while none is stored: every
// category to the workspace, with the hub's retention. It keeps Tether's
// behaviour from before diagnostic settings.
func Default() Setting {
	return Setting{Name: DefaultName, Categories: []string{AllLogs}, Workspace: &Workspace{}, BuiltIn: true}
}

// Sentinel errors.
var (
	// ErrInvalid is matched by every *ValidationError.
	ErrInvalid  = errors.New("invalid diagnostic setting")
	ErrNotFound = errors.New("diagnostic setting not found")
	ErrExists   = errors.New("diagnostic setting already exists")
	// ErrBuiltIn: the built-in default cannot be deleted (it applies
	// while no setting is stored; create another to replace it).
	ErrBuiltIn = errors.New("the built-in default setting applies while no setting is stored; create another setting to replace it")
)

// FieldError is one problem of a setting, at a JSON path such as
// "nats.subject".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// ValidationError lists every problem of a setting.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return ErrInvalid.Error() + ": " + strings.Join(msgs, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Validate checks s and reports every problem at once.
func (s Setting) Validate() error {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	if msg := checkName(s.Name); msg != "" {
		bad("name", "%s", msg)
	}
	if s.BuiltIn {
		bad("builtIn", "is set by the hub for its default setting only")
	}
	if len(s.Categories) == 0 {
		bad("categories", "at least one is required: %s or %s", strings.Join(Categories, ", "), AllLogs)
	}
	seen := map[string]bool{}
	for i, c := range s.Categories {
		known := strings.EqualFold(c, AllLogs) || slices.ContainsFunc(Categories, func(k string) bool { return strings.EqualFold(k, c) })
		switch {
		case !known:
			bad(fmt.Sprintf("categories[%d]", i), "unknown category %q; use %s or %s", c, strings.Join(Categories, ", "), AllLogs)
		case seen[strings.ToLower(c)]:
			bad(fmt.Sprintf("categories[%d]", i), "%q is listed twice", c)
		}
		seen[strings.ToLower(c)] = true
	}
	if s.Workspace == nil && s.Archive == nil && s.NATS == nil {
		bad("destinations", "at least one of workspace, archive and nats is required")
	}
	if w := s.Workspace; w != nil && (w.RetentionDays < 0 || w.RetentionDays > MaxWorkspaceRetentionDays) {
		bad("workspace.retentionDays", "must be 0 (the hub's --log-retention) to %d", MaxWorkspaceRetentionDays)
	}
	if a := s.Archive; a != nil && (a.RetentionDays < 0 || a.RetentionDays > MaxArchiveRetentionDays) {
		bad("archive.retentionDays", "must be 0 (keep) to %d", MaxArchiveRetentionDays)
	}
	if n := s.NATS; n != nil {
		if msg := checkSubject(n.Subject); msg != "" {
			bad("nats.subject", "%s", msg)
		}
		if n.RetentionDays < 0 || n.RetentionDays > MaxStreamRetentionDays {
			bad("nats.retentionDays", "must be 0 (publish live only) to %d", MaxStreamRetentionDays)
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

func checkName(name string) string {
	if n := len(name); n < MinNameLength || n > MaxNameLength {
		return fmt.Sprintf("must be %d–%d characters long (is %d)", MinNameLength, MaxNameLength, n)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "may hold only letters, digits, hyphens and underscores"
		}
	}
	return ""
}

// checkSubject accepts a literal NATS subject (no wildcards) outside the
// hub's own: the journal's streams capture tether.conn.>, tether.registry.>
// and the like, and the system's $ subjects are not for records.
func checkSubject(subject string) string {
	if subject == "" {
		return "required (e.g. iothub.logs)"
	}
	if len(subject) > 255 {
		return "must be at most 255 characters long"
	}
	for _, tok := range strings.Split(subject, ".") {
		switch {
		case tok == "":
			return "has an empty token (leading, trailing or doubled '.')"
		case tok == "*" || tok == ">":
			return "must not hold wildcards: records are published to one subject"
		case strings.ContainsAny(tok, " \t\r\n*>"):
			return fmt.Sprintf("token %q holds a space or wildcard character", tok)
		}
	}
	switch lower := strings.ToLower(subject); {
	case strings.HasPrefix(subject, "$"):
		return "must not be a system ($) subject"
	case lower == "tether" || strings.HasPrefix(lower, "tether.") && !strings.HasPrefix(lower, "tether.logs."):
		return "the tether. subjects are the hub's own journal; use another, or one under tether.logs."
	}
	return ""
}
