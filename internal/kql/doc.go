// Package kql runs Tether's KQL subset over the log store: it checks a
// parsed query (package syntax) against a table schema, compiles it to one
// SQL statement for a Dialect (SQLite now; the seam is for ClickHouse),
// and runs it with limits (timeout, rows, bytes), returning typed columns
// as Log Analytics names them.
//
// Compilation keeps queries on the indexes: a pipeline of where, extend
// and project over the table stays one SELECT on the table (column
// expressions are inlined, not nested), tostring(parse_json(properties_s).deviceId)
// and its siblings become the columns extracted at ingest (Table.Extracted),
// time predicates compare the raw TimeGenerated column with bound
// constants (ago() and now() are evaluated once, at compile time), and every
// literal is a bound parameter, never spliced into the SQL text.
package kql
