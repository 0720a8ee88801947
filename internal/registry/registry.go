package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/internal/x509auth"
)

// Options configure a Registry.
type Options struct {
	// HubName is the hub's host name: the sr of service tokens and the Hub
	// of every Change.
	HubName string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnChange, if set, is called after each successful write, under the
	// registry's write lock (so in write order). It must not call write
	// methods of the Registry.
	OnChange func(Change)
	// OnTwinChange, if set, is called after each twin write, in the order
	// of the device's writes, under the device's twin lock. It must not
	// write the same twin.
	OnTwinChange func(TwinChange)
	// OnPolicyChange, if set, is called after each policy write, under
	// the registry's write lock.
	OnPolicyChange func(PolicyChange)
	// LiveState, if set, fills the read-only connection fields of devices
	// served by Get and List (presence owns them).
	LiveState func(id string) (connected bool, stateUpdated, lastActivity time.Time)
}

// Registry is the device and policy registry with an in-memory cache in
// front of a Store. See the package doc for the locking rules.
type Registry struct {
	store Store
	opts  Options

	writeMu sync.Mutex // serialises writes: store, cache, OnChange

	mu       sync.RWMutex // guards devices, disabled, policies and cas
	devices  map[string]Device
	disabled int // devices whose status is Disabled (Counts)
	policies map[string]Policy
	cas      map[string]caEntry

	// authorities are the CAs as the broker checks device chains against
	// them, rebuilt on every CA write (cas.go).
	authorities atomic.Pointer[x509auth.Authorities]

	twins twinCache

	createdOwner bool // New created the default policies
}

var zeroTime time.Time

// New loads all devices and policies from store, creates the default
// policies in a store that has none (a new hub), and returns the registry.
func New(ctx context.Context, store Store, o Options) (*Registry, error) {
	if store == nil {
		return nil, errors.New("registry: a store is required")
	}
	if o.HubName == "" {
		return nil, errors.New("registry: HubName is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Registry{store: store, opts: o}
	if err := r.loadPolicies(ctx); err != nil {
		return nil, err
	}
	devs, err := store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry: loading devices: %w", err)
	}
	r.devices = make(map[string]Device, len(devs))
	for _, d := range devs {
		r.setDevice(d.DeviceID, &d)
	}
	if err := r.loadTwins(ctx); err != nil {
		return nil, err
	}
	if err := r.loadCAs(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Registry) loadPolicies(ctx context.Context) error {
	ps, err := r.store.ListPolicies(ctx)
	if err != nil {
		return fmt.Errorf("registry: loading policies: %w", err)
	}
	// Only a store without any policy gets the defaults: a policy the
	// operator deleted stays deleted across restarts.
	added := false
	for _, dp := range DefaultPolicies {
		if len(ps) > 0 {
			break
		}
		p := Policy{Name: dp.Name, PrimaryKey: NewKey(), SecondaryKey: NewKey(), Rights: dp.Rights}
		if err := r.store.PutPolicy(ctx, p); err != nil {
			return fmt.Errorf("registry: creating default policy %s: %w", dp.Name, err)
		}
		added = true
	}
	r.createdOwner = added
	if added {
		// Read back rather than trust our copy: another hub node starting
		// at the same moment may have written its own keys last.
		if ps, err = r.store.ListPolicies(ctx); err != nil {
			return fmt.Errorf("registry: loading policies: %w", err)
		}
	}
	r.policies = make(map[string]Policy, len(ps))
	for _, p := range ps {
		r.policies[p.Name] = p
	}
	return nil
}

// HubName is the configured hub host name.
func (r *Registry) HubName() string { return r.opts.HubName }

// Device returns the cached identity, keys included, for authentication.
// Connection fields are not filled. It does no I/O.
func (r *Registry) Device(id string) (Device, bool) {
	r.mu.RLock()
	d, ok := r.devices[id]
	r.mu.RUnlock()
	if !ok {
		return Device{}, false
	}
	return d.Clone(), true
}

// Policy returns the named shared access policy.
func (r *Registry) Policy(name string) (Policy, bool) {
	r.mu.RLock()
	p, ok := r.policies[name]
	r.mu.RUnlock()
	return p, ok
}

// Policies returns all policies sorted by name.
func (r *Registry) Policies() []Policy {
	r.mu.RLock()
	ps := make([]Policy, 0, len(r.policies))
	for _, p := range r.policies {
		ps = append(ps, p)
	}
	r.mu.RUnlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

// Get reads a device from the store, with its connection fields filled.
func (r *Registry) Get(ctx context.Context, id string) (Device, error) {
	d, _, err := r.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Device{}, notFound(id)
	}
	if err != nil {
		return Device{}, fmt.Errorf("registry: reading device %s: %w", id, err)
	}
	return r.withLiveState(d), nil
}

// List reads all devices from the store, sorted by id, with their
// connection fields filled.
func (r *Registry) List(ctx context.Context) ([]Device, error) {
	devs, err := r.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry: listing devices: %w", err)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].DeviceID < devs[j].DeviceID })
	for i := range devs {
		devs[i] = r.withLiveState(devs[i])
	}
	return devs, nil
}

// withLiveState fills the read-only fields IoT Hub serves but does not
// store.
func (r *Registry) withLiveState(d Device) Device {
	d.ConnectionState = "Disconnected"
	d.ConnectionStateUpdatedTime, d.LastActivityTime = zeroTime, zeroTime
	d.CloudToDeviceMessageCount = 0
	if r.opts.LiveState != nil {
		connected, updated, last := r.opts.LiveState(d.DeviceID)
		if connected {
			d.ConnectionState = "Connected"
		}
		d.ConnectionStateUpdatedTime, d.LastActivityTime = updated.UTC(), last.UTC()
	}
	return d
}
