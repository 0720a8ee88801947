// Package journal is Tether's single source of truth: JetStream streams that
// hold every connection event, registry change and telemetry message, and KV
// buckets for state. It runs an embedded nats-server (file store in the data
// dir) or connects to an external NATS cluster (--nats-url); the rest of the
// code cannot tell which.
//
// Subject scheme (stable; any NATS client may consume it):
//
//	tether.conn.<device>.connected       stream TETHER_CONN      presence.ConnectionEvent JSON
//	tether.conn.<device>.disconnected    stream TETHER_CONN
//	tether.conn.<device>.refused         stream TETHER_CONN
//	tether.registry.<device>.<op>        stream TETHER_REGISTRY  registry.Change JSON (op: created|updated|deleted)
//	tether.telemetry.<device>            stream TETHER_TELEMETRY raw payload, properties in headers
//	tether.ops.<category>.<device>       stream TETHER_OPS       Operation JSON (category: D2CTwinOperations|
//	                                                             C2DTwinOperations|TwinQueries|DirectMethods)
//	tether.insights.<kind>.<key>         stream TETHER_INSIGHTS  insight.Record JSON (kind: massDisconnect|
//	                                                             massDisconnectResolved|deviceFlapping; key: incident or device id)
//
// <device> is the device id with '.', '*', '>', '%', whitespace and control
// characters percent-encoded (EncodeToken), and "%" alone for "no device"
// (a connection refused before its CONNECT named one, a twin query).
// Registry changes and operations carry Nats-Msg-Id = their id, and
// connection events a 24-byte digest of theirs (ConnMsgID: JetStream keeps
// every id of its duplicate window in memory), so a retried publish is
// stored once.
//
// The journal owns the wire form of what it carries: codec.go encodes and
// decodes connection events (whole, or the summary a counter needs, which
// takes no allocation for what presence writes), telemetry.go builds
// telemetry messages and reads them back, operation.go does the same for
// twin, method and query operations (OperationMsg, DecodeOperation).
// Producers and consumers of those use these and nothing else, so the form
// is defined once. (Registry changes are still plain encoding/json of
// registry.Change at each end.) It stays readable by every later version:
// stored journals are read at start, so fields are only added, optional;
// header names do not change. testdata holds events as they were stored,
// and a test decodes them.
//
// Readers that keep only in-memory state (the metrics collector, the
// insight feed) read TETHER_CONN through one ConnFanout per node: one
// consumer, each event decoded once, each reader from its own position
// (fanout.go).
//
// KV buckets: tether_devices, tether_policies, tether_twins, tether_cas
// (registry; tether_cas holds the CA certificates of X.509 devices),
// tether_state (hub epoch for sequence numbers), tether_alert_rules (the
// alert rules file in force cluster-wide, with its last 10 revisions),
// tether_alerts (the alert notifications' claims) and
// tether_alert_history (the cluster's alert history, keys with their own
// TTLs: a bucket apart, since a bucket's TTLs cannot be turned off again).
package journal
