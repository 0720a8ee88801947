package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
)

// The count the Devices page shows is the one its device query would
// give: compared with COUNT() over the same filters, through the
// session, on a registry of mixed ids, states and statuses.
func TestDeviceCountMatchesTheQuery(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.New(ctx, memstore.New(), registry.Options{HubName: hub,
		LiveState: func(id string) (bool, time.Time, time.Time) {
			return strings.HasSuffix(id, "3") || strings.HasSuffix(id, "7"), time.Time{}, time.Time{}
		}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1500 {
		for _, prefix := range []string{"a-", "ab-", "b-"} {
			if i%2 == 1 && prefix == "b-" {
				continue
			}
			d := registry.Device{DeviceID: fmt.Sprintf("%s%04d", prefix, i)}
			if i%5 == 0 {
				d.Status = registry.Disabled
			}
			if _, err := reg.Create(ctx, d, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	h := New(Options{Registry: reg, HubName: hub, API: api.New(api.Deps{Registry: reg, HubName: hub})})
	c := signIn(t, h, connString(t, reg, "iothubowner"))

	queryCount := func(where string) int {
		body, _ := json.Marshal(map[string]string{"query": "SELECT COUNT() AS n FROM devices" + where})
		w := c.do("POST", "/devices/query?api-version="+api.APIVersion, string(body), map[string]string{CSRFHeader: c.csrf})
		var rows []struct{ N int }
		if err := json.Unmarshal(w.Body.Bytes(), &rows); err != nil || w.Code != 200 || len(rows) != 1 {
			t.Fatalf("query %s: %d %s", where, w.Code, w.Body)
		}
		return rows[0].N
	}
	get := func(prefix, state, status string, exact bool) DeviceCount {
		v := url.Values{"prefix": {prefix}, "state": {state}, "status": {status}}
		if exact {
			v.Set("exact", "1")
		}
		w := c.do("GET", countPath+"?"+v.Encode(), "", nil)
		var dc DeviceCount
		if err := json.Unmarshal(w.Body.Bytes(), &dc); err != nil || w.Code != 200 {
			t.Fatalf("count %v: %d %s", v, w.Code, w.Body)
		}
		return dc
	}
	for _, prefix := range []string{"", "a", "a-", "ab-", "ab-01", "b-0999", "c", "a-1499", "zz"} {
		for _, state := range []string{"", "Connected", "Disconnected"} {
			for _, status := range []string{"", "enabled", "disabled"} {
				var conds []string
				if prefix != "" {
					conds = append(conds, fmt.Sprintf("STARTSWITH(deviceId, '%s')", prefix))
				}
				if state != "" {
					conds = append(conds, "connectionState = '"+state+"'")
				}
				if status != "" {
					conds = append(conds, "status = '"+status+"'")
				}
				where := ""
				if len(conds) > 0 {
					where = " WHERE " + strings.Join(conds, " AND ")
				}
				want := queryCount(where)
				if got := get(prefix, state, status, false); !got.Exact || got.Count != want {
					t.Errorf("%q %q %q: %+v, the query counts %d", prefix, state, status, got, want)
				}
			}
		}
	}

	// Past the budget: a lower bound, and the exact count on request.
	want := queryCount(" WHERE connectionState = 'Connected'")
	got := countDevices(reg, "", "Connected", "", 1000)
	if got.Exact || got.Examined != 1000 || got.Candidates != 3750 || got.Count > want || got.Count == 0 {
		t.Errorf("bounded count %+v, exact %d", got, want)
	}
	if got := countDevices(reg, "", "Connected", "", -1); !got.Exact || got.Count != want || got.Examined != 3750 {
		t.Errorf("unbounded count %+v, want %d", got, want)
	}
	if got := get("", "Connected", "", true); !got.Exact || got.Count != want {
		t.Errorf("exact=1: %+v, want %d", got, want)
	}

	// Refused: bad filters, no session, a policy without RegistryRead.
	for _, q := range []string{"state=connected", "status=on"} {
		if w := c.do("GET", countPath+"?"+q, "", nil); w.Code != 400 || !strings.Contains(w.Body.String(), "must be") {
			t.Errorf("%s: %d %s", q, w.Code, w.Body)
		}
	}
	if w := c.do("POST", countPath, "", map[string]string{CSRFHeader: c.csrf}); w.Code != 405 {
		t.Errorf("POST: %d", w.Code)
	}
	anon := &client{t: t, h: h}
	if w := anon.do("GET", countPath, "", nil); w.Code != 401 {
		t.Errorf("no session: %d", w.Code)
	}
	svc := signIn(t, h, connString(t, reg, "service"))
	if w := svc.do("GET", countPath, "", nil); w.Code != 401 || !strings.Contains(w.Body.String(), "RegistryRead") {
		t.Errorf("service policy: %d %s", w.Code, w.Body)
	}
}
