package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/sas"
)

// Client flags, shared by every command that talks to a running hub.
var clientFlags struct {
	connString string
	url        string
	caFile     string
	dataDir    string
	output     string
}

// Files the dev hub writes into its data dir, which client commands read
// when no flag or environment variable says otherwise.
const (
	ownerConnFile  = "owner-connection-string"
	apiURLFile     = "api-url"
	caCertFile     = "ca.pem"
	defaultDataDir = "tether-data"
)

func addClientFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&clientFlags.connString, "connection-string", "", "owner (policy) connection string of the hub (env TETHER_CONNECTION_STRING; default: read from the dev data dir)")
	f.StringVar(&clientFlags.url, "url", "", "HTTPS API base URL of the hub (env TETHER_URL; default: from the data dir, else https://<HostName>:443)")
	f.StringVar(&clientFlags.caFile, "ca", "", "PEM file of the CA that signed the hub's certificate (env TETHER_CA; default: <data-dir>/ca.pem if present)")
	f.StringVar(&clientFlags.dataDir, "data-dir", defaultDataDir, "data directory of a local hub (used by serve, and by clients to find the dev credentials)")
	f.StringVarP(&clientFlags.output, "output", "o", "table", "output format: table or json")
}

// apiClient calls the hub's HTTPS API, signing each request with a SAS
// token of the owner policy.
type apiClient struct {
	*hubclient.Client
	cs    sas.ConnectionString
	caPEM []byte // the CA trusted for the hub (nil: the system roots)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func readDataFile(name string) string {
	b, err := os.ReadFile(filepath.Join(clientFlags.dataDir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// newAPIClient resolves credentials: flag, then environment, then the dev
// data dir. It says which sources it tried when none works.
func newAPIClient() (*apiClient, error) {
	raw := firstNonEmpty(clientFlags.connString, os.Getenv("TETHER_CONNECTION_STRING"), readDataFile(ownerConnFile))
	if raw == "" {
		return nil, fmt.Errorf("no hub credentials: pass --connection-string, set TETHER_CONNECTION_STRING, or run next to a dev hub's data dir (%s)", filepath.Join(clientFlags.dataDir, ownerConnFile))
	}
	cs, err := sas.ParseConnectionString(raw)
	if err != nil {
		return nil, err
	}
	if cs.SharedAccessKeyName == "" {
		return nil, errors.New("the connection string is a device's; client commands need a policy connection string (SharedAccessKeyName=…)")
	}
	base := firstNonEmpty(clientFlags.url, os.Getenv("TETHER_URL"), readDataFile(apiURLFile), "https://"+cs.HostName)
	base = strings.TrimRight(base, "/")
	if _, err := url.Parse(base); err != nil {
		return nil, fmt.Errorf("bad hub URL %q: %w", base, err)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	caPath := firstNonEmpty(clientFlags.caFile, os.Getenv("TETHER_CA"))
	if caPath == "" {
		if p := filepath.Join(clientFlags.dataDir, caCertFile); fileExists(p) {
			caPath = p
		}
	}
	var pem []byte
	if caPath != "" {
		pem, err = os.ReadFile(caPath)
		if err != nil {
			return nil, fmt.Errorf("reading CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caPath)
		}
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, MaxIdleConnsPerHost: 64}
	hc := &hubclient.Client{Base: base, CS: cs, HTTP: &http.Client{Transport: tr}}
	return &apiClient{Client: hc, cs: cs, caPEM: pem}, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// APIError is an error answer from the hub.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("hub answered %d: %s", e.Status, e.Message) }

// do sends a request; body (if not nil) is JSON-encoded; a 2xx answer is
// decoded into out (if not nil). headers are extra request headers.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any, headers map[string]string) error {
	resp, err := c.send(ctx, method, path, body, headers)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return &APIError{Status: resp.StatusCode, Message: errorMessage(data)}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding the hub's answer: %w", err)
		}
	}
	return nil
}

// send performs the request and returns the response for the caller to
// read (used directly for streams).
func (c *apiClient) send(ctx context.Context, method, path string, body any, headers map[string]string) (*http.Response, error) {
	return c.Send(ctx, method, path, body, headers)
}

// errorMessage extracts the message of an Azure-style error body
// ({"Message":"ErrorCode:X;text"}) or a Tether one ({"error":{"message"}}).
func errorMessage(data []byte) string {
	var az struct {
		Message string
		Error   struct{ Message string }
	}
	if json.Unmarshal(data, &az) == nil {
		if az.Message != "" {
			return az.Message
		}
		if az.Error.Message != "" {
			return az.Error.Message
		}
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// printJSON writes v indented, for -o json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// checkOutput validates -o.
func checkOutput() error {
	switch clientFlags.output {
	case "table", "json":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table or json", clientFlags.output)
}

// outputClient checks -o and returns the API client: the start of most
// client subcommands.
func outputClient() (*apiClient, error) {
	if err := checkOutput(); err != nil {
		return nil, err
	}
	return newAPIClient()
}
