package alert

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// webhookSender POSTs the payload. Network errors, 408, 429 and 5xx are
// retried; any other non-2xx answer is final (alertmanager's rule).
func webhookSender(client *http.Client, w WebhookAction) sendFunc {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return func(ctx context.Context, n notification) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(n.payload))
		if err != nil {
			return Permanent(err)
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("User-Agent", "Tether-Alerts/1.0")
		for k, v := range w.Headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("webhook %s: %w", redactURL(w.URL), err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode/100 == 2 {
			return nil
		}
		err = fmt.Errorf("webhook %s answered %s: %q", redactURL(w.URL), resp.Status, bytes.TrimSpace(body))
		if resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return err
		}
		return Permanent(err)
	}
}

// redactURL drops the user info and query (tokens often travel there)
// for logs and status.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
