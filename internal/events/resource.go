package events

import "strings"

// Defaults of Resource; the same as the Connections log's (connlog), so the
// topic of an event equals the _ResourceId of the hub's log records.
const (
	DefaultSubscriptionID = "00000000-0000-0000-0000-000000000000"
	DefaultResourceGroup  = "tether"
)

// Resource names the hub in Azure's terms for the topic (Event Grid) or
// source (CloudEvents) of its events. The zero value uses the defaults
// above and the hub name of each event.
type Resource struct {
	SubscriptionID string // default DefaultSubscriptionID
	ResourceGroup  string // default DefaultResourceGroup
	// Hub overrides the hub name taken from events (ConnectionEvent.Hub,
	// Change.Hub hold the host name: its first label is the name).
	Hub string
}

// HubName is data.hubName for hub host: Resource.Hub if set, else the first
// DNS label of host as written ("egtesthub1.azure-devices.net" →
// "egtesthub1"; IoT Hub's samples show the name in its own case). An empty
// host gives "tether".
func (r Resource) HubName(host string) string {
	name := r.Hub
	if name == "" {
		name, _, _ = strings.Cut(host, ".")
	}
	if name == "" {
		name = "tether"
	}
	return name
}

// ID is the topic/source of hub host:
// /SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/<HUB>,
// upper case as IoT Hub's events show it.
func (r Resource) ID(host string) string {
	sub, rg := r.SubscriptionID, r.ResourceGroup
	if sub == "" {
		sub = DefaultSubscriptionID
	}
	if rg == "" {
		rg = DefaultResourceGroup
	}
	return strings.ToUpper("/SUBSCRIPTIONS/" + sub + "/RESOURCEGROUPS/" + rg +
		"/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/" + r.HubName(host))
}
