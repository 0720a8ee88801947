// Package diag is Tether's diagnostic settings: which resource-log
// categories (Connections, DeviceIdentityOperations, D2CTwinOperations,
// C2DTwinOperations, TwinQueries, DirectMethods, or allLogs) go to which
// destinations, as an Azure diagnostic setting routes an IoT hub's logs:
//
//	workspace  the embedded log store (tether logs, queries, /api/v1/logs)
//	archive    hourly JSON-lines files laid out like Azure's export to a
//	           storage account: <archive-dir>/<setting>/insights-logs-<category>/
//	           resourceId=/SUBSCRIPTIONS/…/IOTHUBS/<HUB>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json,
//	           one record per line in the storage shape (storage.go)
//	nats       a subject: one message per record, same shape, Nats-Msg-Id
//	           = _ItemId; with a retention, a JetStream stream keeps them
//
// each with a retention in days. Settings are kept in the journal's KV
// (kvstore) and applied by the Manager without a restart, from a watch of
// the bucket, so on a cluster every node applies every node's changes. While no setting
// is stored, the built-in default applies: allLogs to the workspace with
// the hub's --log-retention (Tether's behaviour before settings). As in
// Azure, once a setting exists only stored settings apply: a setting with
// only an archive means the workspace receives nothing new.
//
// Routing is durable: every destination is a connlog.Writer on its own
// durable journal consumers (one per category), acked only after
// the destination has the batch (the workspace committed it, the archive
// fsynced it, NATS flushed or JetStream stored it). A crash loses nothing;
// a redelivered batch is skipped by the workspace (_ItemId) and the archive
// (line hashes per hour file) and deduplicated by a stream (Nats-Msg-Id);
// only core-NATS subscribers may see a record twice.
package diag
