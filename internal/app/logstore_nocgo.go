//go:build !cgo && !sqlitelog

package app

// The default log store is DuckDB, which needs cgo (and a C compiler). A
// build without cgo must ask for the SQLite store by name (-tags
// sqlitelog) rather than get it silently: the two keep different files in
// the data dir, so a hub rebuilt without cgo would start on an empty log.
// This undefined name is the compiler's message.
var _ = tether_without_cgo_needs_tags_sqlitelog__DuckDB_needs_cgo_and_gcc
