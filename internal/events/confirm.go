package events

import "time"

// ConfirmValidation completes a manual validation: someone opened the
// validation URL (Event Grid) or called the WebHook-Request-Callback URL
// (CloudEvents) with code at now. It returns the subscription to store:
//
//   - AwaitingManualAction, right code, in time: Succeeded, nil.
//   - already Succeeded by this code: unchanged, nil (a browser may open
//     the URL twice).
//   - wrong code: unchanged, ErrValidationCode.
//   - right code too late: Failed, ErrValidationExpired.
//   - anything else: unchanged, ErrNotAwaitingValidation.
func ConfirmValidation(s Subscription, code string, now time.Time) (Subscription, error) {
	v := s.Validation
	if v == nil || v.Code == "" {
		return s, ErrNotAwaitingValidation
	}
	if !sameCode(code, v.Code) {
		return s, ErrValidationCode
	}
	switch s.ProvisioningState {
	case Succeeded:
		return s, nil
	case AwaitingManualAction:
	default:
		return s, ErrNotAwaitingValidation
	}
	c := *v
	s.Validation = &c
	if !c.ExpiresAt.IsZero() && now.After(c.ExpiresAt) {
		s.ProvisioningState = Failed
		c.Error = ErrValidationExpired.Error()
		return s, ErrValidationExpired
	}
	s.ProvisioningState = Succeeded
	c.ValidatedAt = now
	c.Manual = true
	return s, nil
}

// ExpireValidation turns a subscription whose manual validation window
// has passed at now into Failed; changed says whether it did.
func ExpireValidation(s Subscription, now time.Time) (_ Subscription, changed bool) {
	v := s.Validation
	if s.ProvisioningState != AwaitingManualAction || v == nil || v.ExpiresAt.IsZero() || !now.After(v.ExpiresAt) {
		return s, false
	}
	c := *v
	c.Error = ErrValidationExpired.Error()
	s.Validation = &c
	s.ProvisioningState = Failed
	return s, true
}

// NeedsHandshake reports whether s must be validated (again) before it
// receives events: it never was, or its webhook endpoint or schema
// changed since (the handshake depends on both), or anything of another
// kind of destination changed since it was checked.
func (s Subscription) NeedsHandshake() bool {
	v := s.Validation
	if v == nil || v.Method != s.ValidationMethod() {
		return true
	}
	if s.Destination.Kind() == EndpointWebHook {
		return v.Endpoint != s.Destination.Properties.EndpointURL
	}
	return v.Checked != s.destinationDigest()
}
