package sqlite

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

// binding ties a column to a Record field: value gives what Append binds,
// dest what Find scans into and set copies back.
type binding struct {
	value func(r *connlog.Record) any
	dest  func(s *scanRow) any
}

// scanRow receives one row; nullable and converted columns get their own
// slots.
type scanRow struct {
	rec      connlog.Record
	timeNano int64
	duration sql.NullInt64
}

func (s *scanRow) record() connlog.Record {
	r := s.rec
	r.TimeGenerated = time.Unix(0, s.timeNano).UTC()
	if s.duration.Valid {
		d := s.duration.Int64
		r.DurationMs = &d
	}
	return r
}

func str(f func(r *connlog.Record) *string) binding {
	return binding{
		value: func(r *connlog.Record) any { return *f(r) },
		dest:  func(s *scanRow) any { return f(&s.rec) },
	}
}

var bindingsByName = map[string]binding{
	connlog.ColItemID: str(func(r *connlog.Record) *string { return &r.ItemID }),
	connlog.ColTimeGenerated: {
		value: func(r *connlog.Record) any { return r.TimeGenerated.UnixNano() },
		dest:  func(s *scanRow) any { return &s.timeNano },
	},
	connlog.ColCategory:          str(func(r *connlog.Record) *string { return &r.Category }),
	connlog.ColOperationName:     str(func(r *connlog.Record) *string { return &r.OperationName }),
	connlog.ColLevel:             str(func(r *connlog.Record) *string { return &r.Level }),
	connlog.ColResultType:        str(func(r *connlog.Record) *string { return &r.ResultType }),
	connlog.ColResultDescription: str(func(r *connlog.Record) *string { return &r.ResultDescription }),
	connlog.ColDurationMs: {
		value: func(r *connlog.Record) any {
			if r.DurationMs == nil {
				return nil
			}
			return *r.DurationMs
		},
		dest: func(s *scanRow) any { return &s.duration },
	},
	connlog.ColProperties:       str(func(r *connlog.Record) *string { return &r.Properties }),
	connlog.ColLocation:         str(func(r *connlog.Record) *string { return &r.Location }),
	connlog.ColResourceID:       str(func(r *connlog.Record) *string { return &r.ResourceID }),
	connlog.ColSubscriptionID:   str(func(r *connlog.Record) *string { return &r.SubscriptionID }),
	connlog.ColResourceGroup:    str(func(r *connlog.Record) *string { return &r.ResourceGroup }),
	connlog.ColResource:         str(func(r *connlog.Record) *string { return &r.Resource }),
	connlog.ColResourceProvider: str(func(r *connlog.Record) *string { return &r.ResourceProvider }),
	connlog.ColResourceType:     str(func(r *connlog.Record) *string { return &r.ResourceType }),
	connlog.ColType:             str(func(r *connlog.Record) *string { return &r.Type }),
	connlog.ColSourceSystem:     str(func(r *connlog.Record) *string { return &r.SourceSystem }),
	connlog.ColTenantID:         str(func(r *connlog.Record) *string { return &r.TenantID }),
	connlog.ColCorrelationID:    str(func(r *connlog.Record) *string { return &r.CorrelationID }),
	connlog.ColCallerIPAddress:  str(func(r *connlog.Record) *string { return &r.CallerIPAddress }),
	connlog.ColDeviceID:         str(func(r *connlog.Record) *string { return &r.DeviceID }),
	connlog.ColProtocol:         str(func(r *connlog.Record) *string { return &r.Protocol }),
	connlog.ColSDKVersion:       str(func(r *connlog.Record) *string { return &r.SDKVersion }),
	connlog.ColSequenceNumber:   str(func(r *connlog.Record) *string { return &r.SequenceNumber }),
}

// bindings are bindingsByName in storedColumns order; building them
// panics at start-up if a column has none, so the two lists cannot drift.
var bindings = func() []binding {
	bs := make([]binding, len(storedColumns))
	for i, c := range storedColumns {
		b, ok := bindingsByName[c.Name]
		if !ok {
			panic(fmt.Sprintf("connlog/sqlite: no binding for column %s", c.Name))
		}
		bs[i] = b
	}
	return bs
}()

// appendValues appends r's column values in storedColumns order.
func appendValues(args []any, r *connlog.Record) []any {
	for _, b := range bindings {
		args = append(args, b.value(r))
	}
	return args
}

// scanDests are the scan destinations of s in storedColumns order.
func scanDests(s *scanRow) []any {
	d := make([]any, len(bindings))
	for i, b := range bindings {
		d[i] = b.dest(s)
	}
	return d
}
