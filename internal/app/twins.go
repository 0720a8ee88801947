package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/twin"
)

// twinWriteTimeout bounds a device's reported patch: the store write
// runs on the device's reader.
const twinWriteTimeout = 10 * time.Second

// deviceTwins serves the device side of twins for the broker: GETs from
// the registry's cache, reported patches through the registry's store.
type deviceTwins struct{ a *App }

func (d deviceTwins) Twin(id string) (int, []byte) {
	t, ok := d.a.registry.Twin(id)
	if !ok {
		return http.StatusNotFound, deviceTwinError(registry.ErrNotFound)
	}
	return http.StatusOK, t.DeviceJSON()
}

func (d deviceTwins) PatchReported(id string, patch []byte) (int, int64, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), twinWriteTimeout)
	defer cancel()
	t, err := d.a.registry.UpdateTwin(ctx, id, func(t *twin.Twin) ([]byte, error) {
		_, err := t.PatchReported(patch, time.Now())
		return nil, err
	})
	if err != nil {
		if status, body := twinErrorStatus(err), deviceTwinError(err); status < 500 {
			return status, 0, body
		}
		d.a.log.Error("reported properties not stored", "device", id, "err", err)
		return http.StatusInternalServerError, 0, deviceTwinError(err)
	}
	return http.StatusNoContent, t.Reported.Version, nil
}

// twinErrorStatus is the status a twin operation's error answers with.
func twinErrorStatus(err error) int {
	var te *twin.Error
	switch {
	case errors.As(err, &te):
		return te.Status
	case errors.Is(err, registry.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// deviceTwinError is the error body on $iothub/twin/res/{status}/: the
// twin's own error, or IoT Hub's for a missing device and a hub failure.
func deviceTwinError(err error) []byte {
	var te *twin.Error
	switch {
	case errors.As(err, &te):
	case errors.Is(err, registry.ErrNotFound):
		te = &twin.Error{Status: http.StatusNotFound, Code: "DeviceNotFound", Number: 404001, Message: "the device is not registered"}
	default:
		te = &twin.Error{Status: http.StatusInternalServerError, Code: "ServerError", Number: 500001, Message: "the hub could not store the change; retry"}
	}
	return te.DeviceJSON("", time.Now())
}

// onTwinChange pushes a desired-properties change to the device.
func (a *App) onTwinChange(c registry.TwinChange) {
	if c.Desired != nil && a.broker != nil {
		a.broker.PushDesired(c.DeviceID, c.DesiredVersion, c.Desired)
	}
}
