package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Status of a device identity.
type Status string

const (
	Enabled  Status = "enabled"
	Disabled Status = "disabled"
)

// Device is a device identity in the IoT Hub REST shape (api-version
// 2021-04-12). Connection fields are filled from presence when served;
// they are not stored.
type Device struct {
	DeviceID                   string         `json:"deviceId"`
	GenerationID               string         `json:"generationId"`
	ETag                       string         `json:"etag"`
	ConnectionState            string         `json:"connectionState"` // "Connected" | "Disconnected"
	Status                     Status         `json:"status"`
	StatusReason               *string        `json:"statusReason"`
	ConnectionStateUpdatedTime time.Time      `json:"connectionStateUpdatedTime"`
	StatusUpdatedTime          time.Time      `json:"statusUpdatedTime"`
	LastActivityTime           time.Time      `json:"lastActivityTime"`
	CloudToDeviceMessageCount  int            `json:"cloudToDeviceMessageCount"`
	Authentication             Authentication `json:"authentication"`
	Capabilities               Capabilities   `json:"capabilities"`
}

// Authentication of a device; Tether supports type "sas".
type Authentication struct {
	SymmetricKey   SymmetricKey   `json:"symmetricKey"`
	X509Thumbprint X509Thumbprint `json:"x509Thumbprint"`
	Type           string         `json:"type"`
}

// SymmetricKey holds the two base64 keys; either may sign device tokens.
type SymmetricKey struct {
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// X509Thumbprint is carried for shape compatibility only.
type X509Thumbprint struct {
	PrimaryThumbprint   *string `json:"primaryThumbprint"`
	SecondaryThumbprint *string `json:"secondaryThumbprint"`
}

// Capabilities of a device.
type Capabilities struct {
	IoTEdge bool `json:"iotEdge"`
}

// Op is a registry operation.
type Op string

const (
	OpCreated Op = "created"
	OpUpdated Op = "updated"
	OpDeleted Op = "deleted"
)

// Change is one registry write, handed to the OnChange hook after the store
// accepted it, and journalled on tether.registry.<device>.<op>
// (DeviceIdentityOperations log, DeviceCreated/DeviceDeleted events).
type Change struct {
	ID       string    `json:"id"` // unique per change
	Op       Op        `json:"op"`
	Time     time.Time `json:"time"`
	Hub      string    `json:"hub"`
	DeviceID string    `json:"deviceId"`
	// Device is the identity after the change (before it, for deletes),
	// with keys blanked: the journal never holds secrets.
	Device Device `json:"device"`
	// Caller is the policy that authorised the change ("iothubowner"…).
	Caller string `json:"caller,omitempty"`
	// Keys identify the device's keys after the change (before it, for
	// deletes) without revealing them, so a key rotation shows in the
	// journal that holds no keys. Nil in changes journalled before it
	// existed.
	Keys *KeyFingerprints `json:"keyFingerprints,omitempty"`
}

// KeyFingerprints are the first 4 bytes of SHA-256 of each symmetric key,
// in hex: enough to tell that a key changed, nothing to sign with.
type KeyFingerprints struct {
	Primary   string `json:"primary,omitempty"`
	Secondary string `json:"secondary,omitempty"`
}

// Fingerprints returns the fingerprints of k ("" for an empty key).
func Fingerprints(k SymmetricKey) KeyFingerprints {
	return KeyFingerprints{Primary: fingerprint(k.PrimaryKey), Secondary: fingerprint(k.SecondaryKey)}
}

func fingerprint(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:4])
}

// Clone returns a copy of d that shares no pointers with it.
func (d Device) Clone() Device {
	d.StatusReason = clonePtr(d.StatusReason)
	t := &d.Authentication.X509Thumbprint
	t.PrimaryThumbprint = clonePtr(t.PrimaryThumbprint)
	t.SecondaryThumbprint = clonePtr(t.SecondaryThumbprint)
	return d
}

func clonePtr(p *string) *string {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
