package events

import "time"

// ProvisioningState is a subscription's state, with Event Grid's values
// (EventSubscriptionProvisioningState) plus Disabled.
type ProvisioningState string

const (
	// Creating / Updating: the endpoint handshake is running.
	Creating ProvisioningState = "Creating"
	Updating ProvisioningState = "Updating"
	Deleting ProvisioningState = "Deleting"
	// Succeeded: validated; events are delivered.
	Succeeded ProvisioningState = "Succeeded"
	Canceled  ProvisioningState = "Canceled"
	// Failed: the handshake failed or manual validation expired; nothing
	// is delivered until the subscription is updated (which validates
	// again).
	Failed ProvisioningState = "Failed"
	// AwaitingManualAction: the endpoint accepted the validation request
	// without proving ownership; someone must GET the validation URL (or,
	// for CloudEvents, call the WebHook-Request-Callback URL) before
	// Validation.ExpiresAt.
	AwaitingManualAction ProvisioningState = "AwaitingManualAction"
	// Disabled (Tether): validated, but delivery is paused by an operator.
	Disabled ProvisioningState = "Disabled"
)

// Validation methods.
const (
	// MethodValidationEvent: Event Grid's SubscriptionValidationEvent POST.
	MethodValidationEvent = "SubscriptionValidationEvent"
	// MethodAbuseProtection: the CloudEvents webhook OPTIONS handshake.
	MethodAbuseProtection = "WebHookAbuseProtection"
)

// ValidationState records the last endpoint handshake of a subscription,
// or the last check of a destination of another kind (WithCheck).
//
// Code proves receipt of the validation request; it is stored so that the
// validation URL can be checked, and must not be served by the API (a
// caller who can read it could validate an endpoint that never saw it).
type ValidationState struct {
	Method string `json:"method"`
	// Endpoint is the URL the handshake was made with (a new endpoint
	// needs a new handshake), or the target of another kind of
	// destination (Destination.Target).
	Endpoint string `json:"endpoint"`
	// Checked identifies the destination definition a check of a
	// non-webhook destination was made for: any change needs a new check.
	Checked string `json:"checked,omitempty"`
	Code    string `json:"code,omitempty"`
	// URL is the validation URL sent to the endpoint (validationUrl, or
	// WebHook-Request-Callback).
	URL         string    `json:"url,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
	ValidatedAt time.Time `json:"validatedAt,omitzero"`
	// Manual is true when validation was completed through URL.
	Manual bool `json:"manual,omitempty"`
	// AllowedRate is WebHook-Allowed-Rate of a CloudEvents endpoint ("*"
	// or requests per minute), "" if it sent none.
	AllowedRate string `json:"allowedRate,omitempty"`
	// Error says why the handshake failed.
	Error string `json:"error,omitempty"`
}
