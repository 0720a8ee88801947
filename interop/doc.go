// Package interop holds Tether's interoperability tests with the official
// Azure IoT Node SDKs (azure-iot-device, azure-iot-device-mqtt, azure-iothub),
// used unmodified. The SDK side is scripted in node/ (device.js, service.js,
// pinned versions in package-lock.json); the Go tests start a hub in-process,
// run the scripts against it and check what the hub saw: telemetry in the
// journal, C2D delivery, registry state and the Connections log.
//
// Event deliveries are checked the same way (events_test.go): webhook
// subscriptions in both schemas, created through the hub's API, receive a
// device's life (created, connected, telemetry, disconnected, deleted), one
// event per POST and in batches, and node/eventcheck.js reads every delivery
// with the npm packages subscribers use: @azure/eventgrid
// (EventGridDeserializer, isSystemEvent type guards for the Microsoft.Devices
// events) and cloudevents (HTTP.toEvent, validate()).
//
// Run: go test ./interop/ (needs Node.js >= 20; node/node_modules is installed
// with npm ci on first use, which needs the npm registry). INTEROP_HUB_LOG=1
// prints the in-process hub's log with -v even when the tests pass;
// INTEROP_EVENTS_DIR=dir keeps the event deliveries as files for
// `node node/eventcheck.js dir/*.json`.
package interop
