package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/registry"
)

const q = "?api-version=2021-04-12"

// nodeSDKUpdate is what azure-iothub 1.16.6 sends for registry.update()
// (azure-sdk-wire §6): the device from GET merged over the SDK's defaults,
// cloudToDeviceMessageCount as a string, nulls, and a date without "Z".
const nodeSDKUpdate = `{"deviceId":"dev1","generationId":"639000000000001234","etag":"Mg==","connectionState":"disconnected","status":"disabled","statusReason":null,"connectionStateUpdatedTime":"0001-01-01T00:00:00","statusUpdatedTime":"0001-01-01T00:00:00Z","lastActivityTime":"2026-03-01T11:59:00.1234567Z","cloudToDeviceMessageCount":"0","capabilities":{"iotEdge":false},"authentication":{"symmetricKey":{"primaryKey":null,"secondaryKey":null},"x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"type":"sas"}}`

// nodeSDKCreate is the SDK's create body.
const nodeSDKCreate = `{"deviceId":"dev2","status":"enabled","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}}`

func TestRegistryREST(t *testing.T) {
	type check func(t *testing.T, e *env, w *httptest.ResponseRecorder)
	tests := []struct {
		name   string
		req    func(e *env) req
		status int
		code   string // ErrorCode for errors
		msg    string // substring of the error text
		check  check
	}{
		{
			name: "get",
			req: func(e *env) req {
				return req{Method: "GET", Path: "/devices/dev1" + q, Header: map[string]string{"Request-Id": "5f0a-11"}}
			},
			status: 200,
			check: func(t *testing.T, e *env, w *httptest.ResponseRecorder) {
				wantJSON(t, w)
				if got := w.Header().Get("ETag"); got != `"`+e.dev1.ETag+`"` {
					t.Errorf("ETag header %q, want %q", got, `"`+e.dev1.ETag+`"`)
				}
				if got := w.Header().Get("x-ms-request-id"); got != "5f0a-11" {
					t.Errorf("x-ms-request-id %q, want the echoed Request-Id", got)
				}
				d := decode[registry.Device](t, w)
				if d.DeviceID != "dev1" || d.Authentication.SymmetricKey != e.dev1.Authentication.SymmetricKey || d.ConnectionState != "Disconnected" {
					t.Errorf("device %+v", d)
				}
				if !strings.Contains(w.Body.String(), `"statusUpdatedTime":"0001-01-01T00:00:00Z"`) || !strings.Contains(w.Body.String(), `"statusReason":null`) {
					t.Errorf("body not in IoT Hub shape: %s", w.Body.String())
				}
			},
		},
		{name: "get missing", req: func(e *env) req { return req{Method: "GET", Path: "/devices/nope" + q} },
			status: 404, code: "DeviceNotFound", msg: "device 'nope' is not registered"},
		{name: "list", req: func(e *env) req { return req{Method: "GET", Path: "/devices/" + q} }, status: 200,
			check: func(t *testing.T, e *env, w *httptest.ResponseRecorder) {
				if ds := decode[[]registry.Device](t, w); len(ds) != 1 || ds[0].DeviceID != "dev1" {
					t.Errorf("list %+v", ds)
				}
			}},
		{name: "list without slash", req: func(e *env) req { return req{Method: "GET", Path: "/devices" + q + "&top=5"} }, status: 200},
		{name: "list bad top", req: func(e *env) req { return req{Method: "GET", Path: "/devices/" + q + "&top=0"} },
			status: 400, code: "ArgumentInvalid", msg: "top"},
		{name: "create (Node SDK body)", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/dev2" + q, Body: nodeSDKCreate} }, status: 200,
			check: func(t *testing.T, e *env, w *httptest.ResponseRecorder) {
				d := decode[registry.Device](t, w)
				k := d.Authentication.SymmetricKey
				if d.DeviceID != "dev2" || d.Status != "enabled" || k.PrimaryKey == "" || k.SecondaryKey == "" || d.GenerationID == "" {
					t.Errorf("created %+v", d)
				}
				if w.Header().Get("ETag") != `"`+d.ETag+`"` {
					t.Errorf("ETag header %q for etag %q", w.Header().Get("ETag"), d.ETag)
				}
				if _, ok := e.reg.Device("dev2"); !ok {
					t.Error("not in the registry")
				}
			}},
		{name: "create id from path", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/dev3" + q, Body: `{"status":"Disabled"}`} }, status: 200,
			check: func(t *testing.T, e *env, w *httptest.ResponseRecorder) {
				if d := decode[registry.Device](t, w); d.DeviceID != "dev3" || d.Status != "disabled" {
					t.Errorf("created %+v", d)
				}
			}},
		{name: "create existing", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/dev1" + q, Body: `{"deviceId":"dev1"}`} },
			status: 409, code: "DeviceAlreadyExists"},
		{name: "create percent-encoded id", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/a%23b%3F%25" + q, Body: `{}`} }, status: 200,
			check: func(t *testing.T, e *env, w *httptest.ResponseRecorder) {
				if d := decode[registry.Device](t, w); d.DeviceID != "a#b?%" {
					t.Errorf("id %q, want a#b?%%", d.DeviceID)
				}
				if w2 := e.do(req{Method: "GET", Path: "/devices/a%23b%3F%25" + q}); w2.Code != 200 {
					t.Errorf("GET back: %d %s", w2.Code, w2.Body)
				}
			}},
		{name: "create with encoded slash", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/dev%2Fx" + q, Body: `{}`} },
			status: 400, code: "ArgumentInvalid", msg: `"dev/x" has the character '/'`},
		{name: "create dot-dot id", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/.." + q, Body: `{}`} }, status: 200},
		{name: "bad id", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/a%20b" + q, Body: `{}`} },
			status: 400, code: "ArgumentInvalid", msg: "character ' '"},
		{name: "body id mismatch", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/dev9" + q, Body: `{"deviceId":"dev8"}`} },
			status: 400, code: "ArgumentInvalid", msg: "does not match"},
		{name: "bad JSON", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/dev9" + q, Body: `{"deviceId":"dev9",`} },
			status: 400, code: "ArgumentInvalid", msg: "invalid JSON"},
		{name: "wrong JSON type", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/dev9" + q, Body: `{"status":1}`} },
			status: 400, code: "ArgumentInvalid", msg: "status: expected a string"},
		{name: "empty body", req: func(e *env) req { return req{Method: "PUT", Path: "/devices/dev9" + q} },
			status: 400, code: "ArgumentInvalid", msg: "body is empty"},
		{name: "body too large", req: func(e *env) req {
			return req{Method: "PUT", Path: "/devices/dev9" + q, Body: `{"statusReason":"` + strings.Repeat("x", 70000) + `"}`}
		}, status: 413, code: "RequestEntityTooLarge"},
		{name: "not JSON content type", req: func(e *env) req {
			return req{Method: "PUT", Path: "/devices/dev9" + q, Body: `{}`, Header: map[string]string{"Content-Type": "text/plain"}}
		}, status: 415, code: "UnsupportedMediaType", msg: "application/json"},
		{name: "x509 thumbprint too short", req: func(e *env) req {
			return req{Method: "PUT", Path: "/devices/dev9" + q, Body: `{"authentication":{"type":"selfSigned","x509Thumbprint":{"primaryThumbprint":"AB"}}}`}
		}, status: 400, code: "ArgumentInvalid", msg: "invalid thumbprint"},
		{name: "x509 self-signed, type left out (the service SDK's shape)", req: func(e *env) req {
			return req{Method: "PUT", Path: "/devices/dev9" + q, Body: `{"deviceId":"dev9","authentication":{"symmetricKey":{"primaryKey":null,"secondaryKey":null},"x509Thumbprint":{"primaryThumbprint":"` + strings.Repeat("ab", 32) + `","secondaryThumbprint":null}}}`}
		}, status: 200, check: func(t *testing.T, e *env, w *httptest.ResponseRecorder) {
			d := decode[registry.Device](t, w)
			if a := d.Authentication; a.Type != "selfSigned" || *a.X509Thumbprint.PrimaryThumbprint != strings.Repeat("AB", 32) || a.SymmetricKey.PrimaryKey != "" {
				t.Fatalf("authentication %+v", a)
			}
			if !strings.Contains(w.Body.String(), `"type":"selfSigned"`) || !strings.Contains(w.Body.String(), `"secondaryThumbprint":null`) {
				t.Fatalf("body %s", w.Body)
			}
		}},
		{name: "replace (Node SDK update, If-Match *)", req: func(e *env) req {
			return req{Method: "PUT", Path: "/devices/dev1" + q, Body: nodeSDKUpdate, Header: map[string]string{"If-Match": `"*"`}}
		}, status: 200, check: func(t *testing.T, e *env, w *httptest.ResponseRecorder) {
			d := decode[registry.Device](t, w)
			if d.Status != "disabled" || d.ETag == e.dev1.ETag || d.GenerationID != e.dev1.GenerationID ||
				d.Authentication.SymmetricKey != e.dev1.Authentication.SymmetricKey {
				t.Errorf("replaced %+v", d)
			}
			if c, _ := e.reg.Device("dev1"); c.Status != "disabled" {
				t.Error("registry cache not updated")
			}
		}},
		{name: "replace with etag", req: func(e *env) req {
			return req{Method: "PUT", Path: "/devices/dev1" + q, Body: `{"status":"disabled"}`, Header: map[string]string{"If-Match": `"` + e.dev1.ETag + `"`}}
		}, status: 200},
		{name: "replace with stale etag", req: func(e *env) req {
			return req{Method: "PUT", Path: "/devices/dev1" + q, Body: `{"status":"disabled"}`, Header: map[string]string{"If-Match": `"OTk5"`}}
		}, status: 412, code: "PreconditionFailed", msg: "changed since you read it"},
		{name: "replace missing", req: func(e *env) req {
			return req{Method: "PUT", Path: "/devices/ghost" + q, Body: `{}`, Header: map[string]string{"If-Match": "*"}}
		}, status: 404, code: "DeviceNotFound"},
		{name: "delete", req: func(e *env) req { return req{Method: "DELETE", Path: "/devices/dev1" + q} }, status: 204,
			check: func(t *testing.T, e *env, w *httptest.ResponseRecorder) {
				if w2 := e.do(req{Method: "GET", Path: "/devices/dev1" + q}); w2.Code != 404 {
					t.Errorf("GET after delete: %d", w2.Code)
				}
			}},
		{name: "delete with etag", req: func(e *env) req {
			return req{Method: "DELETE", Path: "/devices/dev1" + q, Header: map[string]string{"If-Match": `"` + e.dev1.ETag + `"`}}
		}, status: 204},
		{name: "delete with stale etag", req: func(e *env) req {
			return req{Method: "DELETE", Path: "/devices/dev1" + q, Header: map[string]string{"If-Match": `"OTk5"`}}
		}, status: 412, code: "PreconditionFailed"},
		{name: "delete missing", req: func(e *env) req {
			return req{Method: "DELETE", Path: "/devices/ghost" + q, Header: map[string]string{"If-Match": `"*"`}}
		},
			status: 404, code: "DeviceNotFound"},
		{name: "missing api-version", req: func(e *env) req { return req{Method: "GET", Path: "/devices/dev1"} },
			status: 400, code: "InvalidProtocolVersion", msg: "api-version query parameter is required"},
		{name: "wrong api-version", req: func(e *env) req { return req{Method: "GET", Path: "/devices/dev1?api-version=2018-06-30"} },
			status: 400, code: "InvalidProtocolVersion", msg: `"2018-06-30" is not supported`},
		{name: "no token", req: func(e *env) req { return req{Method: "GET", Path: "/devices/dev1" + q, Auth: "-"} },
			status: 401, code: "IotHubUnauthorizedAccess", msg: "no SharedAccessSignature token"},
		{name: "malformed token", req: func(e *env) req { return req{Method: "GET", Path: "/devices/dev1" + q, Auth: "Basic dXNlcg=="} },
			status: 401, code: "IotHubUnauthorizedAccess", msg: "malformed SAS token"},
		{name: "expired token", req: func(e *env) req {
			return req{Method: "GET", Path: "/devices/dev1" + q, Auth: e.tokenUntil("iothubowner", time.Now().Add(-time.Minute))}
		}, status: 401, code: "IotHubUnauthorizedAccess", msg: "SAS token expired at"},
		{name: "read-only policy writes", req: func(e *env) req {
			return req{Method: "PUT", Path: "/devices/dev9" + q, Body: `{}`, Auth: e.token("registryRead")}
		}, status: 401, code: "IotHubUnauthorizedAccess", msg: "policy 'registryRead' lacks RegistryWrite"},
		{name: "read-only policy deletes", req: func(e *env) req {
			return req{Method: "DELETE", Path: "/devices/dev1" + q, Auth: e.token("registryRead")}
		}, status: 401, code: "IotHubUnauthorizedAccess", msg: "lacks RegistryWrite"},
		{name: "read-only policy reads", req: func(e *env) req { return req{Method: "GET", Path: "/devices/dev1" + q, Auth: e.token("registryRead")} }, status: 200},
		{name: "service policy reads", req: func(e *env) req { return req{Method: "GET", Path: "/devices/" + q, Auth: e.token("service")} },
			status: 401, code: "IotHubUnauthorizedAccess", msg: "policy 'service' lacks RegistryRead"},
		{name: "method not allowed", req: func(e *env) req { return req{Method: "POST", Path: "/devices/dev1" + q, Body: `{}`} },
			status: 405, code: "MethodNotAllowed", check: func(t *testing.T, e *env, w *httptest.ResponseRecorder) {
				if w.Header().Get("Allow") != "GET, PUT, DELETE" {
					t.Errorf("Allow %q", w.Header().Get("Allow"))
				}
			}},
		{name: "modules", req: func(e *env) req { return req{Method: "GET", Path: "/devices/dev1/modules/m1" + q} },
			status: 404, code: "NotFound", msg: "not modules"},
		{name: "unknown path", req: func(e *env) req { return req{Method: "GET", Path: "/jobs/v2" + q} }, status: 404, code: "NotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			w := e.do(tc.req(e))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			if w.Header().Get("x-ms-request-id") == "" {
				t.Error("no x-ms-request-id")
			}
			if tc.code != "" {
				wantJSON(t, w)
				code, msg := azureCode(t, w)
				if code != tc.code || !strings.Contains(msg, tc.msg) {
					t.Fatalf("error %s;%s, want %s with %q", code, msg, tc.code, tc.msg)
				}
			}
			if tc.check != nil {
				tc.check(t, e, w)
			}
		})
	}
}

// TestServiceSDKSequence replays what an app using the Node service SDK
// does: create, get, update the got device with If-Match "*", delete.
func TestServiceSDKSequence(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(req{Method: "PUT", Path: "/devices/dev2" + q, Body: nodeSDKCreate})
	if w.Code != 200 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "GET", Path: "/devices/dev2" + q})
	if w.Code != 200 {
		t.Fatalf("get: %d %s", w.Code, w.Body)
	}
	// The SDK merges the answer over its defaults, then the app flips status.
	body := strings.Replace(w.Body.String(), `"status":"enabled"`, `"status":"disabled"`, 1)
	body = strings.Replace(body, `"cloudToDeviceMessageCount":0`, `"cloudToDeviceMessageCount":"0"`, 1)
	w = e.do(req{Method: "PUT", Path: "/devices/dev2" + q, Body: body, Header: map[string]string{"If-Match": `"*"`}})
	if w.Code != 200 {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	if d := decode[registry.Device](t, w); d.Status != "disabled" || d.StatusUpdatedTime.IsZero() {
		t.Fatalf("updated %+v", d)
	}
	w = e.do(req{Method: "DELETE", Path: "/devices/dev2" + q, Header: map[string]string{"If-Match": `"*"`}})
	if w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
}

func TestListTop(t *testing.T) {
	e := newEnv(t, nil)
	for _, id := range []string{"c", "a", "b"} {
		if w := e.do(req{Method: "PUT", Path: "/devices/" + id + q, Body: `{}`}); w.Code != 200 {
			t.Fatal(w.Body)
		}
	}
	w := e.do(req{Method: "GET", Path: "/devices/" + q + "&top=2"})
	ds := decode[[]registry.Device](t, w)
	if len(ds) != 2 || ds[0].DeviceID != "a" || ds[1].DeviceID != "b" {
		t.Fatalf("top=2 gave %+v", ds)
	}
}
