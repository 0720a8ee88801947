package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
	"github.com/tether-hub/tether/internal/sas"
	"github.com/tether-hub/tether/internal/twin"
)

// BenchmarkDeviceQuery100k is issue 11's query target: "which devices are
// disconnected right now?" over 100,000 devices, through the HTTP handler
// (auth, parse, scan, first page of 100 rendered), target ≤ 100 ms. One
// device in ten is connected; one in five has a written twin (tags and
// reported properties), the rest have IoT Hub's empty twin.
func BenchmarkDeviceQuery100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	reg, err := registry.New(ctx, memstore.New(), registry.Options{HubName: hub,
		LiveState: func(id string) (bool, time.Time, time.Time) {
			return strings.HasSuffix(id, "0"), time.Time{}, time.Time{}
		}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("dev-%06d", i)
		if _, err := reg.Create(ctx, registry.Device{DeviceID: id}, "bench"); err != nil {
			b.Fatal(err)
		}
		if i%5 == 0 {
			_, err := reg.UpdateTwin(ctx, id, func(t *twin.Twin) ([]byte, error) {
				if _, err := t.PatchReported([]byte(`{"fw":"1.2.3","temp":21.5,"site":{"building":"b1","floor":3}}`), time.Now()); err != nil {
					return nil, err
				}
				return t.ServicePatch([]byte(fmt.Sprintf(`{"tags":{"floor":%d}}`, i%7)), time.Now())
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	srv := api.New(api.Deps{Registry: reg, HubName: hub})
	p, _ := reg.Policy("iothubowner")
	tok, _ := sas.Sign(hub, p.PrimaryKey, p.Name, time.Now().Add(time.Hour))
	for _, c := range []struct{ name, query string }{
		{"disconnected", `SELECT * FROM devices WHERE connectionState = 'Disconnected'`},
		{"count-disconnected", `SELECT COUNT() AS n FROM devices WHERE connectionState = 'Disconnected'`},
		{"tag", `SELECT deviceId FROM devices WHERE tags.floor = 3 AND properties.reported.fw = '1.2.3'`},
		{"no-match-full-scan", `SELECT * FROM devices WHERE tags.floor = 99`},
	} {
		b.Run(c.name, func(b *testing.B) {
			body := `{"query":"` + c.query + `"}`
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/devices/query?api-version="+api.APIVersion, strings.NewReader(body))
				r.Header.Set("Authorization", tok)
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
		})
	}
}
