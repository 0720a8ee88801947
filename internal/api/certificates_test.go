package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/x509auth"
)

// /api/v1/certificates: rights, shapes and every refusal.
func TestCertificatesAPI(t *testing.T) {
	e := newEnv(t, nil)
	ca, err := certs.NewCA("api CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"properties": map[string]any{"certificate": x509auth.EncodePEM(ca.Cert)}})
	put := req{Method: "PUT", Path: "/api/v1/certificates/fleet", Body: string(body)}

	for _, c := range []struct {
		name   string
		rq     req
		status int
		msg    string
	}{
		{"no token", req{Method: "GET", Path: "/api/v1/certificates", Auth: "-"}, 401, "no SharedAccessSignature"},
		{"read-only policy writes", req{Method: put.Method, Path: put.Path, Body: put.Body, Auth: e.token("registryRead")}, 401, "lacks RegistryWrite"},
		{"service policy reads", req{Method: "GET", Path: "/api/v1/certificates", Auth: e.token("service")}, 401, "lacks RegistryRead"},
		{"unknown field", req{Method: "PUT", Path: "/api/v1/certificates/x", Body: `{"certificate":"..."}`}, 400, "unknown field"},
		{"not a certificate", req{Method: "PUT", Path: "/api/v1/certificates/x", Body: `{"properties":{"certificate":"hello"}}`}, 400, "InvalidCertificate"},
		{"bad name", req{Method: "PUT", Path: "/api/v1/certificates/a%20b", Body: put.Body}, 400, "character ' '"},
		{"unknown action", req{Method: "POST", Path: "/api/v1/certificates/fleet/sign"}, 404, "generateVerificationCode or verify"},
		{"wrong method", req{Method: "POST", Path: "/api/v1/certificates/fleet"}, 405, "use GET or PUT or DELETE"},
		{"missing", req{Method: "GET", Path: "/api/v1/certificates/ghost"}, 404, "CertificateNotFound"},
	} {
		w := e.do(c.rq)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.msg) {
			t.Errorf("%s: %d %s; want %d with %q", c.name, w.Code, w.Body, c.status, c.msg)
		}
	}

	w := e.do(put)
	var got registry.CACertificate
	if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Name != "fleet" || got.Properties.IsVerified || w.Header().Get("ETag") != `"`+got.ETag+`"` {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	if w := e.do(put); w.Code != 409 || !strings.Contains(w.Body.String(), "CertificateAlreadyExists") {
		t.Fatalf("register twice: %d %s", w.Code, w.Body)
	}
	if w := e.do(req{Method: "POST", Path: "/api/v1/certificates/fleet/generateVerificationCode", Header: map[string]string{"If-Match": `"stale"`}}); w.Code != 412 {
		t.Fatalf("stale If-Match: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "POST", Path: "/api/v1/certificates/fleet/generateVerificationCode", Auth: e.token("registryReadWrite")})
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || len(got.Properties.VerificationCode) != 32 {
		t.Fatalf("code: %d %s", w.Code, w.Body)
	}
	proof, _ := ca.Leaf(got.Properties.VerificationCode, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	vb, _ := json.Marshal(api.VerificationBody{Certificate: string(proof.CertPEM)})
	w = e.do(req{Method: "POST", Path: "/api/v1/certificates/fleet/verify", Body: string(vb)})
	var verified registry.CACertificate
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &verified) != nil || !verified.Properties.IsVerified || verified.Properties.VerificationCode != "" {
		t.Fatalf("verify: %d %s", w.Code, w.Body)
	}
	var list api.CertificateList
	if w := e.do(req{Method: "GET", Path: "/api/v1/certificates", Auth: e.token("registryRead")}); w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list.Value) != 1 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	if w := e.do(req{Method: "DELETE", Path: "/api/v1/certificates/fleet"}); w.Code != 204 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if len(e.reg.CAs()) != 0 {
		t.Fatal("deleted CA still listed")
	}
}
