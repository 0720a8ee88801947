package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tether-hub/tether/internal/registry"
)

// APIVersion is the IoT Hub REST api-version served (the one the current
// service SDKs and az send).
const APIVersion = "2021-04-12"

const (
	maxDeviceBody = 64 << 10 // a device is < 1 KiB; anything near this is abuse
	maxListTop    = 1000     // IoT Hub returns at most 1000 identities per list
)

// registryCall serves /devices/ (one == false) and /devices/{seg}.
func (s *Server) registryCall(w http.ResponseWriter, r *http.Request, seg string, one bool) {
	methods := []string{http.MethodGet, http.MethodPost}
	if one {
		methods = []string{http.MethodGet, http.MethodPut, http.MethodDelete}
	}
	if !allow(w, r, s.azureError, methods...) {
		return
	}
	if !s.apiVersion(w, r) {
		return
	}
	need := registry.RegistryRead
	if r.Method != http.MethodGet {
		need = registry.RegistryWrite
	}
	policy, ok := s.authorize(w, r, need, s.azureError)
	if !ok {
		return
	}
	if !one {
		if r.Method == http.MethodPost {
			s.bulkDevices(w, r, policy)
		} else {
			s.listDevices(w, r)
		}
		return
	}
	id, ok := s.pathID(w, r, seg)
	if !ok {
		return
	}
	switch r.Method {
	case http.MethodGet:
		d, err := s.d.Registry.Get(r.Context(), id)
		if err != nil {
			s.fail(w, r, err, s.azureError)
			return
		}
		writeDevice(w, http.StatusOK, d)
	case http.MethodPut:
		s.putDevice(w, r, id, policy)
	case http.MethodDelete:
		if err := s.d.Registry.Delete(r.Context(), id, r.Header.Get("If-Match"), policy); err != nil {
			s.fail(w, r, err, s.azureError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// apiVersion answers 400 unless the request names the api-version served.
func (s *Server) apiVersion(w http.ResponseWriter, r *http.Request) bool {
	switch v := r.URL.Query().Get("api-version"); v {
	case APIVersion:
		return true
	case "":
		s.azureError(w, r, http.StatusBadRequest, "InvalidProtocolVersion",
			"the api-version query parameter is required; Tether serves api-version="+APIVersion)
	default:
		s.azureError(w, r, http.StatusBadRequest, "InvalidProtocolVersion",
			fmt.Sprintf("api-version %q is not supported; Tether serves api-version=%s", v, APIVersion))
	}
	return false
}

// pathID decodes a device id from a path segment.
func (s *Server) pathID(w http.ResponseWriter, r *http.Request, seg string) (string, bool) {
	id, err := url.PathUnescape(seg)
	if err != nil || id == "" {
		s.azureError(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid,
			"the device id in the URL is missing or not valid percent-encoding")
		return "", false
	}
	return id, true
}

// putDevice creates (no If-Match) or replaces (If-Match "*" or an etag).
func (s *Server) putDevice(w http.ResponseWriter, r *http.Request, id, policy string) {
	body, ok := s.readBody(w, r, maxDeviceBody, s.azureError)
	if !ok {
		return
	}
	d, err := registry.DecodeDevice(body)
	if err != nil {
		s.fail(w, r, err, s.azureError)
		return
	}
	switch d.DeviceID {
	case "":
		d.DeviceID = id
	case id:
	default:
		s.azureError(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid,
			fmt.Sprintf("deviceId %q in the body does not match %q in the URL", d.DeviceID, id))
		return
	}
	if ifMatch := r.Header.Get("If-Match"); ifMatch != "" {
		d, err = s.d.Registry.Replace(r.Context(), d, ifMatch, policy)
	} else {
		d, err = s.d.Registry.Create(r.Context(), d, policy)
	}
	if err != nil {
		s.fail(w, r, err, s.azureError)
		return
	}
	writeDevice(w, http.StatusOK, d)
}

// bulkDevices serves POST /devices: up to 100 creates, updates or deletes
// (the SDKs' addDevices, updateDevices, removeDevices), each succeeding or
// failing on its own. The answer is 200 with IoT Hub's
// BulkRegistryOperationResult; isSuccessful says whether all went through.
func (s *Server) bulkDevices(w http.ResponseWriter, r *http.Request, policy string) {
	body, ok := s.readBody(w, r, registry.MaxBulkDevices*maxDeviceBody/16, s.azureError)
	if !ok {
		return
	}
	ops, err := registry.DecodeBulk(body)
	if err != nil {
		s.fail(w, r, err, s.azureError)
		return
	}
	writeJSON(w, http.StatusOK, s.d.Registry.Bulk(r.Context(), ops, policy))
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	top := maxListTop
	if v := r.URL.Query().Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.azureError(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid,
				fmt.Sprintf("top %q is not a positive number", v))
			return
		}
		top = min(n, maxListTop)
	}
	devs, err := s.d.Registry.List(r.Context())
	if err != nil {
		s.fail(w, r, err, s.azureError)
		return
	}
	if len(devs) > top {
		devs = devs[:top]
	}
	writeJSON(w, http.StatusOK, devs)
}

func writeDevice(w http.ResponseWriter, status int, d registry.Device) {
	w.Header().Set("ETag", `"`+d.ETag+`"`)
	writeJSON(w, status, d)
}

// readBody reads a JSON request body of at most limit bytes, answering 415
// for another declared content type and 413 when it is too big.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64, fail errorWriter) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			fail(w, r, http.StatusUnsupportedMediaType, "UnsupportedMediaType",
				fmt.Sprintf("Content-Type %q is not supported: send application/json", ct))
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fail(w, r, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("the request body is larger than %d bytes", limit))
		return nil, false
	case err != nil:
		fail(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, "reading the request body failed: "+err.Error())
		return nil, false
	}
	return body, true
}
