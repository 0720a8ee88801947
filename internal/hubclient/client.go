package hubclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/sas"
)

// APIVersion is the IoT Hub API version of registry calls and MQTT
// usernames.
const APIVersion = "2021-04-12"

// Files a dev hub writes into its data dir.
const (
	OwnerConnFile = "owner-connection-string"
	CAFile        = "ca.pem"
)

// Client calls a hub's HTTPS API as the owner policy.
type Client struct {
	Base string // https://host:port, no trailing slash
	CS   sas.ConnectionString
	HTTP *http.Client
}

// New returns a client for base signed with cs (a policy connection
// string). caPEM, when not empty, is the only CA trusted.
func New(base string, cs sas.ConnectionString, caPEM []byte) (*Client, error) {
	if cs.SharedAccessKeyName == "" {
		return nil, errors.New("hubclient: need a policy connection string (SharedAccessKeyName=…), not a device's")
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("hubclient: the CA file holds no PEM certificate")
		}
		conf.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: conf, MaxIdleConnsPerHost: 64}
	return &Client{Base: strings.TrimRight(base, "/"), CS: cs, HTTP: &http.Client{Transport: tr, Timeout: 60 * time.Second}}, nil
}

// FromDevDir reads the owner connection string and CA a dev hub wrote
// into dataDir, waiting up to wait for them to appear.
func FromDevDir(ctx context.Context, dataDir, base string, wait time.Duration) (*Client, error) {
	read := func(name string) ([]byte, error) {
		deadline := time.Now().Add(wait)
		for {
			b, err := os.ReadFile(filepath.Join(dataDir, name))
			if err == nil && len(bytes.TrimSpace(b)) > 0 {
				return b, nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, fmt.Errorf("dev hub did not write %s: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	raw, err := read(OwnerConnFile)
	if err != nil {
		return nil, err
	}
	cs, err := sas.ParseConnectionString(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, err
	}
	ca, err := read(CAFile)
	if err != nil {
		return nil, err
	}
	return New(base, cs, ca)
}

// Token signs a one-hour owner token.
func (c *Client) Token() (string, error) {
	return sas.Sign(c.CS.HostName, c.CS.SharedAccessKey, c.CS.SharedAccessKeyName, time.Now().Add(time.Hour))
}

// Send performs a request with a JSON body (if body is not nil) and
// returns the response for the caller to read and close.
func (c *Client) Send(ctx context.Context, method, path string, body any, headers map[string]string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return nil, err
	}
	// A client without a policy (the hub's local admin socket, which
	// trusts the operating system instead) sends no token.
	if c.CS.SharedAccessKeyName != "" {
		tok, err := c.Token()
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the hub at %s: %w", c.Base, err)
	}
	return resp, nil
}

// MaxBody caps what Do reads of an answer.
const MaxBody = 64 << 20

// Do sends a request and returns the status and body.
func (c *Client) Do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	resp, err := c.Send(ctx, method, path, body, nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	return resp.StatusCode, out, err
}

// StatusError is an unexpected answer.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: hub answered %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// DoJSON sends a request, requires a 2xx answer and decodes it into out
// (if not nil).
func (c *Client) DoJSON(ctx context.Context, method, path string, body, out any) error {
	code, data, err := c.Do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if code < 200 || code > 299 {
		s := strings.TrimSpace(string(data))
		if len(s) > 500 {
			s = s[:500] + "…"
		}
		return &StatusError{method, path, code, s}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}
