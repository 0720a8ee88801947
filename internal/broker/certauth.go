package broker

import (
	"crypto/x509"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/x509auth"
)

// X.509 authentication: a CONNECT with an empty password authenticates
// with the TLS client certificate the device presented (the hub requests
// one on every TLS connection but requires none, so SAS devices are
// unaffected). The username is as for SAS. The handshake proved the device
// holds the leaf's key; x509auth judges the chain against the registry:
// thumbprints for selfSigned devices, a verified CA and CN = device id for
// certificateAuthority ones. A session authenticated so has no expiry
// timer: TLS authenticated it once, as IoT Hub does.

// authenticateCertificate authenticates id's device with chain (nil when
// no certificate was presented, or on plain TCP).
func (b *Broker) authenticateCertificate(id identity, chain []*x509.Certificate, now time.Time) (identity, *refusal) {
	cred, found := b.opts.Devices(id.deviceID)
	switch {
	case !found && len(chain) == 0:
		return id, authRefusal(presence.AuthNoToken, packets.ErrBadUsernameOrPassword, "no password and no client certificate: send a SAS token, or connect with the device's X.509 certificate")
	case !found:
		return id, b.deviceRefusal(id.deviceID, false, false)
	case !cred.x509() && len(chain) == 0:
		return id, authRefusal(presence.AuthNoToken, packets.ErrBadUsernameOrPassword, "no password: a SAS token is required (device '%s' has authentication type sas)", id.deviceID)
	case !cred.x509():
		id.authType = authSAS
		return id, authRefusal(presence.AuthSASDeviceCertificate, packets.ErrBadUsernameOrPassword,
			"device '%s' authenticates with SAS tokens (authentication type sas), but the connection presented only a client certificate (subject %q) and no password", id.deviceID, chain[0].Subject.String())
	}
	id.authType = cred.Type
	var err error
	if cred.Type == authSelfSigned {
		err = x509auth.VerifySelfSigned(chain, cred.Thumbprints[0], cred.Thumbprints[1], now)
	} else {
		var authorities *x509auth.Authorities
		if b.opts.Authorities != nil {
			authorities = b.opts.Authorities()
		}
		_, err = authorities.VerifyDevice(chain, id.deviceID, now)
	}
	if err != nil {
		return id, certRefusal(id.deviceID, cred.Type, err)
	}
	if ref := b.deviceRefusal(id.deviceID, cred.Enabled, true); ref != nil {
		return id, ref
	}
	return id, nil
}

// certRefusal refuses a certificate x509auth did not accept: CONNACK 5
// (3.1.1), and for MQTT 5 "bad user name or password" for a missing,
// expired or untrusted certificate, "not authorized" for one that names
// another device.
func certRefusal(deviceID, authType string, err error) *refusal {
	f, v5 := presence.AuthOther, packets.ErrBadUsernameOrPassword
	if e, ok := err.(*x509auth.Error); ok {
		f = presence.AuthFailure(e.Failure)
		if e.Failure == x509auth.CNMismatch {
			v5 = packets.ErrNotAuthorized
		}
	}
	return authRefusal(f, v5, "device '%s' (authentication type %s): %v", deviceID, authType, err)
}
