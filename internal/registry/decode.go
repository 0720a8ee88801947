package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// deviceInput is the writable part of the device JSON. Read-only fields
// (generationId, etag, connectionState, the times, cloudToDeviceMessageCount)
// are left out on purpose: the service SDK sends back whatever it got,
// merged over its defaults (cloudToDeviceMessageCount "0" as a string, null
// keys, dates with or without "Z"), and IoT Hub ignores them.
type deviceInput struct {
	DeviceID       string  `json:"deviceId"`
	Status         string  `json:"status"`
	StatusReason   *string `json:"statusReason"`
	Authentication *struct {
		Type         string `json:"type"`
		SymmetricKey *struct {
			PrimaryKey   string `json:"primaryKey"`
			SecondaryKey string `json:"secondaryKey"`
		} `json:"symmetricKey"`
		X509Thumbprint *struct {
			PrimaryThumbprint   *string `json:"primaryThumbprint"`
			SecondaryThumbprint *string `json:"secondaryThumbprint"`
		} `json:"x509Thumbprint"`
	} `json:"authentication"`
	Capabilities *struct {
		IoTEdge bool `json:"iotEdge"`
	} `json:"capabilities"`
}

// DecodeDevice reads a device JSON body as sent to PUT /devices/{id}. It
// keeps the writable fields, ignores read-only and unknown ones, and returns
// an *Error (ArgumentInvalid) naming the offending field for anything that
// is not a JSON object of the right shape. Values are checked by
// Registry.Create and Replace, not here.
func DecodeDevice(data []byte) (Device, error) {
	var d Device
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return d, invalid("the request body is empty: send the device as a JSON object")
	}
	if trimmed[0] != '{' {
		return d, invalid("the device must be a JSON object")
	}
	var in deviceInput
	if err := json.Unmarshal(trimmed, &in); err != nil {
		return d, jsonError(err)
	}
	d.DeviceID = in.DeviceID
	d.Status = Status(in.Status)
	d.StatusReason = in.StatusReason
	if a := in.Authentication; a != nil {
		d.Authentication.Type = a.Type
		if k := a.SymmetricKey; k != nil {
			d.Authentication.SymmetricKey = SymmetricKey{PrimaryKey: k.PrimaryKey, SecondaryKey: k.SecondaryKey}
		}
		if t := a.X509Thumbprint; t != nil {
			d.Authentication.X509Thumbprint = X509Thumbprint{PrimaryThumbprint: t.PrimaryThumbprint, SecondaryThumbprint: t.SecondaryThumbprint}
		}
	}
	if c := in.Capabilities; c != nil {
		d.Capabilities.IoTEdge = c.IoTEdge
	}
	return d, nil
}

// jsonError turns an encoding/json error into a message for the caller.
func jsonError(err error) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalid("invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the device"
		}
		return invalid("%s: expected %s, got a JSON %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	}
	return invalid("invalid device JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "struct", "ptr":
		return "an object"
	}
	return fmt.Sprintf("a %s", goKind)
}
