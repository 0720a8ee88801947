package app

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tether-hub/tether/internal/broker"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/twin"
)

// twinWriteTimeout bounds a device's reported patch: the store write
// runs on the device's reader.
const twinWriteTimeout = 10 * time.Second

// deviceTwins serves the device side of twins for the broker: GETs from
// the registry's cache, reported patches through the registry's store.
// Each request becomes a D2CTwinOperations record.
type deviceTwins struct{ a *App }

func (d deviceTwins) Twin(dev broker.Requester) (int, []byte) {
	start := time.Now()
	status, body := http.StatusOK, []byte(nil)
	var err error
	if t, ok := d.a.registry.Twin(dev.DeviceID); ok {
		body = t.DeviceJSON()
	} else {
		err = registry.ErrNotFound
		status, body = http.StatusNotFound, deviceTwinError(err)
	}
	d.record(dev, journal.OpGet, start, status, 0, len(body), err)
	return status, body
}

func (d deviceTwins) PatchReported(dev broker.Requester, patch []byte) (int, int64, []byte) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), twinWriteTimeout)
	defer cancel()
	t, err := d.a.registry.UpdateTwin(ctx, dev.DeviceID, func(t *twin.Twin) ([]byte, error) {
		_, err := t.PatchReported(patch, time.Now())
		return nil, err
	})
	if err != nil {
		status, body := twinErrorStatus(err), deviceTwinError(err)
		if status >= 500 {
			d.a.log.Error("reported properties not stored", "device", dev.DeviceID, "err", err)
		}
		d.record(dev, journal.OpUpdate, start, status, len(patch), len(body), err)
		return status, 0, body
	}
	d.record(dev, journal.OpUpdate, start, http.StatusNoContent, len(patch), 0, nil)
	return http.StatusNoContent, t.Reported.Version, nil
}

func (d deviceTwins) record(dev broker.Requester, op string, start time.Time, status, reqSize, respSize int, err error) {
	rec := journal.Operation{
		Category: journal.CategoryD2CTwinOperations, OperationName: op, DeviceID: dev.DeviceID,
		Status: status, DurationMs: time.Since(start).Milliseconds(),
		Protocol: dev.Protocol, SDKVersion: dev.SDKVersion, MaskedIP: dev.MaskedIP, AuthType: dev.AuthType,
		RequestSize: int64(reqSize), ResponseSize: int64(respSize),
	}
	if err != nil {
		rec.ErrorCode, rec.ErrorMessage = twinErrorCode(err), err.Error()
	}
	_ = d.a.RecordOperation(rec)
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

// twinError is err as IoT Hub reports it: the twin's own error, or IoT
// Hub's for a missing device and a hub failure.
func twinError(err error) *twin.Error {
	var te *twin.Error
	switch {
	case errors.As(err, &te):
		return te
	case errors.Is(err, registry.ErrNotFound):
		return &twin.Error{Status: http.StatusNotFound, Code: "DeviceNotFound", Number: 404001, Message: "the device is not registered"}
	}
	return &twin.Error{Status: http.StatusInternalServerError, Code: "ServerError", Number: 500001, Message: "the hub could not store the change; retry"}
}

// twinErrorCode is the six-digit code of a twin operation's error.
func twinErrorCode(err error) string { return strconv.Itoa(twinError(err).Number) }

// deviceTwinError is the error body on $iothub/twin/res/{status}/.
func deviceTwinError(err error) []byte { return twinError(err).DeviceJSON("", time.Now()) }

// onTwinChange pushes a desired-properties change to the device, on the
// node it is live on.
func (a *App) onTwinChange(c registry.TwinChange) {
	if c.Desired != nil && a.broker != nil {
		a.pushDesiredAnywhere(c.DeviceID, c.DesiredVersion, c.Desired)
	}
}
