package interop

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/registry"
)

// TestTwinsAndMethodsSDK: the official device and service SDKs use twins,
// direct methods and device queries against Tether as they would against
// IoT Hub (twins.js lists the steps), including after a SAS token renewal
// (the SDK does not subscribe again on the new connection).
func TestTwinsAndMethodsSDK(t *testing.T) {
	t.Parallel()
	requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	a := startHub(ctx, t)

	suffix := strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	create := func(id string) string {
		d, err := a.Registry().Create(ctx, registry.Device{DeviceID: id}, "test")
		if err != nil {
			t.Fatal(err)
		}
		return d.Authentication.SymmetricKey.PrimaryKey
	}
	deviceID, offlineID := "interop-twin-"+suffix, "interop-offline-"+suffix
	key := create(deviceID)
	create(offlineID)
	var queryIDs []string
	for i := range 5 {
		id := fmt.Sprintf("interop-q%d-%s", i, suffix)
		create(id)
		queryIDs = append(queryIDs, id)
	}
	create("interop-not-in-group-" + suffix)

	s := startScript(ctx, t, "twins.js", map[string]string{
		"DEVICE_CONNECTION_STRING":  fmt.Sprintf("HostName=localhost;DeviceId=%s;SharedAccessKey=%s", deviceID, key),
		"SERVICE_CONNECTION_STRING": a.OwnerConnectionString(),
		"OFFLINE_DEVICE_ID":         offlineID,
		"QUERY_GROUP":               "g" + suffix,
		"QUERY_DEVICES":             strings.Join(queryIDs, ","),
		"MQTT_PORT":                 portOf(t, a.MQTTAddr()),
		"HTTPS_PORT":                portOf(t, a.HTTPSAddr()),
		"CA_FILE":                   a.CAFile(),
		"TOKEN_VALID_SECS":          strconv.Itoa(tokenValidSecs),
		"TOKEN_MARGIN_SECS":         strconv.Itoa(tokenMarginSecs),
		"STEP_TIMEOUT_SECS":         "20",
		"TOTAL_TIMEOUT_SECS":        "140",
	})
	steps := []string{"open", "device-get-twin", "device-reported", "service-get-twin", "desired-update",
		"stale-etag", "method-online", "method-timeout", "method-offline", "query", "after-renewal"}
	for _, want := range steps {
		e := s.next(ctx, t, "step "+want)
		if e.str("event") != "step" || e.str("step") != want {
			t.Fatalf("want step %s, got %v\n%s", want, e, s.diag())
		}
		t.Logf("step %s: %v", want, e)
	}
	if e := s.next(ctx, t, "done"); e.str("event") != "done" {
		t.Fatalf("want done, got %v", e)
	}
	s.wait(ctx, t)

	// The hub kept what the device reported and the service wrote.
	tw, ok := a.Registry().Twin(deviceID)
	if !ok {
		t.Fatal("the device's twin is gone")
	}
	if tw.Reported.Values["firmware"] != "1.2.3" || fmt.Sprint(tw.Desired.Values["interval"]) != "7" {
		t.Errorf("stored twin: reported %v desired %v", tw.Reported.Values, tw.Desired.Values)
	}
}
