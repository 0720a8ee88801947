package connlog_test

import (
	"testing"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/registry"
)

func TestFromChange(t *testing.T) {
	reason := "compromised"
	cases := []struct {
		op     registry.Op
		device registry.Device
		wantOp string
		props  string
	}{
		{registry.OpCreated, registry.Device{DeviceID: "d1", GenerationID: "638000000000000001", ETag: "MQ==", Status: registry.Enabled},
			"create", `{"maskedIpAddress":null,"deviceId":"d1","caller":"iothubowner","status":"enabled","generationId":"638000000000000001","etag":"MQ=="}`},
		{registry.OpUpdated, registry.Device{DeviceID: "d1", GenerationID: "638000000000000001", ETag: "Mg==", Status: registry.Disabled, StatusReason: &reason},
			"update", `{"maskedIpAddress":null,"deviceId":"d1","caller":"iothubowner","status":"disabled","statusReason":"compromised","generationId":"638000000000000001","etag":"Mg=="}`},
		{registry.OpDeleted, registry.Device{DeviceID: "d1"},
			"delete", `{"maskedIpAddress":null,"deviceId":"d1","caller":"iothubowner"}`},
		{"purged", registry.Device{},
			"purged", `{"maskedIpAddress":null,"deviceId":"d1","caller":"iothubowner"}`},
	}
	for _, tc := range cases {
		t.Run(string(tc.op), func(t *testing.T) {
			c := registry.Change{ID: "chg-" + string(tc.op), Op: tc.op, Time: t0, Hub: "myhub.azure-devices.net",
				DeviceID: "d1", Device: tc.device, Caller: "iothubowner"}
			r := connlog.FromChange(res, c)
			want := connlog.Record{
				ItemID:        connlog.ItemID(connlog.CategoryDeviceIdentityOperations, c.ID, 0, c.Time),
				TimeGenerated: t0, Category: "DeviceIdentityOperations", OperationName: tc.wantOp,
				Level: "Information", Properties: tc.props,
				Location: "westeurope", ResourceID: resourceID, SubscriptionID: res.SubscriptionID,
				ResourceGroup: "IOT-RG", Resource: "MYHUB", ResourceProvider: "MICROSOFT.DEVICES",
				ResourceType: "IOTHUBS", Type: "AzureDiagnostics", SourceSystem: "Azure",
				TenantID: connlog.DefaultTenantID, CorrelationID: c.ID, DeviceID: "d1",
			}
			if r != want {
				t.Errorf("record:\n got %+v\nwant %+v", r, want)
			}
		})
	}
}
