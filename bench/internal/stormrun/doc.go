// Package stormrun holds what the connect-storm client (bench/cmd/connstorm)
// and its drivers (bench/cmd/storm, bench/cmd/suite) share: the per-run
// result record, the driven mode's event line, and the deterministic device
// keys, so the client can sign SAS tokens for the devices the driver
// registered without fetching keys.
package stormrun
