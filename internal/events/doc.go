// Package events turns Tether's journal records into IoT Hub's Event Grid
// events, describes subscriptions to them (destinations: a webhook, a
// NATS stream, a command, e-mail; destination.go), decides which events a
// subscription receives, proves that a subscriber's endpoint wants them,
// and tells them to people (Summary, Details). It is the domain half of issue 3; the delivery engine (one durable
// JetStream consumer per subscription, retries, dead letters, per-device
// order) builds on these types.
//
// # Events
//
// An Event is built from one journal record:
//
//	presence.ConnectionEvent  connected     → Microsoft.Devices.DeviceConnected    (FromConnection)
//	                          disconnected  → Microsoft.Devices.DeviceDisconnected
//	                          refused       → none (no device changed state)
//	registry.Change           created       → Microsoft.Devices.DeviceCreated      (FromChange)
//	                          deleted       → Microsoft.Devices.DeviceDeleted
//	                          updated       → none (IoT Hub has no such event)
//	telemetry.Message                       → Microsoft.Devices.DeviceTelemetry    (FromTelemetry)
//
// The data object is identical in both wire schemas; only the envelope
// differs (reference/iothub-facts.md §1.2, §1.4):
//
//	Event Grid:  {id, topic, subject, eventType, eventTime, data, dataVersion, metadataVersion}
//	CloudEvents: {id, source, subject, type, time, data, specversion, datacontenttype}
//
// topic and source are the hub's ARM resource id in upper case
// (/SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/<HUB>,
// see Resource), subject is "devices/{deviceId}", times are UTC with seven
// fractional digits as IoT Hub writes them.
//
// # The Tether extension: data.tether
//
// Connection events carry what Tether knows beyond IoT Hub in one object,
// data.tether (see Extension): the typed reason, the IoT Hub result code and
// name, protocol and version, session id, connect duration, the token
// renewal mark and a human detail. It is a member of data, not of the
// envelope, because:
//
//   - Event Grid consumers ignore data members they do not know: the Azure
//     SDKs' system-event models (IotHubDeviceConnectedEventData …) read the
//     members they declare and skip the rest, and @azure/eventgrid's
//     deserializer checks only envelope members (id, subject, eventType,
//     eventTime, topic, dataVersion, metadataVersion = "1", data present).
//     An unknown envelope member is not forbidden either, but data is where
//     publishers own the shape.
//   - For CloudEvents, data is opaque to the specification; a top-level
//     extension attribute would have to be a flat lower-case scalar, and
//     would not exist in the Event Grid schema. One place serves both.
//
// Subscribers filter on it like any data member, e.g. key
// "data.tether.reason" with StringIn ["keep-alive", "network"].
//
// # Ids
//
// An event's id is a UUID (version 5, SHA-1) of its source record: the
// ConnectionEvent id, the registry Change id, or the telemetry message's
// journal position. Redelivering the same record, to any subscription and
// in either schema, gives the same id, so an at-least-once duplicate is
// recognisable by id alone.
//
// # Subscriptions
//
// A Subscription mirrors an Event Grid event subscription (ARM "properties"
// shape: destination, filter, eventDeliverySchema, retryPolicy,
// deadLetterDestination, provisioningState) plus Tether options in its own
// "tether" member. DecodeSubscription reads one strictly, fills defaults and
// validates it, reporting every problem at once with its field path
// (ValidationError). Match applies the filter exactly as Event Grid
// documents it (filter.go, match.go).
//
// Subscriptions are stored through the SubscriptionStore interface:
// memstore (tests) and kvstore (JetStream KV bucket tether_subscriptions),
// both held to the contract in storetest.
//
// # Endpoint validation
//
// Handshaker proves that an endpoint wants events before anything is
// delivered: Event Grid's SubscriptionValidationEvent (synchronous
// validationResponse, or a GET on the validationUrl within 5 minutes) for
// the Event Grid schema, the CloudEvents webhook OPTIONS abuse-protection
// handshake for the CloudEvents schema. The outcome is the subscription's
// provisioningState; only Succeeded subscriptions receive events.
//
// # Delivery requests
//
// NewDelivery builds the body and headers of one webhook POST for a batch:
// aeg-event-type Notification, aeg-subscription-name (upper case),
// aeg-delivery-count, aeg-data-version, aeg-metadata-version, and the
// content type of the schema (Event Grid: a JSON array; CloudEvents: one
// event as application/cloudevents+json, several as
// application/cloudevents-batch+json).
package events
