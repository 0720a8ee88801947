package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tether-hub/tether/internal/events"
)

// maxAnswer bounds how much of an endpoint's answer is read (and thrown
// away) so the connection can be reused.
const maxAnswer = 64 << 10

// webhook is the WebHook destination: one POST per batch
// (events.NewDelivery builds body and aeg-* headers).
type webhook struct {
	nothingKept
	client *http.Client
	origin string
}

func (w *webhook) Check(context.Context, events.Subscription) error {
	return errors.New("delivery: webhooks are validated by the endpoint handshake (events.Handshaker)")
}

func (w *webhook) Open(_ events.Subscription, env SendEnv) Sender {
	return stateless{env: env, send: w.send}
}

// send POSTs the batch; the timeout (answer included) runs on the
// engine's clock. 200–204 is success; 400, 401, 403, 404 and 413 are
// final; anything else, no answer or a network error is retried.
func (w *webhook) send(ctx context.Context, env SendEnv, b Batch) Result {
	d, err := events.NewDelivery(b.Sub, b.Events, b.Attempt, w.origin)
	if err != nil {
		return Result{Final: true, Outcome: "BadRequest", Err: err.Error()}
	}
	ctx, stop := deadline(ctx, env.Clock, env.Timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.Sub.Destination.Properties.EndpointURL, bytes.NewReader(d.Body))
	if err != nil {
		stop()
		return Result{Final: true, Outcome: "BadRequest", Err: err.Error()}
	}
	for k, v := range d.Header {
		req.Header[k] = v
	}
	resp, err := w.client.Do(req)
	if err != nil {
		if stop() {
			return Result{Outcome: OutcomeTimedOut, Err: "no answer within " + env.Timeout.String()}
		}
		return Result{Outcome: OutcomeNetworkError, Err: err.Error()}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	_ = resp.Body.Close()
	stop()
	if Succeeded(resp.StatusCode) {
		return Result{OK: true, Status: resp.StatusCode}
	}
	return Result{Final: !Retried(resp.StatusCode), Status: resp.StatusCode, Outcome: outcome(resp.StatusCode, false),
		Err: "endpoint answered " + statusLine(resp.StatusCode)}
}

func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// defaultClient does not follow redirects (a 3xx is a failed delivery),
// keeps perHost connections per endpoint alive and, with a policy, dials
// only addresses it allows (and no proxy, which would dial for it).
func defaultClient(perHost int, p *events.EndpointPolicy) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = perHost
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if p != nil {
		d.Control = p.Control
		t.Proxy = nil
	}
	t.DialContext = d.DialContext
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
