package registry

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
)

// Bulk registry operations as the service SDKs send them
// (Registry.addDevices / updateDevices / removeDevices: POST /devices with
// up to 100 ExportImportDevice entries). Each entry succeeds or fails on
// its own; one failure does not undo the others, as on IoT Hub.

// MaxBulkDevices is IoT Hub's limit of devices per bulk call.
const MaxBulkDevices = 100

// Import modes of an ExportImportDevice entry (IoT Hub's names; matched
// case-insensitively).
const (
	ModeCreate                    = "create"
	ModeCreateOrUpdate            = "createOrUpdate"
	ModeUpdate                    = "update"
	ModeUpdateIfMatchETag         = "updateIfMatchETag"
	ModeDelete                    = "delete"
	ModeDeleteIfMatchETag         = "deleteIfMatchETag"
	ModeCreateOrUpdateIfMatchETag = "createOrUpdateIfMatchETag"
)

var bulkModes = []string{ModeCreate, ModeCreateOrUpdate, ModeCreateOrUpdateIfMatchETag, ModeUpdate, ModeUpdateIfMatchETag, ModeDelete, ModeDeleteIfMatchETag}

// BulkOp is one entry: the device (with its etag for the IfMatchETag
// modes) and what to do with it.
type BulkOp struct {
	Mode   string
	Device Device
	ETag   string
}

// BulkResult is IoT Hub's BulkRegistryOperationResult.
type BulkResult struct {
	IsSuccessful bool        `json:"isSuccessful"`
	Errors       []BulkError `json:"errors"`
	Warnings     []BulkError `json:"warnings"`
}

// BulkError says why one entry failed: IoT Hub's numeric error code and
// a message.
type BulkError struct {
	DeviceID    string `json:"deviceId"`
	ErrorCode   int    `json:"errorCode"`
	ErrorStatus string `json:"errorStatus"`
}

// DecodeBulk reads a bulk request body: a JSON array of 1 to
// MaxBulkDevices ExportImportDevice objects ({"id", "importMode", "eTag",
// and the device fields}). A malformed body is an *Error for the whole
// call; per-entry problems (an unknown mode, no id) come back from Bulk.
func DecodeBulk(data []byte) ([]BulkOp, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		if len(strings.TrimSpace(string(data))) > 0 && strings.TrimSpace(string(data))[0] != '[' {
			return nil, invalid("a bulk registry call takes a JSON array of devices, each with \"id\" and \"importMode\"")
		}
		return nil, jsonError(err)
	}
	if len(raw) == 0 || len(raw) > MaxBulkDevices {
		return nil, invalid("a bulk registry call takes 1 to %d devices; this one has %d", MaxBulkDevices, len(raw))
	}
	ops := make([]BulkOp, len(raw))
	for i, r := range raw {
		var head struct {
			ID         string `json:"id"`
			ImportMode string `json:"importMode"`
			ETag       string `json:"eTag"`
		}
		if err := json.Unmarshal(r, &head); err != nil {
			return nil, invalid("device %d of the array: %s", i, jsonError(err).Message)
		}
		d, err := DecodeDevice(r)
		if err != nil {
			var re *Error
			if errors.As(err, &re) {
				return nil, invalid("device %d of the array: %s", i, re.Message)
			}
			return nil, err
		}
		if d.DeviceID == "" {
			d.DeviceID = head.ID
		}
		ops[i] = BulkOp{Mode: head.ImportMode, Device: d, ETag: head.ETag}
	}
	return ops, nil
}

// Bulk applies each entry in order and reports the ones that failed.
// Errors that are the hub's (a store failure) are reported per entry as
// 500001, like the callers' mistakes, so one bad moment does not hide
// which entries did go through.
func (r *Registry) Bulk(ctx context.Context, ops []BulkOp, caller string) BulkResult {
	res := BulkResult{IsSuccessful: true, Errors: []BulkError{}, Warnings: []BulkError{}}
	for _, op := range ops {
		if err := r.bulkOne(ctx, op, caller); err != nil {
			res.IsSuccessful = false
			res.Errors = append(res.Errors, bulkError(op.Device.DeviceID, err))
		}
	}
	return res
}

func (r *Registry) bulkOne(ctx context.Context, op BulkOp, caller string) error {
	if op.Device.DeviceID == "" {
		return invalid("the entry has no id")
	}
	mode := ""
	for _, m := range bulkModes {
		if strings.EqualFold(op.Mode, m) {
			mode = m
		}
	}
	etag := op.ETag
	if etag == "" {
		etag = op.Device.ETag
	}
	switch mode {
	case ModeCreate:
		_, err := r.Create(ctx, op.Device, caller)
		return err
	case ModeCreateOrUpdate, ModeCreateOrUpdateIfMatchETag:
		ifMatch := "*"
		if mode == ModeCreateOrUpdateIfMatchETag && etag != "" {
			ifMatch = etag
		}
		_, err := r.Replace(ctx, op.Device, ifMatch, caller)
		if errors.Is(err, ErrNotFound) {
			_, err = r.Create(ctx, op.Device, caller)
		}
		return err
	case ModeUpdate:
		_, err := r.Replace(ctx, op.Device, "*", caller)
		return err
	case ModeUpdateIfMatchETag:
		if etag == "" {
			return invalid("importMode %s needs the device's eTag", mode)
		}
		_, err := r.Replace(ctx, op.Device, etag, caller)
		return err
	case ModeDelete:
		return r.Delete(ctx, op.Device.DeviceID, "*", caller)
	case ModeDeleteIfMatchETag:
		if etag == "" {
			return invalid("importMode %s needs the device's eTag", mode)
		}
		return r.Delete(ctx, op.Device.DeviceID, etag, caller)
	}
	return invalid("importMode %q is not one of %s", op.Mode, strings.Join(bulkModes, ", "))
}

// bulkError is an entry's failure with IoT Hub's numeric error code.
func bulkError(id string, err error) BulkError {
	code := 500001
	msg := "the hub failed to store the change: " + err.Error()
	var re *Error
	if errors.As(err, &re) {
		msg = re.Message
		switch {
		case errors.Is(err, ErrNotFound):
			code = 404001 // DeviceNotFound
		case errors.Is(err, ErrExists):
			code = 409001 // DeviceAlreadyExists
		case errors.Is(err, ErrPreconditionFailed):
			code = 412002 // InvalidEtag
		case errors.Is(err, ErrInvalid):
			code = 400004 // ArgumentInvalid
		case errors.Is(err, ErrUnauthorized):
			code = 401002
		}
	}
	return BulkError{DeviceID: id, ErrorCode: code, ErrorStatus: msg}
}
