// Package api is the HTTP surface of the hub, served on its HTTPS port:
//
//   - the IoT Hub identity registry REST API (api-version 2021-04-12) that
//     the official service SDKs and az speak: PUT, GET and DELETE
//     /devices/{id} and GET /devices/, with ETag/If-Match, Azure error bodies
//     ({"Message":"ErrorCode:<Code>;<text>"}) and x-ms-request-id;
//   - Tether's own API under /api/v1: Connections/registry log search, C2D
//     sends, a live telemetry feed (Server-Sent Events) and a health check,
//     with errors as {"error":{"code","message"}}.
//
// Every call except /api/v1/health needs an Authorization header holding a
// SAS token of a shared access policy (registry.Registry.Authorize): GET
// on the registry and logs needs RegistryRead, registry writes RegistryWrite,
// messages and telemetry ServiceConnect.
//
// The package defines the interfaces it needs from the rest of the hub
// (LogFinder, C2DSender, TelemetrySource); the app wires implementations in.
// A nil one makes its endpoints answer 503, saying what is missing.
//
// Path ids are percent-encoded path segments ("dev%2Fx" is the id "dev/x"
// for routing purposes); routing works on the escaped path and unescapes the
// id once, so ids holding '/', '%', '#' or '?' reach the registry intact.
package api
