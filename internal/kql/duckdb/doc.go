//go:build cgo

// Package duckdb is the DuckDB dialect of the KQL compiler: how the
// operations SQL engines spell differently are written for DuckDB, and the
// Go functions DuckDB calls for what it lacks (KQL's term matching, KQL's
// text forms and parsers), registered on a database by Register before it
// runs compiled queries.
package duckdb
