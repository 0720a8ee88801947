package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/sas"
)

// GET /api/v1/events streams the journal's connection events live, in the
// Event Grid schema, with the sequence number and Tether's reason.
func TestEventsTailOverHTTPS(t *testing.T) {
	h := startHub(t)
	key := h.device("tail1")
	cs, err := sas.ParseConnectionString(h.OwnerConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := sas.Sign("localhost", cs.SharedAccessKey, cs.SharedAccessKeyName, time.Now().Add(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+h.HTTPSAddr()+"/api/v1/events?device=tail1", nil)
	req.Header.Set("Authorization", tok)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: h.tlsConfig()}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				lines <- d
			}
		}
		close(lines)
	}()
	// The stream is live and starts a moment after the headers: cycle the
	// device until its events show up, then read one connect/disconnect pair.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, rc := h.v3("tail1", username("tail1"), h.token("tail1", key, time.Hour))
			if rc == 0 {
				c.Disconnect(50)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var got []map[string]any
	deadline := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			if len(got) == 0 && ev["eventType"] != "Microsoft.Devices.DeviceConnected" {
				continue // joined mid-pair
			}
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("got %d events, want 2", len(got))
		}
	}
	if got[0]["eventType"] != "Microsoft.Devices.DeviceConnected" || got[1]["eventType"] != "Microsoft.Devices.DeviceDisconnected" || got[0]["subject"] != "devices/tail1" {
		t.Fatalf("events %v", got)
	}
	data := got[1]["data"].(map[string]any)
	seq := data["deviceConnectionStateEventInfo"].(map[string]any)["sequenceNumber"].(string)
	if len(seq) != 64 || data["tether"].(map[string]any)["reason"] != "client" {
		t.Fatalf("data %v", data)
	}
}
