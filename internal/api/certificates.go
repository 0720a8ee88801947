package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/tether-hub/tether/internal/registry"
)

// CA certificates for X.509 device authentication, shaped like IoT Hub's
// certificate resource (Microsoft.Devices/IotHubs/certificates: a
// CertificateDescription with name, etag and properties; the verification
// code flow as generateVerificationCode and verify), served under
// /api/v1/certificates since Tether has no ARM endpoint:
//
//	GET    /api/v1/certificates                                   list (RegistryRead)
//	GET    /api/v1/certificates/{name}                            one (RegistryRead)
//	PUT    /api/v1/certificates/{name}                            register: {"properties":{"certificate":"<PEM|base64>","isVerified":false}} (RegistryWrite)
//	POST   /api/v1/certificates/{name}/generateVerificationCode   a new proof-of-possession code (RegistryWrite, If-Match)
//	POST   /api/v1/certificates/{name}/verify                     {"certificate":"<PEM|base64>"} signed by the CA, CN = the code (RegistryWrite, If-Match)
//	DELETE /api/v1/certificates/{name}                            (RegistryWrite, If-Match)

// CertificateList is the answer of GET /api/v1/certificates (ARM's
// CertificateListDescription).
type CertificateList struct {
	Value []registry.CACertificate `json:"value"`
}

// CertificateBody is what PUT /api/v1/certificates/{name} takes.
type CertificateBody struct {
	Properties struct {
		Certificate string `json:"certificate"`
		IsVerified  bool   `json:"isVerified"`
	} `json:"properties"`
}

// VerificationBody is what POST …/verify takes.
type VerificationBody struct {
	Certificate string `json:"certificate"`
}

const maxCertificateBody = 128 << 10

// certificates routes /api/v1/certificates{rest}.
func (s *Server) certificates(w http.ResponseWriter, r *http.Request, rest string) {
	if rest == "" || rest == "/" {
		if !allow(w, r, s.v1Error, http.MethodGet) {
			return
		}
		if _, ok := s.authorize(w, r, registry.RegistryRead, s.v1Error); ok {
			writeJSON(w, http.StatusOK, CertificateList{Value: s.d.Registry.CAs()})
		}
		return
	}
	seg, action, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	name, err := url.PathUnescape(seg)
	if err != nil || name == "" || strings.Contains(action, "/") {
		s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath())
		return
	}
	switch action {
	case "":
		if !allow(w, r, s.v1Error, http.MethodGet, http.MethodPut, http.MethodDelete) {
			return
		}
	case "generateVerificationCode", "verify":
		if !allow(w, r, s.v1Error, http.MethodPost) {
			return
		}
	default:
		s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath()+" (use generateVerificationCode or verify)")
		return
	}
	need := registry.RegistryWrite
	if r.Method == http.MethodGet {
		need = registry.RegistryRead
	}
	caller, ok := s.authorize(w, r, need, s.v1Error)
	if !ok {
		return
	}
	ctx, ifMatch := r.Context(), r.Header.Get("If-Match")
	var out registry.CACertificate
	status := http.StatusOK
	switch {
	case r.Method == http.MethodGet:
		out, err = s.d.Registry.CA(name)
	case r.Method == http.MethodDelete:
		if err = s.d.Registry.DeleteCA(ctx, name, ifMatch); err == nil {
			s.log.Info("CA certificate deleted", "name", name, "caller", caller)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	case r.Method == http.MethodPut:
		var in CertificateBody
		if !s.decodeStrict(w, r, &in, "a certificate: {\"properties\":{\"certificate\":\"<PEM or base64>\"}}") {
			return
		}
		if out, err = s.d.Registry.AddCA(ctx, name, []byte(in.Properties.Certificate), in.Properties.IsVerified); err == nil {
			status = http.StatusCreated
			s.log.Info("CA certificate registered", "name", name, "subject", out.Properties.Subject, "verified", out.Properties.IsVerified, "caller", caller)
		}
	case action == "generateVerificationCode":
		out, err = s.d.Registry.VerificationCode(ctx, name, ifMatch)
	default: // verify
		var in VerificationBody
		if !s.decodeStrict(w, r, &in, "a verification certificate: {\"certificate\":\"<PEM or base64>\"}") {
			return
		}
		if out, err = s.d.Registry.VerifyCA(ctx, name, ifMatch, []byte(in.Certificate)); err == nil {
			s.log.Info("CA certificate verified by proof of possession", "name", name, "caller", caller)
		}
	}
	if err != nil {
		s.fail(w, r, err, s.v1Error)
		return
	}
	w.Header().Set("ETag", `"`+out.ETag+`"`)
	writeJSON(w, status, out)
}

// decodeStrict reads a JSON body into v, refusing unknown fields; what
// names the expected shape in the error.
func (s *Server) decodeStrict(w http.ResponseWriter, r *http.Request, v any, what string) bool {
	body, ok := s.readBody(w, r, maxCertificateBody, s.v1Error)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, "the body is not "+what+": "+err.Error())
		return false
	}
	return true
}
