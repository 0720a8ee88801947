package dashboard_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"
)

// The Fleet page's renewals chart reads deviceConnects split by its
// TokenRenewal dimension. A real hub counts a SAS-token renewal (the
// Azure SDKs' DISCONNECT, then a connect with a token that expires later)
// as "true", and a plain reconnect with the same token as "false".
func TestRenewalsMetric(t *testing.T) {
	h := startHub(t, nil)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	reconnect := func(id, key string, next time.Time) {
		c := h.connectUntil(id, key, exp)
		h.waitState(id, "Connected")
		if err := c.Disconnect(); err != nil {
			t.Fatal(err)
		}
		h.waitState(id, "Disconnected")
		c.Close()
		c = h.connectUntil(id, key, next)
		h.waitState(id, "Connected")
		t.Cleanup(func() { c.Close() })
	}
	reconnect("renewer", h.device("renewer"), exp.Add(time.Hour)) // renews
	reconnect("plain", h.device("plain"), exp)                    // same token again: no renewal

	filter := url.QueryEscape("TokenRenewal eq '*'")
	eventually(t, 10*time.Second, func() error {
		status, body := h.owner("GET", "/api/v1/metrics?metricnames=deviceConnects&aggregation=Total&timespan=PT1H&interval=PT1H&$filter="+filter, nil)
		if status != 200 {
			return fmt.Errorf("%d %s", status, body)
		}
		got := totals(t, body)
		if got["true"] != 1 || got["false"] != 3 {
			return fmt.Errorf("deviceConnects by TokenRenewal: %v, want true 1, false 3", got)
		}
		return nil
	})
	// The Fleet page's own call: only the renewal.
	status, body := h.owner("GET", "/api/v1/metrics?metricnames=deviceConnects&aggregation=Total&timespan=PT1H&interval=PT1H&$filter="+url.QueryEscape("TokenRenewal eq 'true'"), nil)
	if got := totals(t, body); status != 200 || len(got) != 1 || got[""] != 1 {
		t.Fatalf("renewals: %d %v %s", status, got, body)
	}
}

// waitState waits until the registry shows device id in state.
func (h *testHub) waitState(id, state string) {
	h.t.Helper()
	eventually(h.t, 10*time.Second, func() error {
		if info, _ := h.Registry().TwinInfo(id); info.ConnectionState != state {
			return fmt.Errorf("%s is %q, want %s", id, info.ConnectionState, state)
		}
		return nil
	})
}

// totals sums an Azure Monitor metrics answer per series, named by its
// dimension values ("" for an unsplit series).
func totals(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	var res struct {
		Value []struct {
			Timeseries []struct {
				Metadatavalues []struct{ Value string }
				Data           []struct{ Total *float64 }
			}
		}
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	out := map[string]float64{}
	for _, v := range res.Value {
		for _, ts := range v.Timeseries {
			name := ""
			for _, m := range ts.Metadatavalues {
				name += m.Value
			}
			for _, d := range ts.Data {
				if d.Total != nil {
					out[name] += *d.Total
				}
			}
		}
	}
	return out
}
