// Package sqlite is the SQLite dialect of the KQL compiler: how the
// operations SQL engines spell differently are written for SQLite, and
// the Go functions SQLite calls for what it lacks (KQL's term matching,
// Unicode case folding, KQL text forms), registered with the
// modernc.org/sqlite driver when this package is imported — before the
// log store opens its connections.
package sqlite
