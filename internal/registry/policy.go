package registry

import (
	"fmt"
	"strings"
)

// Rights are the permissions of a shared access policy (iothub-facts §6.2).
type Rights uint8

const (
	RegistryRead Rights = 1 << iota
	RegistryWrite
	ServiceConnect
	DeviceConnect
)

var rightNames = []struct {
	r    Rights
	name string
}{
	{RegistryRead, "RegistryRead"},
	{RegistryWrite, "RegistryWrite"},
	{ServiceConnect, "ServiceConnect"},
	{DeviceConnect, "DeviceConnect"},
}

// String renders rights as IoT Hub does: "RegistryRead, RegistryWrite".
// No rights is "".
func (r Rights) String() string {
	var parts []string
	for _, n := range rightNames {
		if r&n.r != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, ", ")
}

// ParseRights reads the String form; names are case-insensitive and may be
// separated by commas and/or spaces.
func ParseRights(s string) (Rights, error) {
	var r Rights
	for f := range strings.FieldsFuncSeq(s, func(c rune) bool { return c == ',' || c == ' ' }) {
		found := false
		for _, n := range rightNames {
			if strings.EqualFold(f, n.name) {
				r |= n.r
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown right %q (want RegistryRead, RegistryWrite, ServiceConnect or DeviceConnect)", f)
		}
	}
	return r, nil
}

// MarshalText implements encoding.TextMarshaler (JSON as a string).
func (r Rights) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rights) UnmarshalText(b []byte) error {
	v, err := ParseRights(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Policy is a shared access policy: a named pair of keys with rights. The
// JSON shape is IoT Hub's (keyName, primaryKey, secondaryKey, rights).
type Policy struct {
	Name         string `json:"keyName"`
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
	Rights       Rights `json:"rights"`
}

// DefaultPolicies are the policies of a new hub, created with fresh keys
// when missing.
var DefaultPolicies = []struct {
	Name   string
	Rights Rights
}{
	{"iothubowner", RegistryRead | RegistryWrite | ServiceConnect | DeviceConnect},
	{"service", ServiceConnect},
	{"device", DeviceConnect},
	{"registryRead", RegistryRead},
	{"registryReadWrite", RegistryRead | RegistryWrite},
}
