package delivery

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/tether-hub/tether/internal/events"
)

// maxAnswer bounds how much of an endpoint's answer is read (and thrown
// away) so the connection can be reused.
const maxAnswer = 64 << 10

// post sends one batch to the subscription's endpoint: events.NewDelivery
// builds body and aeg-* headers; the timeout runs on the engine's clock.
func (r *runner) post(sub events.Subscription, evs []events.Event, attempt int) result {
	d, err := events.NewDelivery(sub, evs, attempt, r.e.o.Origin)
	if err != nil {
		return result{err: err}
	}
	ctx, cancel := context.WithCancel(r.sendCtx)
	defer cancel()
	var timedOut atomic.Bool
	t := r.clock.AfterFunc(r.e.o.Timeout, func() {
		timedOut.Store(true)
		cancel()
	})
	defer t.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Destination.Properties.EndpointURL, bytes.NewReader(d.Body))
	if err != nil {
		return result{err: err}
	}
	for k, v := range d.Header {
		req.Header[k] = v
	}
	resp, err := r.e.o.Client.Do(req)
	if err != nil {
		res := result{err: err, timedOut: timedOut.Load()}
		res.aborted = !res.timedOut && r.sendCtx.Err() != nil
		return res
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	_ = resp.Body.Close()
	return result{status: resp.StatusCode}
}

func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}
