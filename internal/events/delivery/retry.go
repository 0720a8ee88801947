package delivery

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// backoff is the delay after the attempts-th failed attempt (attempts ≥ 1)
// under schedule, spread by ±jitter with r in [0, 1).
func backoff(schedule []time.Duration, attempts int, jitter, r float64) time.Duration {
	i := min(max(attempts, 1), len(schedule)) - 1
	d := schedule[i]
	if jitter > 0 {
		d += time.Duration(float64(d) * jitter * (2*r - 1))
	}
	return d
}

// Succeeded reports whether an endpoint's status is a successful delivery:
// 200–204 only (reference/iothub-facts.md §1.9). Other 2xx and every 3xx
// are failures.
func Succeeded(status int) bool { return status >= 200 && status <= 204 }

// Retried reports whether a failed delivery with this status is retried:
// everything but 400, 401, 403, 404 and 413, which Event Grid does not
// retry for webhooks and dead-letters at once. Status 0 (no answer,
// timeout, network error) is retried.
func Retried(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusRequestEntityTooLarge:
		return false
	}
	return true
}

// Outcomes of a failed attempt (lastDeliveryOutcome). Event Grid documents
// "NotFound" as an example and no list; Tether names statuses by their
// HTTP reason phrase without spaces and adds these for attempts without
// an answer.
const (
	OutcomeTimedOut     = "TimedOut"     // no answer within the timeout
	OutcomeNetworkError = "NetworkError" // could not connect, or the connection broke
	OutcomeBusy         = "Busy"         // 429 or 503
)

// outcome names the result of a failed attempt.
func outcome(status int, timedOut bool) string {
	switch {
	case timedOut:
		return OutcomeTimedOut
	case status == 0:
		return OutcomeNetworkError
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return OutcomeBusy
	case status == http.StatusRequestEntityTooLarge:
		return "PayloadTooLarge"
	}
	if t := http.StatusText(status); t != "" {
		return strings.NewReplacer(" ", "", "-", "", "'", "").Replace(t)
	}
	return "HttpStatus" + strconv.Itoa(status)
}
