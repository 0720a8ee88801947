// Package stormrun holds what the connect-storm client (bench/cmd/connstorm)
// and its driver (bench/cmd/storm) share: the per-run result record and the
// deterministic device keys, so the client can sign SAS tokens for the
// devices the driver registered without fetching keys.
package stormrun
