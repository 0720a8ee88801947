package hubclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func post(t *testing.T, url, eventType, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("aeg-event-type", eventType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

// The receiver answers Event Grid's validation handshake itself, hands
// notifications to Deliver with the parsed fields, answers what Deliver
// says, and refuses bodies that are not an event array.
func TestReceiver(t *testing.T) {
	var got []Event
	var validations, bad atomic.Int32
	status := http.StatusOK
	r := &Receiver{
		Deliver:     func(b Batch) int { got = append(got, b.Events...); return status },
		Validations: func() { validations.Add(1) },
		BadBody:     func(error) { bad.Add(1) },
	}
	if err := r.Start(""); err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	resp, body := post(t, r.URL, "SubscriptionValidation", `[{"id":"v","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2026-01-01T00:00:00Z","data":{"validationCode":"abc-123"}}]`)
	var vr struct{ ValidationResponse string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &vr) != nil || vr.ValidationResponse != "abc-123" || validations.Load() != 1 {
		t.Fatalf("handshake: %d %s", resp.StatusCode, body)
	}
	ev := `[{"id":"e1","eventType":"Microsoft.Devices.DeviceDisconnected","subject":"devices/d1","eventTime":"2026-01-01T00:00:01.5Z",
	  "data":{"deviceId":"d1","deviceConnectionStateEventInfo":{"sequenceNumber":"00A"},"tether":{"reason":"network","resultType":"404104","tokenRenewal":false}}}]`
	if resp, _ := post(t, r.URL, "Notification", ev); resp.StatusCode != 200 {
		t.Fatalf("delivery: %d", resp.StatusCode)
	}
	if len(got) != 1 || got[0].Data.DeviceID != "d1" || got[0].Data.Info.SequenceNumber != "00A" ||
		got[0].Data.Tether.ResultType != "404104" || got[0].Data.Tether.Reason != "network" || got[0].EventTime.Nanosecond() != 5e8 {
		t.Fatalf("parsed %+v", got)
	}
	status = http.StatusServiceUnavailable
	if resp, _ := post(t, r.URL, "Notification", ev); resp.StatusCode != 503 {
		t.Fatalf("Deliver's 503 not passed on: %d", resp.StatusCode)
	}
	for _, b := range []string{`{}`, `[]`, `nonsense`} {
		if resp, _ := post(t, r.URL, "Notification", b); resp.StatusCode != 400 {
			t.Errorf("body %q: %d", b, resp.StatusCode)
		}
	}
	if bad.Load() != 3 {
		t.Errorf("bad bodies counted %d", bad.Load())
	}
}

func TestForEach(t *testing.T) {
	var n, last atomic.Int64
	err := ForEach(context.Background(), 100, 8, func(int) error { n.Add(1); return nil }, func(d int) { last.Store(int64(max(int(last.Load()), d))) })
	if err != nil || n.Load() != 100 || last.Load() != 100 {
		t.Fatalf("ran %d, progress %d, err %v", n.Load(), last.Load(), err)
	}
	boom := errors.New("boom")
	n.Store(0)
	// Items after the failing one take 2 ms each, so running all of them would take
	// ≥ 0.5 s across 4 workers: the failure must stop the rest long before that even
	// when the failing worker is descheduled for a while (it once was, in a CI run,
	// while the others finished 1000 instant items).
	err = ForEach(context.Background(), 1000, 4, func(i int) error {
		n.Add(1)
		switch {
		case i == 10:
			return boom
		case i > 10:
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}, nil)
	if !errors.Is(err, boom) || n.Load() == 1000 {
		t.Fatalf("first error not returned or work not stopped: %v after %d", err, n.Load())
	}
}
