package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
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
	// fast, with the default client, sends to the endpoints it can take
	// (h1.go); the client sends the rest. proxy is the client's.
	fast  *h1
	proxy func(*http.Request) (*url.URL, error)
}

func (w *webhook) Check(context.Context, events.Subscription) error {
	return errors.New("delivery: webhooks are validated by the endpoint handshake (events.Handshaker)")
}

func (w *webhook) Open(sub events.Subscription, env SendEnv) Sender {
	if w.fast != nil {
		if t, err := h1TargetOf(sub.Destination.Properties.EndpointURL, w.proxy); err == nil {
			return &directSender{w: w, env: env, t: t}
		}
	}
	return stateless{env: env, send: w.send}
}

// bodies are the buffers directSender builds POST bodies in (a POST's body
// is written before post returns): a body per event was ~4 % of what the
// hub allocated at 5,000 events/s, maxEventsPerBatch 1.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledBody: a body grown past this by a large batch is left to the
// collector.
const maxPooledBody = 256 << 10

func putBody(b *[]byte) {
	if cap(*b) <= maxPooledBody {
		*b = (*b)[:0]
		bodies.Put(b)
	}
}

// directSender POSTs a subscription's batches through h1.
type directSender struct {
	nothingKept
	w   *webhook
	env SendEnv
	t   *h1Target
}

func (s *directSender) Send(ctx context.Context, b Batch) Result {
	var fields [8]events.HeaderField
	buf := bodies.Get().(*[]byte)
	defer putBody(buf)
	header, body, err := events.AppendDelivery(fields[:0], *buf, b.Sub, b.Events, b.Attempt, s.w.origin)
	if err != nil {
		return Result{Final: true, Outcome: "BadRequest", Err: err.Error()}
	}
	*buf = body // a grown buffer goes back to the pool
	var code int
	var timedOut bool
	if _, wall := s.env.Clock.(systemClock); wall {
		// The connection's deadline bounds the POST: no timer and
		// context per POST (issue 21: one POST per event).
		by := time.Now().Add(s.env.Timeout)
		code, err = s.w.fast.post(ctx, s.t, header, body, by)
		timedOut = err != nil && ctx.Err() == nil && !time.Now().Before(by)
	} else {
		// A clock the tests drive.
		tctx, stop := deadline(ctx, s.env.Clock, s.env.Timeout)
		code, err = s.w.fast.post(tctx, s.t, header, body, time.Time{})
		timedOut = stop()
	}
	switch {
	case errors.Is(err, errBadHeader):
		return Result{Final: true, Outcome: "BadRequest", Err: err.Error()}
	case err != nil && timedOut:
		return Result{Outcome: OutcomeTimedOut, Err: "no answer within " + s.env.Timeout.String()}
	case err != nil:
		return Result{Outcome: OutcomeNetworkError, Err: err.Error()}
	}
	return answered(code)
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
	return answered(resp.StatusCode)
}

// answered is the result of an endpoint's answer with status code.
func answered(code int) Result {
	if Succeeded(code) {
		return Result{OK: true, Status: code}
	}
	return Result{Final: !Retried(code), Status: code, Outcome: outcome(code, false),
		Err: "endpoint answered " + statusLine(code)}
}

func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// defaultWebhook is the WebHook destination with the default client,
// which does not follow redirects (a 3xx is a failed delivery), keeps
// perHost connections per endpoint alive and, with a policy, dials only
// addresses it allows (and no proxy, which would dial for it); the direct
// sender (h1.go) dials, verifies and keeps connections the same way.
func defaultWebhook(perHost int, p *events.EndpointPolicy, origin string) *webhook {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = perHost
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if p != nil {
		d.Control = p.Control
		t.Proxy = nil
	}
	t.DialContext = d.DialContext
	tlsConf := t.TLSClientConfig
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	}
	return &webhook{
		client: &http.Client{
			Transport:     t,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		origin: origin,
		fast:   &h1{dial: d.DialContext, tls: tlsConf, perHost: perHost},
		proxy:  t.Proxy,
	}
}
