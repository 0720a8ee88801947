package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Policy limits. IoT Hub allows 16 shared access policies per hub; names
// are Tether's rule: they travel in SAS tokens (skn=) and connection
// strings (SharedAccessKeyName=), so no separators of either.
const (
	MaxPolicies      = 16
	MaxPolicyNameLen = 64
)

// AllRights is what the iothubowner policy holds. Managing policies (and
// reading their keys) needs a token of a policy with all of them: whoever
// can read every key can do everything anyway.
const AllRights = RegistryRead | RegistryWrite | ServiceConnect | DeviceConnect

// IoT Hub-style error codes of policy writes.
const (
	CodePolicyNotFound      = "PolicyNotFound"
	CodePolicyAlreadyExists = "PolicyAlreadyExists"
)

// KeySlot says which key of a policy RenewPolicyKey replaces.
type KeySlot string

const (
	PrimarySlot   KeySlot = "primary"
	SecondarySlot KeySlot = "secondary"
	BothSlots     KeySlot = "both"
	// SwapSlots exchanges the two keys (az iot hub policy renew-key
	// --renew-key swap): no new key, so nothing stops working.
	SwapSlots KeySlot = "swap"
)

// ParseKeySlot reads primary, secondary, both or swap (any case).
func ParseKeySlot(s string) (KeySlot, error) {
	switch k := KeySlot(strings.ToLower(strings.TrimSpace(s))); k {
	case PrimarySlot, SecondarySlot, BothSlots, SwapSlots:
		return k, nil
	}
	return "", invalid("key %q: use primary, secondary, both or swap", truncate(s))
}

// PolicyOp is what a policy write did.
type PolicyOp string

const (
	PolicyCreated    PolicyOp = "created"
	PolicyUpdated    PolicyOp = "updated"
	PolicyDeleted    PolicyOp = "deleted"
	PolicyKeyRenewed PolicyOp = "keyRenewed"
)

// PolicyChange reports a policy write to Options.OnPolicyChange. It holds
// no key: the hub log records it.
type PolicyChange struct {
	Op     PolicyOp
	Name   string
	Rights Rights
	Slot   KeySlot // PolicyKeyRenewed only
	Caller string
}

// ValidatePolicyName says why name cannot name a policy, or returns nil.
func ValidatePolicyName(name string) error {
	if name == "" {
		return invalid("a policy needs a name")
	}
	if len(name) > MaxPolicyNameLen {
		return invalid("policy name is %d characters long; the limit is %d", len(name), MaxPolicyNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && strings.IndexByte("-._", c) >= 0 {
			continue
		}
		return invalid("policy name %q has the character %q at position %d; allowed are ASCII letters and digits, and '-', '.', '_' after the first", truncate(name), rune(c), i)
	}
	return nil
}

func policyNotFound(name string) *Error {
	return &Error{Code: CodePolicyNotFound, Status: http.StatusNotFound, Err: ErrNotFound,
		Message: fmt.Sprintf("no shared access policy named '%s'", name)}
}

// CreatePolicy adds a policy. Empty keys are generated; rights must not be
// empty (a policy without rights can do nothing).
func (r *Registry) CreatePolicy(ctx context.Context, p Policy, caller string) (Policy, error) {
	if err := ValidatePolicyName(p.Name); err != nil {
		return Policy{}, err
	}
	if p.Rights == 0 {
		return Policy{}, invalid("policy '%s' needs at least one right (RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect)", p.Name)
	}
	if p.Rights&^AllRights != 0 {
		return Policy{}, invalid("policy '%s' has unknown rights", p.Name)
	}
	if err := checkKey("primaryKey", p.PrimaryKey); err != nil {
		return Policy{}, err
	}
	if err := checkKey("secondaryKey", p.SecondaryKey); err != nil {
		return Policy{}, err
	}
	if p.PrimaryKey == "" {
		p.PrimaryKey = NewKey()
	}
	if p.SecondaryKey == "" {
		p.SecondaryKey = NewKey()
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	_, exists := r.lookupPolicyFold(p.Name)
	n := len(r.policies)
	r.mu.RUnlock()
	if exists != "" {
		return Policy{}, &Error{Code: CodePolicyAlreadyExists, Status: http.StatusConflict, Err: ErrExists,
			Message: fmt.Sprintf("a shared access policy named '%s' already exists", exists)}
	}
	if n >= MaxPolicies {
		return Policy{}, invalid("the hub has %d shared access policies, the limit (as IoT Hub's); delete one first", n)
	}
	if err := r.putPolicy(ctx, p); err != nil {
		return Policy{}, err
	}
	r.policyChanged(PolicyChange{Op: PolicyCreated, Name: p.Name, Rights: p.Rights, Caller: caller})
	return p, nil
}

// lookupPolicyFold finds a policy whose name equals name ignoring case
// (two policies differing only in case would be a trap in tokens written
// by hand). The caller holds mu.
func (r *Registry) lookupPolicyFold(name string) (Policy, string) {
	for n, p := range r.policies {
		if strings.EqualFold(n, name) {
			return p, n
		}
	}
	return Policy{}, ""
}

// UpdatePolicyRights replaces a policy's rights; its keys stay.
func (r *Registry) UpdatePolicyRights(ctx context.Context, name string, rights Rights, caller string) (Policy, error) {
	if rights == 0 {
		return Policy{}, invalid("policy '%s' needs at least one right; delete it instead", name)
	}
	if rights&^AllRights != 0 {
		return Policy{}, invalid("policy '%s': unknown rights", name)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	p, ok := r.Policy(name)
	if !ok {
		return Policy{}, policyNotFound(name)
	}
	if p.Rights == AllRights && rights != AllRights {
		if err := r.keepsAManager(name); err != nil {
			return Policy{}, err
		}
	}
	p.Rights = rights
	if err := r.putPolicy(ctx, p); err != nil {
		return Policy{}, err
	}
	r.policyChanged(PolicyChange{Op: PolicyUpdated, Name: p.Name, Rights: p.Rights, Caller: caller})
	return p, nil
}

// keepsAManager refuses a change that would leave no policy with all
// rights: nobody could manage policies through the API any more (only
// `tether policy --local` on the hub's machine could). The caller holds
// writeMu.
func (r *Registry) keepsAManager(losing string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for n, p := range r.policies {
		if n != losing && p.Rights == AllRights {
			return nil
		}
	}
	return invalid("policy '%s' is the last one with all rights (%s): without it no token could manage policies; create another with all rights first", losing, AllRights)
}

// DeletePolicy removes a policy. Tokens signed with its keys stop working
// at once; devices connected with one stay connected until their token
// expires (as on IoT Hub, a token is checked when a connection starts).
func (r *Registry) DeletePolicy(ctx context.Context, name, caller string) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	p, ok := r.Policy(name)
	if !ok {
		return policyNotFound(name)
	}
	if p.Rights == AllRights {
		if err := r.keepsAManager(name); err != nil {
			return err
		}
	}
	err := r.store.DeletePolicy(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("registry: deleting policy %s: %w", name, err)
	}
	r.mu.Lock()
	delete(r.policies, name)
	r.mu.Unlock()
	r.policyChanged(PolicyChange{Op: PolicyDeleted, Name: name, Rights: p.Rights, Caller: caller})
	return nil
}

// RenewPolicyKey regenerates one key of a policy (or both, or swaps them)
// and returns the policy with its new keys. Renewing one key leaves the
// other working, so clients can move to it first and nothing stops: the
// rotation in docs/operations.md.
func (r *Registry) RenewPolicyKey(ctx context.Context, name string, slot KeySlot, caller string) (Policy, error) {
	if _, err := ParseKeySlot(string(slot)); err != nil {
		return Policy{}, err
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	p, ok := r.Policy(name)
	if !ok {
		return Policy{}, policyNotFound(name)
	}
	switch slot {
	case PrimarySlot:
		p.PrimaryKey = NewKey()
	case SecondarySlot:
		p.SecondaryKey = NewKey()
	case BothSlots:
		p.PrimaryKey, p.SecondaryKey = NewKey(), NewKey()
	case SwapSlots:
		p.PrimaryKey, p.SecondaryKey = p.SecondaryKey, p.PrimaryKey
	}
	if err := r.putPolicy(ctx, p); err != nil {
		return Policy{}, err
	}
	r.policyChanged(PolicyChange{Op: PolicyKeyRenewed, Name: p.Name, Rights: p.Rights, Slot: slot, Caller: caller})
	return p, nil
}

// putPolicy writes p to the store, then to the cache. The caller holds
// writeMu.
func (r *Registry) putPolicy(ctx context.Context, p Policy) error {
	if err := r.store.PutPolicy(ctx, p); err != nil {
		return fmt.Errorf("registry: writing policy %s: %w", p.Name, err)
	}
	r.mu.Lock()
	r.policies[p.Name] = p
	r.mu.Unlock()
	return nil
}

func (r *Registry) policyChanged(c PolicyChange) {
	if r.opts.OnPolicyChange != nil {
		r.opts.OnPolicyChange(c)
	}
}

// ReloadPolicies reads the policies from the store again: another hub
// node, or `tether policy --local` on a stopped hub, may have written
// them. Missing default policies are not recreated (they may have been
// deleted on purpose).
func (r *Registry) ReloadPolicies(ctx context.Context) error {
	// Under writeMu, so a write of this node cannot land between the read
	// and the swap and be undone by it.
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	ps, err := r.store.ListPolicies(ctx)
	if err != nil {
		return fmt.Errorf("registry: loading policies: %w", err)
	}
	m := make(map[string]Policy, len(ps))
	for _, p := range ps {
		m[p.Name] = p
	}
	r.mu.Lock()
	r.policies = m
	r.mu.Unlock()
	return nil
}

// CreatedDefaultPolicies reports whether New created the iothubowner
// policy: the hub's first start on this store, when nobody knows its keys
// yet.
func (r *Registry) CreatedDefaultPolicies() bool { return r.createdOwner }
