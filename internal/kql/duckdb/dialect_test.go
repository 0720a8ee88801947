//go:build cgo

package duckdb_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	logduckdb "github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/kql"
	kqlduckdb "github.com/tether-hub/tether/internal/kql/duckdb"
)

// The seed's device query compiles to an equality on DeviceId that the
// dialect narrows by _DeviceKey; an equality on an extended column that
// only shares the name is not narrowed.
func TestNarrowDeviceID(t *testing.T) {
	key := `"_DeviceKey" = ` + strconv.FormatUint(uint64(logduckdb.DeviceKey("test-device")), 10)
	for q, want := range map[string]bool{
		`AzureDiagnostics
| where Category == "Connections"
| extend DeviceId = tostring(parse_json(properties_s).deviceId)
| where DeviceId == "test-device"`: true,
		`AzureDiagnostics | where "test-device" == DeviceId`:                                          true,
		`AzureDiagnostics | extend DeviceId = strcat(DeviceId, "") | where DeviceId == "test-device"`: false,
		`AzureDiagnostics | where DeviceId != "test-device"`:                                          false,
		`AzureDiagnostics | summarize n = count() by DeviceId | where DeviceId == "test-device"`:      false,
	} {
		c, err := kql.Compile(q, kql.AzureDiagnostics(), kqlduckdb.Dialect{}, kql.CompileOptions{Now: time.Now()})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if got := strings.Contains(c.SQL, key); got != want {
			t.Errorf("%s\ncompiled to\n%s\nnarrowed: %v, want %v", q, c.SQL, got, want)
		}
	}
}
