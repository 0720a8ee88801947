package app_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/tether-hub/tether/internal/sas"
)

// apiRaw calls the hub's HTTPS API as iothubowner with body as is (nil:
// none) and the extra headers.
func (h *hub) apiRaw(method, path string, body []byte, headers map[string]string) (int, []byte) {
	h.t.Helper()
	status, out, _ := h.apiRawHeader(method, path, body, headers)
	return status, out
}

// apiRawHeader is apiRaw with the response headers.
func (h *hub) apiRawHeader(method, path string, body []byte, headers map[string]string) (int, []byte, http.Header) {
	h.t.Helper()
	cs, _ := sas.ParseConnectionString(h.OwnerConnectionString())
	tok, _ := sas.Sign("localhost", cs.SharedAccessKey, cs.SharedAccessKeyName, time.Now().Add(time.Hour))
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, "https://"+h.HTTPSAddr()+path, rd)
	req.Header.Set("Authorization", tok)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: h.tlsConfig()}}).Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}
