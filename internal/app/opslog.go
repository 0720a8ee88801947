package app

import (
	"errors"
	"time"

	"github.com/tether-hub/tether/internal/journal"
)

// RecordOperation journals one finished twin, method or query operation
// (stream TETHER_OPS), from which the log writer makes its
// D2CTwinOperations, C2DTwinOperations, TwinQueries or DirectMethods
// record and the metrics collector its c2d.methods.*, d2c.twin.*,
// c2d.twin.* and twinQueries.* samples.
//
// HOOK for the twin, direct-method and twin-query features: call it once
// per operation, when its outcome is known (the answer sent, or the
// failure decided), from any goroutine. It fills what op leaves empty:
// ID (a fresh one), Time (now) and Hub (the hub's name). It returns at
// once (the journal's publisher stores op in the background) and never
// blocks the caller longer than a full publisher queue does; an op that
// would make a wrong record (journal.Operation.Validate) is refused with
// an error wrapping journal.ErrInvalidOperation and logged, and nothing
// is journalled. After Stop it returns journal.ErrClosed.
func (a *App) RecordOperation(op journal.Operation) error {
	if op.ID == "" {
		op.ID = journal.NewOperationID()
	}
	if op.Time.IsZero() {
		op.Time = time.Now().UTC()
	}
	if op.Hub == "" {
		op.Hub = a.cfg.HubName
	}
	if err := op.Validate(); err != nil {
		a.log.Error("operation not journalled", "category", op.Category, "operation", op.OperationName,
			"device", op.DeviceID, "err", err)
		return err
	}
	if a.publisher == nil {
		return errors.New("app: RecordOperation before Start")
	}
	if err := a.publisher.Publish(journal.OperationMsg(op)); err != nil {
		a.log.Warn("operation not journalled: journal closed", "category", op.Category, "device", op.DeviceID)
		return err
	}
	return nil
}
