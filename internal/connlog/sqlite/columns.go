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

// sharedColumns are the columns whose values are the hub's (Resource
// stamps them): the same in nearly every record, so an INSERT whose rows
// all agree on them binds them once (insertSQL).
var sharedColumns = map[string]bool{
	connlog.ColLocation: true, connlog.ColResourceID: true, connlog.ColSubscriptionID: true,
	connlog.ColResourceGroup: true, connlog.ColResource: true, connlog.ColResourceProvider: true,
	connlog.ColResourceType: true, connlog.ColType: true, connlog.ColSourceSystem: true,
	connlog.ColTenantID: true,
}

// insertOrder lists the bindings (storedColumns indexes) in the order
// INSERTs name the columns: the shared ones first.
var insertOrder = func() []int {
	var shared, own []int
	for i, c := range storedColumns {
		if sharedColumns[c.Name] {
			shared = append(shared, i)
		} else {
			own = append(own, i)
		}
	}
	return append(shared, own...)
}()

// appendValues appends r's column values in insertOrder; with
// skipShared, only those of the columns that are not shared.
func appendValues(args []any, r *connlog.Record, skipShared bool) []any {
	order := insertOrder
	if skipShared {
		order = order[len(sharedColumns):]
	}
	for _, i := range order {
		args = append(args, bindings[i].value(r))
	}
	return args
}

// appendShared appends r's values of the shared columns, in insertOrder.
func appendShared(args []any, r *connlog.Record) []any {
	for _, i := range insertOrder[:len(sharedColumns)] {
		args = append(args, bindings[i].value(r))
	}
	return args
}

// sameShared reports whether every record has rs[0]'s shared values.
func sameShared(rs []connlog.Record) bool {
	a := &rs[0]
	for i := range rs[1:] {
		b := &rs[1+i]
		if a.Location != b.Location || a.ResourceID != b.ResourceID || a.SubscriptionID != b.SubscriptionID ||
			a.ResourceGroup != b.ResourceGroup || a.Resource != b.Resource || a.ResourceProvider != b.ResourceProvider ||
			a.ResourceType != b.ResourceType || a.Type != b.Type || a.SourceSystem != b.SourceSystem || a.TenantID != b.TenantID {
			return false
		}
	}
	return true
}

// scanDests are the scan destinations of s in storedColumns order.
func scanDests(s *scanRow) []any {
	d := make([]any, len(bindings))
	for i, b := range bindings {
		d[i] = b.dest(s)
	}
	return d
}
