package connlog

import (
	"strings"
	"sync/atomic"
)

// Defaults of Resource.
const (
	DefaultSubscriptionID = "00000000-0000-0000-0000-000000000000"
	DefaultResourceGroup  = "tether"
	DefaultLocation       = "local"
	DefaultTenantID       = "00000000-0000-0000-0000-000000000000"
)

// Resource names the hub in Azure's terms, for the resource columns of
// every record. The zero value uses the defaults above and the hub name of
// each event.
type Resource struct {
	SubscriptionID string // default DefaultSubscriptionID
	ResourceGroup  string // default DefaultResourceGroup
	// Hub overrides the hub name taken from events (ConnectionEvent.Hub,
	// Change.Hub, which hold the host name: its first label is the name).
	Hub      string
	Location string // Location column, e.g. "westeurope"; default DefaultLocation
	TenantID string // TenantId column; default DefaultTenantID
}

func (r Resource) withDefaults() Resource {
	if r.SubscriptionID == "" {
		r.SubscriptionID = DefaultSubscriptionID
	}
	if r.ResourceGroup == "" {
		r.ResourceGroup = DefaultResourceGroup
	}
	if r.Location == "" {
		r.Location = DefaultLocation
	}
	if r.TenantID == "" {
		r.TenantID = DefaultTenantID
	}
	return r
}

// HubName is the Resource column for an event of hub host: Resource.Hub if
// set, else the first DNS label of host ("myhub.azure-devices.net" →
// "MYHUB"), upper case as Azure writes it. An empty host gives "TETHER".
func (r Resource) HubName(host string) string {
	name := r.Hub
	if name == "" {
		name, _, _ = strings.Cut(host, ".")
	}
	if name == "" {
		name = "tether"
	}
	return strings.ToUpper(name)
}

// ID is the ResourceId/_ResourceId of hub host:
// /SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/<HUB>,
// upper case as in AzureDiagnostics.
func (r Resource) ID(host string) string {
	r = r.withDefaults()
	return "/SUBSCRIPTIONS/" + strings.ToUpper(r.SubscriptionID) +
		"/RESOURCEGROUPS/" + strings.ToUpper(r.ResourceGroup) +
		"/PROVIDERS/" + ResourceProvider + "/" + ResourceType + "/" + r.HubName(host)
}

// stamp fills the resource and constant columns of rec for hub host.
func (r Resource) stamp(rec *Record, host string) {
	c := lastColumns.Load()
	if c == nil || c.res != r || c.host != host {
		c = r.columns(host)
		lastColumns.Store(c)
	}
	rec.Location = c.location
	rec.ResourceID = c.id
	rec.SubscriptionID = c.subscription
	rec.ResourceGroup = c.group
	rec.Resource = c.hub
	rec.ResourceProvider = ResourceProvider
	rec.ResourceType = ResourceType
	rec.Type = TableType
	rec.SourceSystem = SourceSystem
	rec.TenantID = c.tenant
}

// resourceColumns are the resource columns of the records of one
// Resource and hub host.
type resourceColumns struct {
	res                                            Resource
	host                                           string
	location, id, subscription, group, hub, tenant string
}

// lastColumns remembers the resource columns last made: a hub's records
// all have the same, and stamp reuses them instead of building the
// upper-case ResourceId for every record.
var lastColumns atomic.Pointer[resourceColumns]

func (r Resource) columns(host string) *resourceColumns {
	d := r.withDefaults()
	return &resourceColumns{
		res: r, host: host,
		location:     d.Location,
		id:           d.ID(host),
		subscription: d.SubscriptionID,
		group:        strings.ToUpper(d.ResourceGroup),
		hub:          d.HubName(host),
		tenant:       d.TenantID,
	}
}
