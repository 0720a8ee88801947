// Package e2e holds end-to-end tests that run the real tether binary as a
// child process (built by the test from ./cmd/tether) and drive it only
// from the outside: the REST API, plain-TCP MQTT 3.1.1 from a raw client,
// a webhook receiver on loopback, signals (SIGKILL, SIGTERM), and, once
// the hub has stopped, its data directory (the journal's JetStream store,
// read through the documented subject scheme of internal/journal).
//
// The tests only use loopback addresses (127.0.0.0/8) and bound every
// loop in count and time.
package e2e
