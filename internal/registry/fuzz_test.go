package registry

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDeviceJSON feeds arbitrary bodies through what PUT /devices/{id}
// does with them: decode, then validate. Neither may panic; failures must be
// ArgumentInvalid; what passes must survive a JSON round trip unchanged.
func FuzzDeviceJSON(f *testing.F) {
	for _, s := range []string{
		`{"deviceId":"d","status":"enabled","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}}`,
		`{"deviceId":"dev1","etag":"Mg==","status":"Disabled","statusReason":"x","cloudToDeviceMessageCount":"0","authentication":{"symmetricKey":{"primaryKey":"AAECAwQFBgcICQoLDA0ODw==","secondaryKey":null},"x509Thumbprint":{"primaryThumbprint":null},"type":"sas"}}`,
		`{"deviceId":"a#b","authentication":{"type":"selfSigned","x509Thumbprint":{"primaryThumbprint":"AB"}}}`,
		`{"capabilities":{"iotEdge":true}}`,
		`[]`, `null`, `{"status":5}`, `{"deviceId":"\u00e9"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDevice(data)
		if err == nil {
			if d.DeviceID == "" {
				d.DeviceID = "from-path"
			}
			err = normalize(&d)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		d2, err := DecodeDevice(b)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		if err := normalize(&d2); err != nil {
			t.Fatalf("re-validating %s: %v", b, err)
		}
		b2, _ := json.Marshal(d2)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed the device:\n%s\n%s", b, b2)
		}
	})
}
