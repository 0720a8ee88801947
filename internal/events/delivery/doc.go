// Package delivery is the event delivery engine of issues 3 and 16: it
// reads the journal through durable JetStream consumers and delivers Event
// Grid (or CloudEvents) events to every validated subscription, in order
// per device, at least once, with Event Grid's retries and dead letters —
// to a webhook, a NATS JetStream stream, a local command or e-mail. One
// engine, several senders: everything below holds for every destination
// kind; only the last step differs.
//
// # Shape
//
//	journal streams ──(one durable consumer per subscription and stream)──► fetchers
//	fetchers: decode (events.FromConnection/FromChange/FromTelemetry), match (events.Matcher)
//	     └─► runner (one goroutine per subscription): renewal filter, per-device FIFO queues,
//	          batching, retry timers, dead letters, acks, delivery log
//	               └─► senders (≤ MaxInFlightPerSub long-lived goroutines, a command's maxConcurrency):
//	                    Sender.Send of one batch, opened by the Destination of the kind:
//	                      WebHook  one POST (events.NewDelivery), written and answered on
//	                               the sender's goroutine over kept HTTP/1.1 connections  webhook.go, h1.go
//	                      Stream   one JetStream message per event, acked by the stream  stream.go
//	                      Command  one run of a program, the batch on stdin        command.go
//	                      Email    one mail, or a digest; rate limited per recipient  email.go
//
// # Destinations
//
// A Destination checks a subscription's destination before delivery
// (webhooks: the endpoint handshake instead), opens its Sender, and
// removes what it keeps when the subscription goes (a stream). A Sender
// returns a Result: delivered, failed (retried on the schedule below), or
// failed for good (dead-lettered at once: Final). Outcome names a failure
// for lastDeliveryOutcome: HTTP reason phrases for webhooks, TimedOut,
// NetworkError, StreamUnavailable, ExitStatus<n>, NotStarted,
// MailRejected, MailServerUnavailable. Each attempt is kept in the
// subscription's delivery log (the last DeliveryLogSize, in memory, a
// command's output included) and counted in Stats.
//
// A subscription reads TETHER_CONN when it includes DeviceConnected or
// DeviceDisconnected, TETHER_REGISTRY for DeviceCreated/DeviceDeleted and
// TETHER_TELEMETRY for DeviceTelemetry (no includedEventTypes: all three).
// Its consumers are named ConsumerName(sub) ("events-<name in lower
// case>") on each stream. A new consumer starts with the events published
// after it was created (DeliverNew): Reload creates it before it returns,
// so a subscription receives what is journalled after its creation call.
// A consumer keeps its position across restarts and definition changes;
// it is deleted with its subscription. The consumers on TETHER_CONN and
// TETHER_TELEMETRY are filtered by the stream's own subject (they read it
// whole; a refusal is acknowledged without a send): a consumer filtered to
// part of a stream costs the journal server a match against every
// device's subject for each message once it falls behind
// (streamKind.subjects).
//
// Only subscriptions that are Active (ProvisioningState Succeeded) send
// anything. Others keep fetching until their buffer is full and then
// stop: the events stay in JetStream, none is lost, and they go out once
// the endpoint is validated (or the subscription re-enabled).
//
// # Order
//
// For each subscription, a device's events are delivered in journal order
// (connection events in sequence-number order: an out-of-order one is put
// back in place while it is still queued) and never two at once: a device
// is in at most one delivery (POST, run, mail, publish). A failing event holds back only its device's
// later events; other devices keep flowing. A message is acknowledged only
// when its event was delivered, dead-lettered, filtered out or suppressed.
// Events of one device from different streams (a registry delete and a
// disconnect) are in the order the engine read them.
//
// # Batching
//
// With maxEventsPerBatch > 1 a delivery takes the due head events of several
// ready devices, in the order the devices became ready: each device's
// events consecutive and in queue order, at most maxEventsPerBatch events
// and, through events.Batches, about preferredBatchSizeInKilobytes (an
// event larger than that goes alone). A device is in one batch at a time,
// so batching never reorders a device's events, and a batch never waits to
// be filled. A batch succeeds or fails as a whole.
//
// # Retries and dead letters
//
// Webhooks: 200–204 is success; everything else, a network error, or no
// answer within Timeout (30 s) fails the attempt. 400, 401, 403, 404 and
// 413 are not retried: the events are dead-lettered at once
// (NonRetriableHttpStatus). Streams: stored by the stream is success;
// commands: exit status 0; e-mail: the server took the mail; their final
// failures (a program that cannot start, a 5xx from the mail server) are
// dead-lettered as NonRetriableError. Otherwise each event of the batch waits the schedule's delay for its
// attempt count (10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h,
// then 12 h; ±Jitter) and is dead-lettered when it has had
// maxDeliveryAttempts attempts (MaxDeliveryAttemptsExceeded) or when its
// eventTimeToLive, counted from the event's time, ends before the next
// attempt (TimeToLiveExceeded, at the moment it ends). aeg-delivery-count
// is the attempts made before (the batch's highest). A dead letter
// releases its device: the next event goes at once.
//
// Dead letters (DeadLetterRecord: the event plus reason, attempts, last
// outcome, status and error, publish and last attempt times) are kept in
// the TETHER_DEADLETTER stream (DeadLetterStore), unless the subscription's
// deadLetterDestination is "None", in which case they are dropped as Event
// Grid drops them. Engine.DeadLetters lists them; Engine.Replay queues them
// again behind their devices' current events, in their original order,
// with fresh attempts and a time-to-live from the replay; a record is
// removed once its event is delivered (or replaced if it dies again).
//
// # Renewal filter
//
// With Tether.SuppressRenewals, a disconnect by client DISCONNECT or token
// expiry is held for RenewalGraceSeconds from its event time; the device's
// later events wait behind it. The device's next connection event settles
// it: a connect that presence marked TokenRenewal with RenewalOf = its
// sequence, within the grace, suppresses both (neither is delivered); any
// other event releases it at once (delivered, in order, before that
// event). If nothing comes, it is delivered when the grace has passed —
// and when the journal has been read past the grace too, so that a backlog
// read after a restart still pairs disconnects with their renewals (unless
// the buffer is full of holds, which are then released). A renewable
// disconnect the filter does not match is remembered so that its renewal
// connect is not delivered either. Where this differs from the plain
// stream: a suppressing subscription never sees a renewal pair, sees a
// real client/token disconnect up to the grace late, and, if the renewal
// comes after the grace, sees both halves (the connect marked
// tokenRenewal).
//
// # Backpressure and memory
//
// Nothing here is on a publisher's path: the hub journals, the engine
// reads. Per subscription the engine holds at most MaxBufferedPerSub
// events (and MaxBufferedBytesPerSub); past that it stops fetching and
// JetStream keeps the backlog (MaxAckPending bounds what is delivered and
// unacknowledged). A device's queue holds at most MaxQueuePerDevice events;
// more of that device are parked: negatively acknowledged with ParkDelay
// and taken again strictly in order, so one device cannot fill the
// subscription's buffer. ParkDelay is only the fallback: when what a
// device's oldest parked message waited for is gone (its queue has room,
// the message before it was taken, recovery ended), the runner recalls
// it at once (a Nak on its reply subject), and each recalled message
// recalls the next as it is taken. At most MaxInFlightPerSub deliveries
// run per subscription (a command's maxConcurrency, if lower): a
// subscription starts with 4 and grows towards that while devices wait for
// a slot, shrinking back once they do not (catchup.go: with the batching
// above, a backlog goes out in fuller batches over more connections; the
// lag, Stats.Lag, is the age of the oldest undelivered event); a receiver
// that never answers costs that many goroutines and connections, each
// freed by the timeout. An e-mail send that waits for its digest window
// or the rate limit holds its place too (and its device's later events).
//
// # Crashes and restarts
//
// Held messages are kept alive with InProgress every AckWait/3. Stop hands
// everything it did not settle back at once (Nak). When a runner starts on
// a consumer with unacknowledged messages, it first collects them (they
// come back at once after a Stop; after a crash JetStream would return them
// only once AckWait has passed, so the runner sets the consumer's AckWait
// to one second until they are back, then restores it), parking anything
// newer (for that second, not ParkDelay; JetStream dates such a delayed
// Nak with the short AckWait, so after the restore the runner recalls
// what it parked, see above), and takes them in stream order: so after a crash every
// event is delivered at least once, with its stable id, in order per
// device. Events already delivered whose acknowledgement was lost may be
// delivered again (recognisable by id). Attempt counts live in the runner's
// memory, so after a crash an event starts again at attempt 0 (its
// aeg-delivery-count too); its eventTimeToLive, counted from the event's
// time, still bounds how long it is retried.
//
// One engine per journal: two engines (two hub nodes) on the same consumer
// would split a device's events between them. In a cluster one node
// delivers, under a fenced lead (Options.Fence), and a delivered event's
// acknowledgement counts once JetStream has stored it (handover.go), so
// the next node resumes after the last acknowledged event; what a stopped
// engine delivered and could not get stored in time stays in its node's
// Ledger, which the next engine reads before it starts (ledger.go).
//
// # Clock
//
// Retry delays, time-to-live, the renewal grace, the POST, publish and
// command timeouts and the e-mail digest windows and rate-limit waits run on
// Options.Clock, so tests drive them; JetStream's AckWait and ParkDelay
// run on the server's clock.
package delivery
