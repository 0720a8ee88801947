package app

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// eventTail serves `tether events tail`: live connection and lifecycle
// events from the journal subjects, as Event Grid-schema JSON. It is a
// plain NATS subscription: what happens while nobody listens is not
// replayed (subscriptions are for that).
type eventTail struct {
	nc  *nats.Conn
	res events.Resource
}

func (t *eventTail) Tail(ctx context.Context, deviceID string, types []string, fn func(json.RawMessage)) error {
	dev := "*"
	if deviceID != "" {
		dev = journal.EncodeToken(deviceID)
	}
	want := func(e events.Event) bool {
		return len(types) == 0 || slices.ContainsFunc(types, func(s string) bool {
			return s == string(e.Type) || "Microsoft.Devices."+s == string(e.Type)
		})
	}
	emit := func(e events.Event) {
		if !want(e) {
			return
		}
		if b, err := json.Marshal(e.EventGrid()); err == nil {
			fn(b)
		}
	}
	handle := func(m *nats.Msg) {
		if ce, err := journal.DecodeConnectionEvent(m.Data); err == nil {
			if e, ok := events.FromConnection(t.res, ce, events.Marks{TokenRenewal: ce.TokenRenewal}); ok {
				emit(e)
			}
		}
	}
	handleChange := func(m *nats.Msg) {
		var c registry.Change
		if json.Unmarshal(m.Data, &c) == nil {
			if e, ok := events.FromChange(t.res, c); ok {
				emit(e)
			}
		}
	}
	s1, err := t.nc.Subscribe(journal.ConnPrefix+dev+".*", handle)
	if err != nil {
		return err
	}
	defer s1.Unsubscribe()
	s2, err := t.nc.Subscribe(journal.RegistryPrefix+dev+".*", handleChange)
	if err != nil {
		return err
	}
	defer s2.Unsubscribe()
	<-ctx.Done()
	return ctx.Err()
}
