package delivery

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
)

func TestBackoff(t *testing.T) {
	for n, want := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
		10 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour} {
		if got := backoff(EventGridSchedule, n+1, 0, 0); got != want {
			t.Errorf("after attempt %d: %v, want %v", n+1, got, want)
		}
		lo, hi := backoff(EventGridSchedule, n+1, 0.1, 0), backoff(EventGridSchedule, n+1, 0.1, 0.999999)
		if lo != want-want/10 || hi < want+want/10-want/10000 || hi > want+want/10 {
			t.Errorf("after attempt %d: jitter range %v..%v", n+1, lo, hi)
		}
	}
}

func TestStatusClasses(t *testing.T) {
	for code := 100; code < 600; code++ {
		if got, want := Succeeded(code), code >= 200 && code <= 204; got != want {
			t.Errorf("Succeeded(%d) = %v", code, got)
		}
	}
	for _, c := range []int{400, 401, 403, 404, 413} {
		if Retried(c) {
			t.Errorf("Retried(%d)", c)
		}
	}
	for _, c := range []int{0, 205, 206, 301, 302, 408, 409, 429, 500, 502, 503, 504} {
		if !Retried(c) {
			t.Errorf("!Retried(%d)", c)
		}
	}
	for c, want := range map[int]string{400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
		413: "PayloadTooLarge", 503: "Busy", 429: "Busy", 500: "InternalServerError", 302: "Found", 0: "NetworkError", 599: "HttpStatus599"} {
		if got := outcome(c, false); got != want {
			t.Errorf("outcome(%d) = %q, want %q", c, got, want)
		}
	}
	if outcome(0, true) != OutcomeTimedOut {
		t.Error("timeout outcome")
	}
}

// waitRetry waits until the engine has settled attempt n (FailedAttempts
// reached n and a single timer, the retry, is pending) and returns when
// the retry is due.
func waitRetry(t *testing.T, v *env, sub string, n int) time.Time {
	t.Helper()
	var at time.Time
	eventually(t, fmt.Sprintf("retry timer after attempt %d", n), func() bool {
		p := v.clock.Pending()
		if v.stats(sub).FailedAttempts != uint64(n) || len(p) != 1 {
			return false
		}
		at = p[0]
		return true
	})
	return at
}

// Timeline, default retry policy (30 attempts, 24 h), an endpoint that
// answers 503: attempts at t0, then after 10 s, 30 s, 1 min, 5 min,
// 10 min, 30 min, 1 h, 3 h, 6 h, 12 h (each ±10 %); the next 12 h step
// would pass the time-to-live, so at t0+24h the event is dead-lettered
// with TimeToLiveExceeded after 11 attempts.
func TestRetryScheduleAndTimeToLive(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, func(*http.Request, post) int { return http.StatusServiceUnavailable })
	v.start()
	v.sub("flaky", rc.URL)
	ce := v.conn("d1", presence.Disconnected)

	schedule := EventGridSchedule
	for n := 1; n <= 11; n++ {
		eventually(t, fmt.Sprintf("attempt %d", n), func() bool { return rc.count() == n })
		p := rc.all()[n-1]
		if got := p.Header.Get("aeg-delivery-count"); got != strconv.Itoa(n-1) {
			t.Errorf("attempt %d: aeg-delivery-count %s", n, got)
		}
		if p.Events[0].ID != id(ce) {
			t.Fatalf("attempt %d delivered %s", n, p.Events[0].ID)
		}
		next := waitRetry(t, v, "flaky", n)
		if n == 11 {
			if want := t0.Add(24 * time.Hour); !next.Equal(want) {
				t.Fatalf("after attempt 11 the timer is at %v, want the time-to-live %v", next.Sub(t0), want.Sub(t0))
			}
			v.clock.AdvanceTo(next)
			break
		}
		want := schedule[min(n, len(schedule))-1]
		if gap := next.Sub(p.At); gap < want-want/10 || gap > want+want/10 {
			t.Errorf("after attempt %d the retry comes after %v, want %v ±10%%", n, gap, want)
		}
		v.clock.AdvanceTo(next)
	}
	eventually(t, "dead letter", func() bool { return v.stats("flaky").DeadLettered == 1 })
	if n := rc.count(); n != 11 {
		t.Errorf("%d attempts, want 11", n)
	}
	dls, err := v.eng.DeadLetters(v.ctx, "flaky", 0)
	if err != nil || len(dls) != 1 {
		t.Fatalf("%v %v", dls, err)
	}
	d := dls[0]
	if d.Reason != events.DeadLetterTTL || d.DeliveryAttempts != 11 || d.LastHTTPStatus != 503 ||
		d.LastDeliveryOutcome != OutcomeBusy || !d.LastDeliveryAttemptTime.Equal(rc.all()[10].At) ||
		d.Event.ID != id(ce) || d.Subscription != "flaky" || d.Stream != "TETHER_CONN" || d.StreamSeq != 1 {
		t.Errorf("dead letter %+v", d)
	}
}

// maxDeliveryAttempts 3: the third failure dead-letters the event at once
// (MaxDeliveryAttemptsExceeded), and the device's next event goes.
func TestMaxDeliveryAttempts(t *testing.T) {
	v := newEnv(t)
	var bad string
	rc := newReceiver(t, v.clock, func(_ *http.Request, p post) int {
		if p.Events[0].ID == bad {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	v.start()
	v.sub("three", rc.URL, func(s *events.Subscription) { s.RetryPolicy.MaxDeliveryAttempts = 3 })
	e1 := v.conn("d1", presence.Connected, func(ce *presence.ConnectionEvent) { bad = id(*ce) })
	e2 := v.conn("d1", presence.Disconnected)
	for n := 1; n <= 2; n++ {
		v.clock.AdvanceTo(waitRetry(t, v, "three", n))
	}
	eventually(t, "dead letter", func() bool { return v.stats("three").DeadLettered == 1 })
	eventually(t, "next event delivered", func() bool { return equal(rc.deliveredIDs("d1"), ids(e2)) })
	if p := rc.all(); len(p) != 4 || !p[3].At.Equal(p[2].At) {
		t.Errorf("posts %+v", p)
	}
	dls, _ := v.eng.DeadLetters(v.ctx, "three", 0)
	if len(dls) != 1 || dls[0].Reason != events.DeadLetterMaxAttempts || dls[0].DeliveryAttempts != 3 ||
		dls[0].LastHTTPStatus != 500 || dls[0].LastDeliveryOutcome != "InternalServerError" || dls[0].Event.ID != id(e1) {
		t.Errorf("dead letters %+v", dls)
	}
}

// An endpoint that does not answer within 30 s: the attempt fails as
// TimedOut at t0+30s and is retried 10 s (±10 %) later.
func TestTimeout(t *testing.T) {
	v := newEnv(t)
	const hung = 599 // recorded for the POST the engine gave up on
	rc := newReceiver(t, v.clock, func(r *http.Request, p post) int {
		<-r.Context().Done()
		return hung
	})
	v.start()
	v.sub("slow", rc.URL)
	ce := v.conn("d1", presence.Connected)
	eventually(t, "POST in flight", func() bool {
		p := v.clock.Pending()
		// The receiver must hold the POST too: a handler that had not
		// started yet would take the answer set below (a flaky test).
		rc.mu.Lock()
		arrived := rc.busy["d1"] > 0
		rc.mu.Unlock()
		return arrived && v.stats("slow").InFlight == 1 && len(p) == 1 && p[0].Equal(t0.Add(30*time.Second))
	})
	rc.setAnswer(func(*http.Request, post) int { return http.StatusOK })
	v.clock.AdvanceTo(t0.Add(30 * time.Second))
	next := waitRetry(t, v, "slow", 1)
	if gap := next.Sub(t0.Add(30 * time.Second)); gap < 9*time.Second || gap > 11*time.Second {
		t.Errorf("retry %v after the timeout", gap)
	}
	v.clock.AdvanceTo(next)
	eventually(t, "delivered", func() bool { return equal(rc.deliveredIDs("d1"), ids(ce)) })
	eventually(t, "both POSTs seen", func() bool { return rc.count() == 2 })
	for _, p := range rc.all() {
		if p.Status == http.StatusOK && p.Header.Get("aeg-delivery-count") != "1" {
			t.Errorf("aeg-delivery-count %s", p.Header.Get("aeg-delivery-count"))
		}
	}
}

// 400, 401, 403, 404 and 413 are not retried: the event is dead-lettered
// (NonRetriableHttpStatus) after one attempt and the device's next event
// goes. Other failures (another 2xx, 3xx, 429, 5xx) are retried.
func TestNonRetriedStatuses(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 413, 205, 302, 429, 502} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			v := newEnv(t)
			var bad string
			rc := newReceiver(t, v.clock, func(_ *http.Request, p post) int {
				if p.Events[0].ID == bad {
					return code
				}
				return http.StatusOK
			})
			v.start()
			v.sub("codes", rc.URL)
			e1 := v.conn("d1", presence.Connected, func(ce *presence.ConnectionEvent) { bad = id(*ce) })
			e2 := v.conn("d1", presence.Disconnected)
			if Retried(code) {
				waitRetry(t, v, "codes", 1)
				if got := rc.deliveredIDs("d1"); len(got) != 0 || rc.count() != 1 {
					t.Fatalf("status %d: the device's next event went before the retry: %v", code, got)
				}
				return
			}
			eventually(t, "next event delivered", func() bool { return equal(rc.deliveredIDs("d1"), ids(e2)) })
			dls, _ := v.eng.DeadLetters(v.ctx, "codes", 0)
			if len(dls) != 1 || dls[0].Reason != events.DeadLetterNonRetriable || dls[0].DeliveryAttempts != 1 ||
				dls[0].LastHTTPStatus != code || dls[0].Event.ID != id(e1) {
				t.Errorf("dead letters %+v", dls)
			}
		})
	}
}

// Timeline: device A's endpoint handler fails, B's works. B's events all
// arrive while A retries; A's later events are never sent before A's
// first succeeds, then arrive in order; no device ever has two POSTs at
// once.
func TestDeviceOrderUnderFailures(t *testing.T) {
	v := newEnv(t)
	failA := true
	rc := newReceiver(t, v.clock, func(_ *http.Request, p post) int {
		if failA && p.Events[0].Subject == "devices/A" {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	v.start()
	v.sub("order", rc.URL)
	var as, bs []string
	for i := 0; i < 3; i++ {
		as = append(as, id(v.conn("A", presence.Connected)))
		bs = append(bs, id(v.conn("B", presence.Connected)))
		as = append(as, id(v.conn("A", presence.Disconnected)))
		bs = append(bs, id(v.conn("B", presence.Disconnected)))
	}
	eventually(t, "B delivered", func() bool { return equal(rc.deliveredIDs("B"), bs) })
	v.clock.AdvanceTo(waitRetry(t, v, "order", 1))
	waitRetry(t, v, "order", 2)
	rc.setAnswer(func(*http.Request, post) int { return http.StatusOK })
	v.clock.AdvanceTo(v.clock.Pending()[0])
	eventually(t, "A delivered", func() bool { return len(rc.deliveredIDs("A")) == len(as) })
	if got := rc.deliveredIDs("A"); !equal(got, as) {
		t.Errorf("A: %v, want %v", got, as)
	}
	var triedA []string
	for _, p := range rc.all() {
		if p.Events[0].Subject == "devices/A" {
			triedA = append(triedA, p.Events[0].ID)
		}
	}
	if want := append([]string{as[0], as[0]}, as...); !equal(triedA, want) {
		t.Errorf("A's POSTs %v, want %v", triedA, want)
	}
	if o := rc.overlaps(); len(o) > 0 {
		t.Errorf("concurrent POSTs for %v", o)
	}
}
