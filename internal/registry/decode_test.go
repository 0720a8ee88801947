package registry_test

import (
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/registry"
)

// nodeSDKUpdate is the body azure-iothub 1.16.6 sends for
// registry.update(): the device it got from GET, merged over its defaults
// (azure-sdk-wire.md §6), with cloudToDeviceMessageCount as a string.
const nodeSDKUpdate = `{"deviceId":"dev1","generationId":"639000000000001234","etag":"Mg==","connectionState":"disconnected","status":"disabled","statusReason":null,"connectionStateUpdatedTime":"0001-01-01T00:00:00","statusUpdatedTime":"0001-01-01T00:00:00Z","lastActivityTime":"2026-03-01T11:59:00.1234567Z","cloudToDeviceMessageCount":"0","capabilities":{"iotEdge":false},"authentication":{"symmetricKey":{"primaryKey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","secondaryKey":null},"x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"type":"sas"},"deviceScope":"","parentScopes":[]}`

func TestDecodeDevice(t *testing.T) {
	d, err := registry.DecodeDevice([]byte(nodeSDKUpdate))
	if err != nil {
		t.Fatalf("DecodeDevice(Node SDK update): %v", err)
	}
	if d.DeviceID != "dev1" || d.Status != "disabled" || d.StatusReason != nil ||
		d.Authentication.SymmetricKey.PrimaryKey == "" || d.Authentication.SymmetricKey.SecondaryKey != "" ||
		d.GenerationID != "" || d.ETag != "" || d.ConnectionState != "" {
		t.Fatalf("decoded %+v", d)
	}

	bad := []struct{ body, msg string }{
		{``, "body is empty"},
		{`  `, "body is empty"},
		{`null`, "must be a JSON object"},
		{`[]`, "must be a JSON object"},
		{`{"deviceId":`, "invalid JSON at byte 12: unexpected end"},
		{`{"deviceId":"a",}`, "invalid JSON at byte"},
		{`{"deviceId":1}`, "deviceId: expected a string, got a JSON number"},
		{`{"status":true}`, "status: expected a string"},
		{`{"authentication":"sas"}`, "authentication: expected an object, got a JSON string"},
		{`{"authentication":{"symmetricKey":{"primaryKey":5}}}`, "authentication.symmetricKey.primaryKey: expected a string"},
		{`{"capabilities":{"iotEdge":"yes"}}`, "capabilities.iotEdge: expected true or false"},
		{`{"deviceId":"a"} {}`, "invalid"},
	}
	for _, tc := range bad {
		_, err := registry.DecodeDevice([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("DecodeDevice(%q) = %v, want error with %q", tc.body, err, tc.msg)
		}
	}
}
