package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/tether-hub/tether/internal/registry"
)

const (
	maxC2DPayload = 64 << 10 // IoT Hub's C2D message size limit
	// maxMessageBody leaves room for base64 (4/3) and properties.
	maxMessageBody = 2 * maxC2DPayload
	maxMessageID   = 128
)

// messageRequest is the body of POST /api/v1/devices/{id}/messages. One of
// payload (text, sent as UTF-8) and payloadBase64 (bytes) may be set.
type messageRequest struct {
	Payload       *string           `json:"payload"`
	PayloadBase64 *string           `json:"payloadBase64"`
	Properties    map[string]string `json:"properties"`
	MessageID     string            `json:"messageId"`
}

type messageResponse struct {
	MessageID string `json:"messageId"`
}

// postMessage queues a C2D message: 202 with its message id.
func (s *Server) postMessage(w http.ResponseWriter, r *http.Request, seg string) {
	if _, ok := s.authorize(w, r, registry.ServiceConnect, s.v1Error); !ok {
		return
	}
	if s.d.C2D == nil {
		s.unavailable(w, r, "cloud-to-device messaging")
		return
	}
	id, err := url.PathUnescape(seg)
	if err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, "the device id in the URL is not valid percent-encoding")
		return
	}
	body, ok := s.readBody(w, r, maxMessageBody, s.v1Error)
	if !ok {
		return
	}
	req, payload, err := decodeMessage(body)
	if err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return
	}
	if len(payload) > maxC2DPayload {
		s.v1Error(w, r, http.StatusRequestEntityTooLarge, "MessageTooLarge",
			fmt.Sprintf("the payload is %d bytes; cloud-to-device messages are limited to %d", len(payload), maxC2DPayload))
		return
	}
	if _, ok := s.d.Registry.Device(id); !ok {
		s.v1Error(w, r, http.StatusNotFound, registry.CodeDeviceNotFound, fmt.Sprintf("device '%s' is not registered", id))
		return
	}
	if req.MessageID == "" {
		req.MessageID = newUUID()
	}
	if err := s.d.C2D.SendC2D(r.Context(), id, payload, req.Properties, req.MessageID); err != nil {
		s.fail(w, r, err, s.v1Error)
		return
	}
	writeJSON(w, http.StatusAccepted, messageResponse{MessageID: req.MessageID})
}

// decodeMessage parses and checks a message request strictly: unknown
// fields are errors, so a misspelt "properites" is not silently dropped.
func decodeMessage(body []byte) (messageRequest, []byte, error) {
	var req messageRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, nil, fmt.Errorf("invalid message JSON: %v", err)
	}
	if dec.More() {
		return req, nil, fmt.Errorf("invalid message JSON: data after the object")
	}
	var payload []byte
	switch {
	case req.Payload != nil && req.PayloadBase64 != nil:
		return req, nil, fmt.Errorf("set payload or payloadBase64, not both")
	case req.Payload != nil:
		payload = []byte(*req.Payload)
	case req.PayloadBase64 != nil:
		var err error
		if payload, err = base64.StdEncoding.DecodeString(*req.PayloadBase64); err != nil {
			return req, nil, fmt.Errorf("payloadBase64 is not valid base64: %v", err)
		}
	}
	for k := range req.Properties {
		if k == "" {
			return req, nil, fmt.Errorf("a property name is empty")
		}
	}
	if len(req.MessageID) > maxMessageID {
		return req, nil, fmt.Errorf("messageId is %d characters long; the limit is %d", len(req.MessageID), maxMessageID)
	}
	return req, payload, nil
}
