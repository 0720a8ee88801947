package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
)

const hub = "hub.example"

// fakeClock is the handler's clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newHandler(t *testing.T) (*Handler, *registry.Registry, *fakeClock) {
	t.Helper()
	reg, err := registry.New(context.Background(), memstore.New(), registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	srv := api.New(api.Deps{Registry: reg, HubName: hub})
	h := New(Options{Registry: reg, HubName: hub, API: srv, Now: clock.now, Idle: time.Hour, Lifetime: 12 * time.Hour, MaxSessions: 3})
	return h, reg, clock
}

func connString(t *testing.T, reg *registry.Registry, name string) string {
	t.Helper()
	p, ok := reg.Policy(name)
	if !ok {
		t.Fatalf("no policy %s", name)
	}
	return "HostName=" + hub + ";SharedAccessKeyName=" + p.Name + ";SharedAccessKey=" + p.PrimaryKey
}

type client struct {
	t      *testing.T
	h      http.Handler
	cookie string
	csrf   string
}

func (c *client) do(method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "https://"+hub+path, strings.NewReader(body))
	if c.cookie != "" {
		r.Header.Set("Cookie", c.cookie)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	return w
}

func signIn(t *testing.T, h http.Handler, credential string) *client {
	t.Helper()
	c := &client{t: t, h: h}
	body, _ := json.Marshal(map[string]string{"credential": credential})
	w := c.do("POST", "/ui/session", string(body), map[string]string{"Origin": "https://" + hub})
	if w.Code != 200 {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	res := w.Result()
	for _, ck := range res.Cookies() {
		if ck.Name == CookieName {
			if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || ck.Path != "/" {
				t.Errorf("cookie %+v", ck)
			}
			c.cookie = ck.Name + "=" + ck.Value
		}
	}
	var info sessionInfo
	_ = json.Unmarshal(w.Body.Bytes(), &info)
	c.csrf = info.CSRF
	if c.cookie == "" || c.csrf == "" {
		t.Fatalf("no session: %s", w.Body)
	}
	return c
}

func TestSessionAuthorisesTheAPI(t *testing.T) {
	h, reg, _ := newHandler(t)
	c := signIn(t, h, connString(t, reg, "iothubowner"))
	if w := c.do("GET", "/devices/?api-version="+api.APIVersion, "", nil); w.Code != 200 {
		t.Fatalf("list with a session: %d %s", w.Code, w.Body)
	}
	put := `{"deviceId":"d1"}`
	path := "/devices/d1?api-version=" + api.APIVersion
	if w := c.do("PUT", path, put, nil); w.Code != http.StatusForbidden {
		t.Errorf("PUT without CSRF: %d %s", w.Code, w.Body)
	}
	if w := c.do("PUT", path, put, map[string]string{CSRFHeader: c.csrf + "x"}); w.Code != http.StatusForbidden {
		t.Errorf("PUT with a wrong CSRF token: %d", w.Code)
	}
	if w := c.do("PUT", path, put, map[string]string{CSRFHeader: c.csrf, "Origin": "https://other.example"}); w.Code != http.StatusForbidden {
		t.Errorf("PUT from another origin: %d", w.Code)
	}
	if _, err := reg.Get(context.Background(), "d1"); err == nil {
		t.Fatal("a refused PUT created the device")
	}
	if w := c.do("PUT", path, put, map[string]string{CSRFHeader: c.csrf, "Origin": "https://" + hub}); w.Code != 200 {
		t.Fatalf("PUT with the token: %d %s", w.Code, w.Body)
	}
	// The change is recorded as the session's policy.
	if d, _ := reg.Get(context.Background(), "d1"); d.DeviceID != "d1" {
		t.Errorf("device %+v", d)
	}
	// Without the cookie: the API's own 401.
	anon := &client{t: t, h: h}
	if w := anon.do("GET", "/devices/?api-version="+api.APIVersion, "", nil); w.Code != 401 {
		t.Errorf("no session: %d", w.Code)
	}
	// A forged cookie: 401 and the cookie cleared.
	forged := &client{t: t, h: h, cookie: CookieName + "=abc"}
	if w := forged.do("GET", "/devices/?api-version="+api.APIVersion, "", nil); w.Code != 401 || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") ||
		w.Header().Get(SessionEndedHeader) == "" {
		t.Errorf("forged session: %d %v", w.Code, w.Header())
	}
}

func TestPolicyRightsApplyNow(t *testing.T) {
	h, reg, _ := newHandler(t)
	ro := signIn(t, h, connString(t, reg, "registryRead"))
	path := "/devices/d2?api-version=" + api.APIVersion
	if w := ro.do("PUT", path, `{}`, map[string]string{CSRFHeader: ro.csrf}); w.Code != 401 || !strings.Contains(w.Body.String(), "lacks RegistryWrite") ||
		w.Header().Get(SessionEndedHeader) != "" {
		t.Errorf("a registryRead session writes: %d %s %v", w.Code, w.Body, w.Header())
	}
	if w := ro.do("GET", "/ui/session", "", nil); !strings.Contains(w.Body.String(), `"rights":["RegistryRead"]`) {
		t.Errorf("session info %s", w.Body)
	}
	// Rights granted later count at once; renewing the key ends the session.
	if _, err := reg.UpdatePolicyRights(context.Background(), "registryRead", registry.RegistryRead|registry.RegistryWrite, "test"); err != nil {
		t.Fatal(err)
	}
	if w := ro.do("PUT", path, `{}`, map[string]string{CSRFHeader: ro.csrf}); w.Code != 200 {
		t.Errorf("after the grant: %d %s", w.Code, w.Body)
	}
	if _, err := reg.RenewPolicyKey(context.Background(), "registryRead", registry.PrimarySlot, "test"); err != nil {
		t.Fatal(err)
	}
	if w := ro.do("GET", "/devices/?api-version="+api.APIVersion, "", nil); w.Code != 401 {
		t.Errorf("after the key renewal: %d", w.Code)
	}
	if w := ro.do("GET", "/", "", nil); !strings.Contains(w.Body.String(), `id="signin"`) {
		t.Error("after the key renewal the application is still served")
	}
}

func TestSessionEnds(t *testing.T) {
	h, reg, clock := newHandler(t)
	cred := connString(t, reg, "iothubowner")
	c := signIn(t, h, cred)
	if w := c.do("GET", "/", "", nil); !strings.Contains(w.Body.String(), "/ui/app.js") {
		t.Fatalf("signed in, / is %s", w.Body)
	}
	if w := c.do("GET", "/ui/fleet.js", "", nil); w.Code != 200 || w.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("asset: %d %v", w.Code, w.Header())
	}
	// idle expiry
	clock.add(61 * time.Minute)
	if w := c.do("GET", "/ui/fleet.js", "", nil); w.Code != 401 {
		t.Errorf("after an idle hour: %d", w.Code)
	}
	// absolute lifetime, even when used
	c = signIn(t, h, cred)
	for range 13 {
		clock.add(59 * time.Minute)
		c.do("GET", "/ui/session", "", nil)
	}
	if w := c.do("GET", "/ui/session", "", nil); w.Code != 401 {
		t.Errorf("after 12 h: %d", w.Code)
	}
	// sign-out needs the CSRF token, then ends the session
	c = signIn(t, h, cred)
	if w := c.do("DELETE", "/ui/session", "", nil); w.Code != 403 {
		t.Errorf("sign-out without CSRF: %d", w.Code)
	}
	if w := c.do("DELETE", "/ui/session", "", map[string]string{CSRFHeader: c.csrf}); w.Code != 204 {
		t.Errorf("sign-out: %d", w.Code)
	}
	if w := c.do("GET", "/ui/session", "", nil); w.Code != 401 {
		t.Errorf("after sign-out: %d", w.Code)
	}
	// at most MaxSessions (3) are held; the one idle longest goes first
	first := signIn(t, h, cred)
	clock.add(time.Minute)
	for range 3 {
		signIn(t, h, cred)
	}
	if n := h.Sessions(); n != 3 {
		t.Errorf("%d sessions held, want 3", n)
	}
	if w := first.do("GET", "/ui/session", "", nil); w.Code != 401 {
		t.Errorf("the oldest session survived: %d", w.Code)
	}
}

func TestSignIn(t *testing.T) {
	h, reg, _ := newHandler(t)
	owner, _ := reg.Policy("iothubowner")
	for _, c := range []struct {
		name, cred, want string
	}{
		{"empty", "", "paste a connection string"},
		{"wrong key", "HostName=" + hub + ";SharedAccessKeyName=iothubowner;SharedAccessKey=bm9wZQ==", "name or key is wrong"},
		{"unknown policy", "HostName=" + hub + ";SharedAccessKeyName=nobody;SharedAccessKey=" + owner.PrimaryKey, "name or key is wrong"},
		{"other hub", "HostName=other.example;SharedAccessKeyName=iothubowner;SharedAccessKey=" + owner.PrimaryKey, "this hub is " + hub},
		{"device string", "HostName=" + hub + ";DeviceId=d;SharedAccessKey=" + owner.PrimaryKey, "device connection string"},
		{"bare wrong key", "bm9wZQ==", "no shared access policy has this key"},
		{"device-only policy", connString(t, reg, "device"), "only DeviceConnect"},
		{"garbage", "a;b", "has no '='"},
	} {
		body, _ := json.Marshal(map[string]string{"credential": c.cred})
		w := (&client{t: t, h: h}).do("POST", "/ui/session", string(body), nil)
		if w.Code != 401 || !strings.Contains(w.Body.String(), c.want) || w.Header().Get("Set-Cookie") != "" {
			t.Errorf("%s: %d %s", c.name, w.Code, w.Body)
		}
	}
	// The key alone finds its policy; the secondary key works too.
	c := signIn(t, h, owner.SecondaryKey)
	if w := c.do("GET", "/ui/session", "", nil); !strings.Contains(w.Body.String(), `"policy":"iothubowner"`) {
		t.Errorf("session %s", w.Body)
	}
	// Not JSON, or from another origin: refused.
	if w := (&client{t: t, h: h}).do("POST", "/ui/session", "credential=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); w.Code != 415 {
		t.Errorf("form post: %d", w.Code)
	}
	if w := (&client{t: t, h: h}).do("POST", "/ui/session", `{"credential":"`+owner.PrimaryKey+`"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}); w.Code != 403 {
		t.Errorf("cross-site sign-in: %d", w.Code)
	}
}

// FuzzSignIn: no credential panics the sign-in, and only a policy's own
// key signs in.
func FuzzSignIn(f *testing.F) {
	reg, err := registry.New(context.Background(), memstore.New(), registry.Options{HubName: hub})
	if err != nil {
		f.Fatal(err)
	}
	owner, _ := reg.Policy("iothubowner")
	for _, s := range []string{"", "x", "a;b", "HostName=;SharedAccessKeyName=;SharedAccessKey=", "HostName=" + hub + ";SharedAccessKeyName=iothubowner;SharedAccessKey=bm9wZQ==",
		"HostName=h;DeviceId=d;SharedAccessKey=k", owner.PrimaryKey + "x", ";;;=;=", "SharedAccessKeyName=iothubowner;SharedAccessKey=a=b=c"} {
		f.Add(s)
	}
	keys := map[string]bool{}
	for _, p := range reg.Policies() {
		keys[p.PrimaryKey], keys[p.SecondaryKey] = true, true
	}
	f.Fuzz(func(t *testing.T, cred string) {
		p, _, err := credentialPolicy(reg, hub, cred)
		if err != nil {
			return
		}
		if !strings.Contains(cred, p.PrimaryKey) && !strings.Contains(cred, p.SecondaryKey) {
			t.Fatalf("%q signed in as %s without its key", cred, p.Name)
		}
	})
}

// blockingTail is an event feed that sends one event and then waits for
// its request to end.
type blockingTail struct{}

func (blockingTail) Tail(ctx context.Context, _ string, _ []string, fn func(json.RawMessage)) error {
	fn(json.RawMessage(`{"eventType":"Microsoft.Devices.DeviceConnected"}`))
	<-ctx.Done()
	return ctx.Err()
}

// Signing out ends the session's open event streams.
func TestSignOutEndsStreams(t *testing.T) {
	reg, err := registry.New(context.Background(), memstore.New(), registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{Registry: reg, HubName: hub, API: api.New(api.Deps{Registry: reg, HubName: hub, Events: blockingTail{}})})
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	c := signIn(t, h, connString(t, reg, "iothubowner"))
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/events", nil)
	req.Header.Set("Cookie", c.cookie)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, res.Body)
		ended <- err
	}()
	select {
	case err := <-ended:
		t.Fatalf("the stream ended before sign-out: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if w := c.do("DELETE", "/ui/session", "", map[string]string{CSRFHeader: c.csrf}); w.Code != 204 {
		t.Fatalf("sign-out: %d", w.Code)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream outlived the sign-out")
	}
}
