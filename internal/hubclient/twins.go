package hubclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Device twins and direct methods through the service REST API, as the
// azure-iothub SDK calls them: PATCH/GET /twins/{id} and
// POST /twins/{id}/methods.

// Twin is the service view of a device twin (the members tools read).
type Twin struct {
	DeviceID   string         `json:"deviceId"`
	ETag       string         `json:"etag"`
	Version    int64          `json:"version"`
	Tags       map[string]any `json:"tags,omitempty"`
	Properties struct {
		Desired  map[string]any `json:"desired"`
		Reported map[string]any `json:"reported"`
	} `json:"properties"`
}

// DesiredVersion is properties.desired.$version (0 if absent).
func (t Twin) DesiredVersion() int64 { return jsonInt(t.Properties.Desired["$version"]) }

// ReportedVersion is properties.reported.$version (0 if absent).
func (t Twin) ReportedVersion() int64 { return jsonInt(t.Properties.Reported["$version"]) }

func jsonInt(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

func twinPath(id string) string {
	return "/twins/" + url.PathEscape(id) + "?api-version=" + APIVersion
}

// HubError is an IoT Hub error answer of the service API:
// {"Message":"ErrorCode:<Code>;<text>"} with IoT Hub's six-digit error
// number where the hub gives one.
type HubError struct {
	Method, Path string
	Status       int    // HTTP status
	Code         string // e.g. DeviceNotOnline, GatewayTimeout
	Number       int    // e.g. 404103, 504101; 0 if unknown
	Message      string
}

func (e *HubError) Error() string {
	num := ""
	if e.Number != 0 {
		num = strconv.Itoa(e.Number) + " "
	}
	return fmt.Sprintf("%s %s: hub answered %d %s%s: %s", e.Method, e.Path, e.Status, num, e.Code, e.Message)
}

// knownNumbers are the error numbers of codes whose message may not carry
// one.
var knownNumbers = map[string]int{
	"DeviceNotOnline":     404103,
	"GatewayTimeout":      504101,
	"DeviceNotFound":      404001,
	"PreconditionFailed":  412002,
	"ThrottlingException": 429001,
}

var errorNumber = regexp.MustCompile(`\b([45]\d{5})\b`)

// parseHubError reads an error answer; a body that is not IoT Hub's shape
// keeps its text as the message.
func parseHubError(method, path string, status int, body []byte) *HubError {
	e := &HubError{Method: method, Path: path, Status: status}
	var m struct {
		Message string `json:"Message"`
	}
	text := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		text = m.Message
	}
	if rest, ok := strings.CutPrefix(text, "ErrorCode:"); ok {
		e.Code, text, _ = strings.Cut(rest, ";")
	}
	if len(text) > 500 {
		text = text[:500] + "…"
	}
	e.Message = text
	if sm := errorNumber.FindStringSubmatch(text); sm != nil {
		e.Number, _ = strconv.Atoi(sm[1])
	} else {
		e.Number = knownNumbers[e.Code]
	}
	return e
}

// doTwinJSON sends a request and decodes a 2xx answer into out; other
// answers come back as *HubError.
func (c *Client) doTwinJSON(ctx context.Context, method, path string, body any, headers map[string]string, out any) error {
	resp, err := c.Send(ctx, method, path, body, headers)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseHubError(method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

// GetTwin reads a device's twin.
func (c *Client) GetTwin(ctx context.Context, id string) (Twin, error) {
	var t Twin
	err := c.doTwinJSON(ctx, http.MethodGet, twinPath(id), nil, nil, &t)
	return t, err
}

// UpdateTwin merges patch ({"tags":…,"properties":{"desired":…}}) into a
// device's twin (PATCH) and returns the twin as stored. etag, if not
// empty, must match the twin's (If-Match); a mismatch is a *HubError with
// status 412.
func (c *Client) UpdateTwin(ctx context.Context, id string, patch any, etag string) (Twin, error) {
	var h map[string]string
	if etag != "" {
		h = map[string]string{"If-Match": `"` + strings.Trim(etag, `"`) + `"`}
	}
	var t Twin
	err := c.doTwinJSON(ctx, http.MethodPatch, twinPath(id), patch, h, &t)
	return t, err
}

// MethodCall is a direct method invocation.
type MethodCall struct {
	Name    string
	Payload json.RawMessage // JSON; nil sends null
	// ResponseTimeout (5 s … 300 s; 0: the hub's default of 30 s) and
	// ConnectTimeout (how long the hub waits for an offline device).
	ResponseTimeout, ConnectTimeout time.Duration
}

// MethodResult is the device's answer as the hub relays it.
type MethodResult struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

// InvokeMethod calls a direct method on a device and waits for its
// answer. A hub error (device offline 404103, no answer 504101, …) is a
// *HubError.
func (c *Client) InvokeMethod(ctx context.Context, id string, call MethodCall) (MethodResult, error) {
	body := map[string]any{"methodName": call.Name, "payload": call.Payload}
	if call.Payload == nil {
		body["payload"] = nil
	}
	if call.ResponseTimeout > 0 {
		body["responseTimeoutInSeconds"] = call.ResponseTimeout.Seconds()
	}
	body["connectTimeoutInSeconds"] = call.ConnectTimeout.Seconds()
	path := "/twins/" + url.PathEscape(id) + "/methods?api-version=" + APIVersion
	var r MethodResult
	err := c.doTwinJSON(ctx, http.MethodPost, path, body, nil, &r)
	return r, err
}

// IsHubError reports whether err is a *HubError with the given number.
func IsHubError(err error, number int) bool {
	var he *HubError
	return errors.As(err, &he) && he.Number == number
}
