package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// DecodeSubscription reads a subscription definition from JSON strictly
// (unknown members are errors), drops the hub-owned members
// (provisioningState, validation), applies defaults and validates it
// with o. The error is a *ValidationError listing every problem found, or
// a JSON syntax error alone when the text is not JSON.
//
// encoding/json reports only the first wrongly-typed or unknown member
// but decodes the rest; that one is listed together with everything
// Validate finds in the rest.
func DecodeSubscription(data []byte, o ValidateOptions) (Subscription, error) {
	return DecodeSubscriptionAs(data, o, "")
}

// DecodeSubscriptionAs is DecodeSubscription for a definition whose name
// may come from elsewhere (a URL): a definition without a name takes name
// before defaults (which derive from it) are applied.
func DecodeSubscriptionAs(data []byte, o ValidateOptions, name string) (Subscription, error) {
	var s Subscription
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var errs []FieldError
	if err := dec.Decode(&s); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Subscription{}, &ValidationError{Errors: []FieldError{{Message: "not valid JSON: " + err.Error()}}}
		}
		errs = append(errs, decodeError(err))
	}
	if dec.More() {
		return Subscription{}, &ValidationError{Errors: []FieldError{{Message: "not valid JSON: data after the object"}}}
	}
	s = s.Definition()
	if s.Name == "" {
		s.Name = name
	}
	s.ApplyDefaults()
	if err := s.ValidateWith(o); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			for _, fe := range ve.Errors {
				// A member of the wrong type was left unset; do not also
				// report it as missing.
				if len(errs) == 0 || fe.Field != errs[0].Field {
					errs = append(errs, fe)
				}
			}
		}
	}
	if len(errs) > 0 {
		return s, &ValidationError{Errors: errs}
	}
	return s, nil
}

// decodeError turns an encoding/json error into a FieldError with the path
// it names.
func decodeError(err error) FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return FieldError{Field: te.Field, Message: "must be " + jsonKind(te.Type.Kind().String()) + ", not " + te.Value}
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return FieldError{Message: "unknown member " + name}
	}
	return FieldError{Message: msg}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a number"
}
