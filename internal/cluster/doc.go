// Package cluster makes several Tether nodes on one NATS JetStream cluster
// act as one hub.
//
// What the nodes share lives in replicated KV buckets:
//
//   - tether_owners: per device, the node and session that hold it live
//     (Owner). Every connect writes it with a compare-and-set, so one
//     claim wins; the write's revision, added to the cluster's base epoch,
//     is the epoch of the session's sequence numbers, which therefore
//     increase per device across nodes, restarts and takeovers.
//   - tether_nodes: one lease per node (Lease), rewritten every
//     Options.Lease/5 and expiring after Options.Lease (the bucket's TTL).
//   - tether_leaders: one key per shared job, held by the node that runs
//     it (leader.go).
//
// A connect on node B of a device live on node A: B reads the owner
// record, asks A (a NATS request on A's takeover subject) to end the
// session; A ends it as a takeover, records 400027, waits until the
// journal stored that, releases the record and replies; B then writes the
// record and only then records its connect and sends its CONNACK. When A
// does not answer because it is gone (no responders, or its lease
// expired, or its boot changed), B adopts the session: it writes the record
// as its own, records the session's end (node-lost, 404104; hub-restart
// when the session was its own previous run's) and goes on.
//
// Every node follows the others' heartbeats: a silent node that nobody
// routes to (killed) is adopted by every survivor at once (suspect.go);
// one that is cut off fences itself (ends its sessions, refuses
// connects) and the survivors adopt its records near the end of its
// lease (fence.go). The leader of the "reaper" job adopts the records
// earlier runs of live nodes left.
//
// Lock order: Node.mu is never held while calling out (broker, presence,
// KV, NATS).
package cluster
