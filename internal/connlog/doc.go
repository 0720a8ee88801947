// Package connlog is Tether's resource log: the Connections,
// DeviceIdentityOperations, D2CTwinOperations, C2DTwinOperations,
// TwinQueries and DirectMethods categories of an Azure IoT Hub, as rows of
// the Log Analytics AzureDiagnostics table.
//
// Flow:
//
//	journal TETHER_CONN     ─┐  durable pull consumers "connlog"   ┌─► LogStore.Append (one transaction)
//	journal TETHER_REGISTRY ─┼─► Writer: fetch ≤1000 / 100 ms ─► map ─┤
//	journal TETHER_OPS      ─┘  (one per stream: "connlog-ops")     └─► one ack per batch (after the append)
//
// A presence.ConnectionEvent becomes one or two Records (FromConnectionEvent),
// a registry.Change one Record (FromChange), a journal.Operation one Record
// of its category (FromOperation). Every Record has a stable
// _ItemId derived from the journal message it came from, and stores ignore a
// Record whose _ItemId they already hold: a crash between the append and the
// ack makes the journal deliver again, and the second append changes
// nothing. Delivery is at least once, storage exactly once.
//
// The consumers ack all (AckAllPolicy): the ack of a batch's highest
// message acknowledges everything before it. So one Writer per durable
// (two would ack each other's batches), and Start first resets a consumer
// that holds unacked messages (a Writer died with a batch) to just after
// its ack floor, so they are delivered and stored before anything newer
// is acked. While running, a Writer acks a batch only if it continues the
// consumer's delivery sequence: a gap is a delivery it never received (a
// cluster's consumer leader lost between committing a delivery and
// sending it), and the consumer is reset to its ack floor instead.
//
// Ordering: records of one device are appended in journal order, but a
// redelivery may land after newer records; readers order by TimeGenerated
// (Find does), never by arrival.
//
// Idle: a consumer whose fetch came back empty waits for a publish on its
// subjects (journal.Watch) instead of fetching every MaxWait, and fetches
// anyway after IdleCheck (10 s) for redeliveries, that wait doubling while
// nothing comes (up to 16 × IdleCheck); an idle hub's log writers then
// cost next to nothing. Stop ends the wait at once.
//
// One consumer per stream: on TETHER_OPS, which holds several categories,
// it filters the subjects of the Writer's categories and each message's
// subject names its category. (A cluster runs every durable consumer as
// a Raft group; one per category made each node's writer eight groups.)
// A hub that had one consumer per category ("connlog-<cat>") merges them
// at Start, from the lowest ack floor.
//
// Backpressure: the Writer holds at most one batch in memory per stream;
// when the store is slow or failing the journal keeps the backlog
// (Writer.Lag), and the Writer retries the same batch with capped backoff.
//
// The interface LogStore is owned here; adapters live in subpackages named
// after their dependency (duckdb/, the default; sqlite/, without cgo).
// logstoretest holds the contract suite every adapter passes. The record
// shape follows
// shared/reference/iothub-facts.md §2: see record.go for the columns and
// properties.go and operation_properties.go for the properties_s keys,
// including the choices Tether made where Azure's behaviour is
// unconfirmed.
package connlog
