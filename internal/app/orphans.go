package app

import (
	"context"
	"fmt"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// recordOrphans closes, in the journal, the sessions an earlier run left
// open: a hub killed with devices connected never wrote their disconnects,
// so subscribers and the log would see Connected followed by Connected.
// Each gets a DeviceDisconnected (reason hub-restart, 500001) before the
// broker accepts anyone.
func (a *App) recordOrphans(ctx context.Context) error {
	n := 0
	err := a.journal.LastConnState(ctx, func(data []byte) {
		ev, err := journal.DecodeConnectionEvent(data)
		if err != nil {
			a.log.Warn("cannot tell whether the last run left this session open", "err", err)
			return
		}
		if ev.Kind != presence.Connected {
			return
		}
		a.presence.Orphaned(ev)
		n++
	})
	if err != nil {
		return fmt.Errorf("closing sessions left open by the last run: %w", err)
	}
	if n > 0 {
		a.log.Warn("the last run stopped without closing sessions; recorded them as disconnected (hub-restart)", "sessions", n)
	}
	return nil
}
