// Package x509auth decides whether a TLS client certificate authenticates a
// device, as IoT Hub's X.509 authentication does (reference/iothub-facts.md
// §6.4, authentication.type):
//
//   - selfSigned: the device is registered with a primary and/or secondary
//     thumbprint (SHA-1 or SHA-256 of the DER certificate, hex); the leaf
//     certificate the device presents must be within its validity period
//     and have one of them. Its issuer does not matter: the thumbprint pins it.
//   - certificateAuthority: the leaf (with any intermediates the device
//     sends) must chain to a CA certificate registered with the hub and
//     verified by proof of possession, be valid now, and carry the device
//     id as its subject common name.
//
// The TLS handshake has already proved that the device holds the leaf's
// private key (CertificateVerify); this package only judges the chain.
//
// Proof of possession of a CA (Azure's "verification code" flow): the hub
// issues a random code; the owner of the CA's key signs a certificate whose
// subject CN is that code; CheckProof accepts it when the CA's public key
// verifies its signature.
//
// Every refusal is an *Error with a Failure (a low-cardinality cause for
// logs and metrics) and a detail for people. The package is pure: standard
// library only, no I/O, the clock passed in.
package x509auth
