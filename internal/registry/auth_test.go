package registry_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

func TestAuthorize(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.reg.Policy("iothubowner")
	svc, _ := f.reg.Policy("service")
	dev, err := f.reg.Create(ctx, registry.Device{DeviceID: "dev1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(time.Hour)
	sign := func(sr, key, skn string, exp time.Time) string {
		tok, err := sas.Sign(sr, key, skn, exp)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name   string
		token  string
		need   registry.Rights
		policy string // want on success
		msg    string // substring of the error
	}{
		{"owner primary", sign(hub, owner.PrimaryKey, "iothubowner", exp), registry.RegistryWrite, "iothubowner", ""},
		{"owner secondary", sign(hub, owner.SecondaryKey, "iothubowner", exp), registry.RegistryRead | registry.ServiceConnect, "iothubowner", ""},
		{"sr hub/devices", sign(hub+"/devices", owner.PrimaryKey, "iothubowner", exp), registry.RegistryRead, "iothubowner", ""},
		{"sr upper case", sign(strings.ToUpper(hub), owner.PrimaryKey, "iothubowner", exp), registry.RegistryRead, "iothubowner", ""},
		{"sr trailing slash", sign(hub+"/", owner.PrimaryKey, "iothubowner", exp), registry.RegistryRead, "iothubowner", ""},
		{"service for ServiceConnect", sign(hub, svc.PrimaryKey, "service", exp), registry.ServiceConnect, "service", ""},
		{"service lacks write", sign(hub, svc.PrimaryKey, "service", exp), registry.RegistryWrite, "", "policy 'service' lacks RegistryWrite"},
		{"service lacks both", sign(hub, svc.PrimaryKey, "service", exp), registry.RegistryRead | registry.RegistryWrite, "", "lacks RegistryRead, RegistryWrite"},
		{"expired", sign(hub, owner.PrimaryKey, "iothubowner", t0), registry.RegistryRead, "", "SAS token expired at 2026-03-01T12:00:00Z"},
		{"wrong key", sign(hub, svc.PrimaryKey, "iothubowner", exp), registry.RegistryRead, "", "does not match either key of policy 'iothubowner'"},
		{"unknown policy", sign(hub, owner.PrimaryKey, "admin", exp), registry.RegistryRead, "", "no shared access policy named 'admin'"},
		{"device key", sign(sas.DeviceResource(hub, "dev1"), dev.Authentication.SymmetricKey.PrimaryKey, "", exp), registry.RegistryRead, "", "has no skn"},
		{"other hub", sign("other.example", owner.PrimaryKey, "iothubowner", exp), registry.RegistryRead, "", "the token is for 'other.example'"},
		{"hub prefix by character", sign(hub+"x", owner.PrimaryKey, "iothubowner", exp), registry.RegistryRead, "", "the token is for"},
		{"device-scoped sr", sign(hub+"/devices/dev1", owner.PrimaryKey, "iothubowner", exp), registry.RegistryRead, "", "the token is for"},
		{"empty", "", registry.RegistryRead, "", "no SharedAccessSignature token"},
		{"garbage", "Bearer abc", registry.RegistryRead, "", "malformed SAS token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.reg.Authorize(tc.token, tc.need, t0)
			if tc.msg == "" {
				if err != nil || got != tc.policy {
					t.Fatalf("Authorize = %q, %v; want %q", got, err, tc.policy)
				}
				return
			}
			var re *registry.Error
			if !errors.As(err, &re) || re.Status != http.StatusUnauthorized || re.Code != registry.CodeUnauthorized || !errors.Is(err, registry.ErrUnauthorized) {
				t.Fatalf("Authorize error %v, want a 401 IotHubUnauthorizedAccess", err)
			}
			if !strings.Contains(re.Message, tc.msg) {
				t.Fatalf("message %q lacks %q", re.Message, tc.msg)
			}
		})
	}
}
