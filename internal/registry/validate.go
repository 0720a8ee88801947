package registry

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/tether-hub/tether/internal/x509auth"
)

// MaxIDLen bounds device ids (and statusReason, in runes).
const MaxIDLen = 128

// idPunct are the non-alphanumerics IoT Hub allows in a device id
// (iothub-facts §6.4; ':' and ';' come from the Event Grid page).
const idPunct = "-.+%_#*?!(),=@$':;"

// ValidateDeviceID says why id is not a valid device id, or returns nil.
func ValidateDeviceID(id string) error {
	if id == "" {
		return invalid("deviceId is required")
	}
	if len(id) > MaxIDLen {
		return invalid("deviceId is %d characters long; the limit is %d", len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(idPunct, c) >= 0 {
			continue
		}
		return invalid("deviceId %q has the character %q at position %d; allowed are ASCII letters, digits and %s",
			truncate(id), rune(c), i, idPunct)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// normalize checks the writable fields of d and puts them in canonical form
// (status lower-case, authentication as normalizeAuth leaves it, read-only
// fields cleared). Empty
// status and keys stay empty: the caller fills them (defaults on create,
// current values on replace).
func normalize(d *Device) error {
	if err := ValidateDeviceID(d.DeviceID); err != nil {
		return err
	}
	switch st := Status(strings.ToLower(string(d.Status))); st {
	case "", Enabled, Disabled:
		d.Status = st
	default:
		return invalid("status %q is not valid: use enabled or disabled", truncate(string(d.Status)))
	}
	if r := d.StatusReason; r != nil {
		if !utf8.ValidString(*r) {
			return invalid("statusReason is not valid UTF-8")
		}
		if n := utf8.RuneCountInString(*r); n > MaxIDLen {
			return invalid("statusReason is %d characters long; the limit is %d", n, MaxIDLen)
		}
	}
	if err := normalizeAuth(&d.Authentication); err != nil {
		return err
	}
	// Read-only: derived by the registry or filled from presence when served.
	d.GenerationID, d.ETag = "", ""
	d.ConnectionState = ""
	d.ConnectionStateUpdatedTime, d.LastActivityTime = zeroTime, zeroTime
	d.CloudToDeviceMessageCount = 0
	return nil
}

func nonEmpty(p *string) bool { return p != nil && *p != "" }

// normalizeAuth checks the authentication of a device and puts it in
// canonical form: the type spelled as IoT Hub spells it (an empty type is
// selfSigned when a thumbprint is given, else sas, as the service SDKs
// normalise it), thumbprints upper-case hex, and only the credentials of
// the type kept (an X.509 device has no keys, a SAS device no
// thumbprints).
func normalizeAuth(a *Authentication) error {
	t := &a.X509Thumbprint
	hasPrint := nonEmpty(t.PrimaryThumbprint) || nonEmpty(t.SecondaryThumbprint)
	hasKey := a.SymmetricKey.PrimaryKey != "" || a.SymmetricKey.SecondaryKey != ""
	switch strings.ToLower(a.Type) {
	case "":
		a.Type = AuthSAS
		if hasPrint {
			a.Type = AuthSelfSigned
		}
	case "sas":
		a.Type = AuthSAS
	case "selfsigned":
		a.Type = AuthSelfSigned
	case "certificateauthority":
		a.Type = AuthCertificateAuthority
	default:
		return invalid("authentication type %q is not valid: use sas, selfSigned or certificateAuthority", truncate(a.Type))
	}
	switch a.Type {
	case AuthSAS:
		if hasPrint {
			return invalid("x509Thumbprint is set, but authentication type sas uses symmetric keys: use type selfSigned for thumbprints, or leave them null")
		}
		a.X509Thumbprint = X509Thumbprint{}
		if err := checkKey("primaryKey", a.SymmetricKey.PrimaryKey); err != nil {
			return err
		}
		return checkKey("secondaryKey", a.SymmetricKey.SecondaryKey)
	case AuthSelfSigned:
		if hasKey {
			return invalid("symmetricKey is set, but authentication type selfSigned uses certificate thumbprints: leave the keys null")
		}
		if !hasPrint {
			return invalid("authentication type selfSigned needs x509Thumbprint.primaryThumbprint (or secondaryThumbprint): the SHA-1 or SHA-256 thumbprint of the device's certificate")
		}
		for _, p := range []struct {
			field string
			v     **string
		}{{"primaryThumbprint", &t.PrimaryThumbprint}, {"secondaryThumbprint", &t.SecondaryThumbprint}} {
			if !nonEmpty(*p.v) {
				*p.v = nil
				continue
			}
			canon, err := x509auth.ParseThumbprint(**p.v)
			if err != nil {
				return invalid("x509Thumbprint.%s: %v", p.field, err)
			}
			*p.v = &canon
		}
	case AuthCertificateAuthority:
		if hasKey || hasPrint {
			return invalid("authentication type certificateAuthority takes no keys or thumbprints: the device presents a certificate whose chain ends at a verified CA and whose subject CN is its id")
		}
		a.X509Thumbprint = X509Thumbprint{}
	}
	a.SymmetricKey = SymmetricKey{}
	return nil
}

// checkKey accepts "" (generate or keep) or base64 of 16–64 bytes, the
// range IoT Hub accepts.
func checkKey(field, k string) error {
	if k == "" {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		return invalid("%s is not valid base64 (standard alphabet, with padding)", field)
	}
	if len(raw) < 16 || len(raw) > 64 {
		return invalid("%s decodes to %d bytes; keys must be 16 to 64 bytes", field, len(raw))
	}
	return nil
}
