package probe

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// ProxyResult is the proxy's part of a tunnel.
type ProxyResult struct {
	Address string `json:"address"`
	// Status is the proxy's answer to CONNECT (0 when it gave none).
	Status     int    `json:"status"`
	StatusLine string `json:"statusLine,omitempty"`
}

// proxyError is a proxy that answered CONNECT with something other than
// 2xx.
type proxyError struct {
	status int
	line   string
}

func (e *proxyError) Error() string { return "the proxy answered CONNECT with " + e.line }

// tunnel opens an HTTP CONNECT tunnel to target through proxy. The
// returned error is a dial error (proxy unreachable), a *proxyError, or
// an I/O error while talking to the proxy; res says how far it got.
func tunnel(ctx context.Context, proxy *url.URL, target string, timeout time.Duration) (net.Conn, *ProxyResult, error) {
	res := &ProxyResult{Address: proxy.Host}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", proxy.Host)
	if err != nil {
		return nil, res, err
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if u := proxy.User; u != nil {
		pass, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)) + "\r\n"
	}
	if _, err := nc.Write([]byte(req + "\r\n")); err != nil {
		nc.Close()
		return nil, res, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		nc.Close()
		return nil, res, fmt.Errorf("reading the proxy's answer: %w", err)
	}
	resp.Body.Close()
	res.Status, res.StatusLine = resp.StatusCode, resp.Status
	if resp.StatusCode/100 != 2 {
		nc.Close()
		return nil, res, &proxyError{resp.StatusCode, resp.Status}
	}
	_ = nc.SetDeadline(time.Time{})
	if br.Buffered() > 0 { // the hub spoke first: keep what was read
		return &bufferedConn{Conn: nc, r: br}, res, nil
	}
	return nc, res, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// proxyHint says what to do about a failed tunnel.
func proxyHint(err error, proxy, target string) (summary, hint string) {
	var pe *proxyError
	if errors.As(err, &pe) {
		switch {
		case pe.status == http.StatusProxyAuthRequired:
			return fmt.Sprintf("proxy %s wants credentials (%s)", proxy, pe.line),
				"pass them in the proxy URL: --proxy http://user:password@host:port"
		case pe.status == http.StatusBadGateway || pe.status == http.StatusGatewayTimeout || pe.status == http.StatusServiceUnavailable:
			return fmt.Sprintf("proxy %s could not reach %s (%s)", proxy, target, pe.line),
				"the proxy's own network cannot reach the hub: check its DNS and outbound rules for the hub's host and port"
		}
		return fmt.Sprintf("proxy %s refused a tunnel to %s (%s)", proxy, target, pe.line),
			"the proxy's policy does not allow CONNECT to this host and port: ask for the hub's host name on port 443 to be allowed"
	}
	switch classify(err) {
	case Refused:
		return fmt.Sprintf("proxy %s refused the connection", proxy), "check the proxy's address and port; is it running?"
	case TimedOut:
		return fmt.Sprintf("no answer from proxy %s", proxy), "the proxy is unreachable from here (a firewall drops the packets, or a wrong address)"
	}
	return fmt.Sprintf("proxy %s: %s", proxy, errText(err)), "check the proxy URL"
}
