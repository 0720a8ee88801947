// Package interop holds Tether's interoperability tests with the official
// Azure IoT Node SDKs (azure-iot-device, azure-iot-device-mqtt, azure-iothub),
// used unmodified. The SDK side is scripted in node/ (device.js, service.js,
// pinned versions in package-lock.json); the Go tests start a hub in-process,
// run the scripts against it and check what the hub saw: telemetry in the
// journal, C2D delivery, registry state and the Connections log.
//
// Run: go test ./interop/ (needs Node.js >= 18; node/node_modules is installed
// with npm ci on first use, which needs the npm registry). INTEROP_HUB_LOG=1
// prints the in-process hub's log with -v even when the tests pass.
package interop
