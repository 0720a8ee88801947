package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type azureMetrics struct {
	Timespan string `json:"timespan"`
	Interval string `json:"interval"`
	Value    []struct {
		Name struct {
			Value string `json:"value"`
		} `json:"name"`
		Unit       string `json:"unit"`
		Timeseries []struct {
			Metadatavalues []struct {
				Name struct {
					Value string `json:"value"`
				} `json:"name"`
				Value string `json:"value"`
			} `json:"metadatavalues"`
			Data []map[string]any `json:"data"`
		} `json:"timeseries"`
	} `json:"value"`
}

func (h *hub) getMetrics(params url.Values) (int, azureMetrics, string) {
	h.t.Helper()
	status, body := h.api("GET", "/api/v1/metrics?"+params.Encode(), nil)
	var out azureMetrics
	if status == 200 {
		if err := json.Unmarshal(body, &out); err != nil {
			h.t.Fatalf("%s: %v", body, err)
		}
	}
	return status, out, string(body)
}

// GET /api/v1/metrics answers in Azure Monitor's shape, from the same
// history the alert rules read, for devices that really connected.
func TestMetricsAPI(t *testing.T) {
	h := startHub(t)
	start := time.Now().Truncate(time.Second)
	for i := range 3 {
		id := fmt.Sprintf("a%d", i)
		key := h.device(id)
		if _, rc := h.v3(id, username(id), h.token(id, key, time.Hour)); rc != 0 {
			t.Fatalf("CONNACK %d", rc)
		}
	}
	if _, rc := h.v3("a0", username("a0"), "SharedAccessSignature sr=x&sig=y&se=1"); rc != 5 {
		t.Fatalf("CONNACK %d", rc)
	}

	// connectedDeviceCount per second: the newest point with data is 3.
	eventually(t, 10*time.Second, func() error {
		end := time.Now().Add(time.Second)
		status, m, body := h.getMetrics(url.Values{
			"metricnames": {"connectedDeviceCount"}, "aggregation": {"maximum,minimum"}, "interval": {"PT1S"},
			"timespan": {start.UTC().Format(time.RFC3339) + "/" + end.UTC().Format(time.RFC3339Nano)},
		})
		if status != 200 {
			return fmt.Errorf("%d %s", status, body)
		}
		if len(m.Value) != 1 || m.Value[0].Name.Value != "connectedDeviceCount" || m.Value[0].Unit != "Count" ||
			m.Interval != "PT1S" || len(m.Value[0].Timeseries) != 1 {
			return fmt.Errorf("shape: %s", body)
		}
		data := m.Value[0].Timeseries[0].Data
		for i := len(data) - 1; i >= 0; i-- {
			if v, ok := data[i]["maximum"]; ok {
				if v != 3.0 || data[i]["minimum"] != 3.0 || data[i]["timeStamp"] == nil {
					return fmt.Errorf("newest point %v", data[i])
				}
				return nil
			}
		}
		return fmt.Errorf("no point with data: %s", body)
	})

	// Connection attempts per ResultType over the last hour in minutes.
	eventually(t, 10*time.Second, func() error {
		status, m, body := h.getMetrics(url.Values{
			"metricnames": {"deviceConnects"}, "aggregation": {"Total"}, "interval": {"PT1M"}, "timespan": {"PT1H"},
			"$filter": {"ResultType eq '*' and Protocol eq 'MQTT'"},
		})
		if status != 200 {
			return fmt.Errorf("%d %s", status, body)
		}
		got := map[string]float64{}
		for _, ts := range m.Value[0].Timeseries {
			if len(ts.Metadatavalues) != 1 || ts.Metadatavalues[0].Name.Value != "ResultType" {
				return fmt.Errorf("metadatavalues: %s", body)
			}
			if len(ts.Data) < 60 || len(ts.Data) > 61 {
				return fmt.Errorf("%d points for an hour in minutes", len(ts.Data))
			}
			for _, p := range ts.Data {
				if v, ok := p["total"].(float64); ok {
					got[ts.Metadatavalues[0].Value] += v
				}
			}
		}
		if got["Success"] != 3 || got["401003"] != 1 {
			return fmt.Errorf("totals %v", got)
		}
		return nil
	})

	for _, c := range []struct {
		params url.Values
		status int
		text   string
	}{
		{url.Values{"metricnames": {"connectedDevices"}}, 400, "known metrics: connectedDeviceCount"},
		{url.Values{"metricnames": {"connectedDeviceCount"}, "aggregation": {"Total"}}, 400, "allows Average, Count, Maximum, Minimum"},
		{url.Values{"metricnames": {"deviceConnects"}, "filter": {"Colour eq 'x'"}}, 400, "its dimensions: ResultType, Protocol"},
		{url.Values{"metricnames": {"deviceConnects"}, "interval": {"5 minutes"}}, 400, "ISO 8601"},
		{url.Values{"metricnames": {"deviceConnects"}, "interval": {"PT1S"}, "timespan": {"P1D"}}, 400, "more than 10000"},
		{url.Values{"metricnames": {"deviceConnects"}, "top": {"5"}}, 400, "unknown query parameter"},
		{url.Values{}, 400, "metricnames is required"},
	} {
		status, _, body := h.getMetrics(c.params)
		if status != c.status || !strings.Contains(body, c.text) {
			t.Errorf("%v: %d %s; want %d with %q", c.params, status, body, c.status, c.text)
		}
	}
	req, _ := http.NewRequest("GET", "https://"+h.HTTPSAddr()+"/api/v1/metrics?metricnames=connectedDeviceCount", nil)
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: h.tlsConfig()}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
}
