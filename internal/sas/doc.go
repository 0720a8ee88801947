// Package sas parses, signs and verifies IoT Hub shared access signature
// tokens and connection strings. It is pure (stdlib only) and fuzzed: every
// byte a device or an API caller sends as a token passes through here.
//
// Token grammar (reference/iothub-facts.md §6.1):
//
//	SharedAccessSignature sr=<enc resource>&sig=<enc base64>&se=<unix seconds>[&skn=<policy>]
//
// Fields may come in any order. The signature is HMAC-SHA256, keyed with the
// base64-decoded shared key, over the resource exactly as it appears in the
// token (still percent-encoded) + "\n" + se. Verification uses the token's own
// sr string and compares in constant time.
package sas
