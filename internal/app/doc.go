// Package app is the composition root: it builds every part of the hub from
// a Config, starts them in dependency order and stops them in reverse.
// `tether serve` and the tests run the same App (tests on port 0).
package app
