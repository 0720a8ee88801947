// Package registry is the hub's identity registry: devices (ids, status,
// symmetric keys), shared access policies, and SAS authorisation of service
// callers.
//
// A Registry sits in front of a Store (memstore for tests, kvstore on
// JetStream KV in the hub). It keeps every device and policy in memory so
// that the MQTT auth hook (Device, on every CONNECT) and API auth
// (Authorize) are map lookups under a read lock, never I/O. Reads for the
// REST API (Get, List) go to the store.
//
// Writes are serialised by one mutex held across the store write, the cache
// update and the OnChange hook, so OnChange sees changes in store order
// (the journal relies on it) and the cache never goes back in time. A
// registry write is rare (IoT Hub throttles them at 100/min/unit), so one
// lock costs nothing that matters. OnChange must not call Registry write
// methods.
//
// ETags are derived from the store revision: base64 of its decimal digits
// ("ODgxNTgwOA==" is revision 8815808), so a conditional write is a
// compare-and-set on the store revision.
//
// Wire rules follow reference/iothub-facts.md §6.4 (device JSON, id
// charset) and §6.1–6.2 (tokens, policies and rights).
package registry
