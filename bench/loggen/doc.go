// Package loggen generates realistic IoT Hub resource-log records
// (Connections and DeviceIdentityOperations) for benchmarks: the ingest
// benchmark (bench/cmd/loggen) and the query benchmark read the same data.
//
// Records are made by the hub's own mappers (connlog.FromConnectionEvent,
// connlog.FromChange), so properties_s, _ItemId and every column are what a
// running hub writes. The model is a fleet of devices, each with an SDK
// family that decides how it renews its SAS token:
//
//	node, python, c   client DISCONNECT (Information) and a connect marked
//	                  tokenRenewal a moment later
//	dotnet, java      the hub closes at token expiry: 401003 then 404104
//	                  (Error), and the device reconnects seconds later
//
// Sessions also end by network loss or keep-alive (404104), a second client
// with the same id (400027, the new connection follows at once), a link
// conflict (409002), a refused reconnect (401003 bad token, 500001 server
// error) or a plain client disconnect followed by time offline. Registry
// operations (create at the start, occasional disable/enable with the
// 401003 kick, rare re-creates) give DeviceIdentityOperations records.
//
// The generator is deterministic for a seed. Records come out in time
// order across devices (each device's records in its own order; the few
// records one step makes at once may reach a moment past the next device's
// event, as in a real log). Session lengths are calibrated so that the
// requested number of records covers about Options.Span, and the records
// are shifted so that the newest is 1 ms before Options.End (a counting
// pass of the model, without the mappers, finds it): 10,000,000 records
// of 10,000 devices over 7 days is about one renewal every 25 minutes per
// device, and the last hour holds about 1/168 of the records.
package loggen
