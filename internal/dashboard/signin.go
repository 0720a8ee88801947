package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// errSignIn is every refused sign-in; its text says what was wrong
// without telling which policies exist.
var errSignIn = errors.New("sign-in refused")

// serviceRights are the rights that let a policy use some page: a policy
// with DeviceConnect alone is for devices, not people.
const serviceRights = registry.RegistryRead | registry.RegistryWrite | registry.ServiceConnect

// credentialPolicy finds the shared access policy a sign-in credential
// belongs to: a service connection string
// ("HostName=…;SharedAccessKeyName=…;SharedAccessKey=…") or a policy's
// primary or secondary key on its own. It returns the policy and the hash
// of the key used (the session ends if that key is renewed).
func credentialPolicy(reg *registry.Registry, hubName, credential string) (registry.Policy, [sha256.Size]byte, error) {
	credential = strings.TrimSpace(credential)
	var none [sha256.Size]byte
	if credential == "" {
		return registry.Policy{}, none, fmt.Errorf("%w: paste a connection string of a shared access policy, or its key", errSignIn)
	}
	var candidates []registry.Policy
	key := credential
	if strings.Contains(credential, ";") { // keys are base64: never a ";"
		cs, err := sas.ParseConnectionString(credential)
		if err != nil {
			return registry.Policy{}, none, fmt.Errorf("%w: %v", errSignIn, err)
		}
		switch {
		case cs.DeviceID != "":
			return registry.Policy{}, none, fmt.Errorf("%w: that is a device connection string; sign in with a shared access policy's (SharedAccessKeyName=…)", errSignIn)
		case cs.SharedAccessKeyName == "" || cs.SharedAccessKey == "":
			return registry.Policy{}, none, fmt.Errorf("%w: the connection string needs SharedAccessKeyName and SharedAccessKey", errSignIn)
		case cs.HostName != "" && !strings.EqualFold(cs.HostName, hubName):
			return registry.Policy{}, none, fmt.Errorf("%w: the connection string is for %s; this hub is %s", errSignIn, cs.HostName, hubName)
		}
		p, ok := reg.Policy(cs.SharedAccessKeyName)
		if !ok {
			return registry.Policy{}, none, fmt.Errorf("%w: the policy name or key is wrong", errSignIn)
		}
		candidates, key = []registry.Policy{p}, cs.SharedAccessKey
	} else {
		candidates = reg.Policies()
	}
	var found []registry.Policy
	for _, p := range candidates {
		if sameKey(key, p.PrimaryKey) || sameKey(key, p.SecondaryKey) {
			found = append(found, p)
		}
	}
	switch {
	case len(found) == 0 && len(candidates) == 1:
		return registry.Policy{}, none, fmt.Errorf("%w: the policy name or key is wrong", errSignIn)
	case len(found) == 0:
		return registry.Policy{}, none, fmt.Errorf("%w: no shared access policy has this key", errSignIn)
	case len(found) > 1:
		return registry.Policy{}, none, fmt.Errorf("%w: several policies share this key; sign in with a connection string that names one", errSignIn)
	}
	p := found[0]
	if p.Rights&serviceRights == 0 {
		return registry.Policy{}, none, fmt.Errorf("%w: policy '%s' has only %s, which no page uses; use a policy with RegistryRead, RegistryWrite or ServiceConnect", errSignIn, p.Name, p.Rights)
	}
	return p, sha256.Sum256([]byte(key)), nil
}

// sameKey compares keys in constant time (for keys of one length).
func sameKey(given, key string) bool {
	return key != "" && subtle.ConstantTimeCompare([]byte(given), []byte(key)) == 1
}

// keyCurrent reports whether the key hashed in sum is still one of p's.
func keyCurrent(p registry.Policy, sum [sha256.Size]byte) bool {
	a, b := sha256.Sum256([]byte(p.PrimaryKey)), sha256.Sum256([]byte(p.SecondaryKey))
	return subtle.ConstantTimeCompare(sum[:], a[:]) == 1 || subtle.ConstantTimeCompare(sum[:], b[:]) == 1
}
