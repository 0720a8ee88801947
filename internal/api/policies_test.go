package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

func TestPolicyRoutes(t *testing.T) {
	e := newEnv(t, nil)

	w := e.do(req{Method: "GET", Path: "/api/v1/policies"})
	if w.Code != http.StatusOK {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	list := decode[api.PolicyList](t, w)
	if len(list.Value) != 5 || list.Value[0].Name != "device" || list.Value[0].PrimaryKey == "" {
		t.Fatalf("list: %+v", list)
	}

	// Only a policy with every right may read keys or manage policies.
	for _, p := range []string{"registryReadWrite", "service"} {
		w := e.do(req{Method: "GET", Path: "/api/v1/policies", Auth: e.token(p)})
		if code, msg := v1Code(t, w); w.Code != http.StatusUnauthorized || code != registry.CodeUnauthorized || !strings.Contains(msg, "lacks") {
			t.Errorf("%s lists policies: %d %s %s", p, w.Code, code, msg)
		}
	}

	w = e.do(req{Method: "POST", Path: "/api/v1/policies", Body: `{"keyName":"ops","rights":"RegistryRead, ServiceConnect"}`})
	if w.Code != http.StatusCreated || w.Header().Get("Location") != "/api/v1/policies/ops" {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	ops := decode[registry.Policy](t, w)
	if ops.Rights != registry.RegistryRead|registry.ServiceConnect || ops.PrimaryKey == "" {
		t.Fatalf("created %+v", ops)
	}
	w = e.do(req{Method: "POST", Path: "/api/v1/policies", Body: `{"keyName":"ops","rights":"RegistryRead"}`})
	if code, _ := v1Code(t, w); w.Code != http.StatusConflict || code != registry.CodePolicyAlreadyExists {
		t.Errorf("create again: %d %s", w.Code, w.Body)
	}
	for body, want := range map[string]string{
		`{"keyName":"x","rights":"Everything"}`:      "unknown right",
		`{"keyName":"x","rigths":"RegistryRead"}`:    "unknown field",
		`{"keyName":"x"}`:                            "at least one right",
		`{"keyName":"a b","rights":"RegistryRead"}`:  "character",
		`{"keyName":"x","rights":"RegistryRead"} {}`: "more than one",
	} {
		w := e.do(req{Method: "POST", Path: "/api/v1/policies", Body: body})
		if _, msg := v1Code(t, w); w.Code != http.StatusBadRequest || !strings.Contains(msg, want) {
			t.Errorf("create %s: %d %s, want 400 with %q", body, w.Code, msg, want)
		}
	}

	w = e.do(req{Method: "GET", Path: "/api/v1/policies/ops"})
	if got := decode[registry.Policy](t, w); w.Code != http.StatusOK || got != ops {
		t.Fatalf("show: %d %+v", w.Code, got)
	}
	w = e.do(req{Method: "GET", Path: "/api/v1/policies/nope"})
	if code, _ := v1Code(t, w); w.Code != http.StatusNotFound || code != registry.CodePolicyNotFound {
		t.Errorf("show missing: %d %s", w.Code, w.Body)
	}

	w = e.do(req{Method: "PATCH", Path: "/api/v1/policies/ops", Body: `{"rights":"DeviceConnect"}`})
	if got := decode[registry.Policy](t, w); w.Code != http.StatusOK || got.Rights != registry.DeviceConnect || got.PrimaryKey != ops.PrimaryKey {
		t.Fatalf("update: %d %+v", w.Code, got)
	}

	w = e.do(req{Method: "POST", Path: "/api/v1/policies/ops/renew-key", Body: `{"key":"secondary"}`})
	renewed := decode[registry.Policy](t, w)
	if w.Code != http.StatusOK || renewed.PrimaryKey != ops.PrimaryKey || renewed.SecondaryKey == ops.SecondaryKey {
		t.Fatalf("renew: %d %+v", w.Code, renewed)
	}
	w = e.do(req{Method: "POST", Path: "/api/v1/policies/ops/renew-key", Body: `{"key":"third"}`})
	if _, msg := v1Code(t, w); w.Code != http.StatusBadRequest || !strings.Contains(msg, "use primary, secondary, both or swap") {
		t.Errorf("renew third: %d %s", w.Code, msg)
	}

	// Renewing the owner's primary key while calling with it: the call
	// succeeds, the next one with the old key is refused, the secondary
	// keeps working.
	oldToken := e.token("iothubowner")
	owner, _ := e.reg.Policy("iothubowner")
	w = e.do(req{Method: "POST", Path: "/api/v1/policies/iothubowner/renew-key", Body: `{"key":"primary"}`, Auth: oldToken})
	if w.Code != http.StatusOK {
		t.Fatalf("renew owner primary: %d %s", w.Code, w.Body)
	}
	if w := e.do(req{Method: "GET", Path: "/api/v1/policies", Auth: oldToken}); w.Code != http.StatusUnauthorized {
		t.Errorf("old primary after renewal: %d", w.Code)
	}
	if w := e.do(req{Method: "GET", Path: "/api/v1/policies", Auth: sign(t, owner.SecondaryKey, "iothubowner")}); w.Code != http.StatusOK {
		t.Errorf("secondary after renewal of the primary: %d %s", w.Code, w.Body)
	}

	w = e.do(req{Method: "DELETE", Path: "/api/v1/policies/ops"})
	if w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "DELETE", Path: "/api/v1/policies/iothubowner"})
	if _, msg := v1Code(t, w); w.Code != http.StatusBadRequest || !strings.Contains(msg, "last one with all rights") {
		t.Errorf("delete the last owner: %d %s", w.Code, msg)
	}
	w = e.do(req{Method: "PUT", Path: "/api/v1/policies/x"})
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", w.Code)
	}
	w = e.do(req{Method: "POST", Path: "/api/v1/policies/x/rotate"})
	if w.Code != http.StatusNotFound {
		t.Errorf("unknown action: %d", w.Code)
	}
}

// A request marked by the local admin socket needs no token.
func TestLocalAdminSkipsTokens(t *testing.T) {
	e := newEnv(t, nil)
	r := httptest.NewRequest("GET", "/api/v1/policies", nil)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", w.Code)
	}
	r = httptest.NewRequest("GET", "/api/v1/policies", nil).WithContext(api.WithLocalAdmin(t.Context()))
	w = httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	var list api.PolicyList
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list.Value) != 5 {
		t.Fatalf("local admin: %d %s", w.Code, w.Body)
	}
}

func sign(t *testing.T, key, policy string) string {
	t.Helper()
	tok, err := sas.Sign(hub, key, policy, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
