// Package api is the HTTP surface of the hub, served on its HTTPS port:
//
//   - the IoT Hub identity registry REST API (api-version 2021-04-12) that
//     the official service SDKs and az speak: PUT, GET and DELETE
//     /devices/{id} and GET /devices/, with ETag/If-Match, Azure error bodies
//     ({"Message":"ErrorCode:<Code>;<text>"}) and x-ms-request-id;
//   - Tether's own API under /api/v1: Connections/registry log search, C2D
//     sends, a live telemetry feed (Server-Sent Events), event
//     subscriptions to webhooks, streams, commands and e-mail, with their
//     delivery figures and dead letters (subscriptions.go), a live event
//     feed (events.go) and a
//     health check, with errors as {"error":{"code","message"}} (a refused
//     subscription adds "details": every field error with its path).
//
// Every call except /api/v1/health and the subscription validation
// callback (/api/v1/subscriptions/{name}/validate?code=…, whose code is the
// credential) needs an Authorization header holding a SAS token of a
// shared access policy (registry.Registry.Authorize): GET on the registry
// and logs needs RegistryRead, registry writes RegistryWrite, messages,
// telemetry, events and reading subscriptions, diagnostic settings and
// alerts ServiceConnect; changing subscriptions or diagnostic settings and
// reloading alert rules the owner's rights (ConfigRights, admin.go), each
// attempt journalled as an Administrative operation.
//
// The package defines the interfaces it needs from the rest of the hub
// (LogFinder, C2DSender, TelemetrySource, SubscriptionService, EventTail);
// the app wires implementations in, and apitest has in-memory ones for
// tests. A nil one makes its endpoints answer 503, saying what is missing.
//
// Path ids are percent-encoded path segments ("dev%2Fx" is the id "dev/x"
// for routing purposes); routing works on the escaped path and unescapes the
// id once, so ids holding '/', '%', '#' or '?' reach the registry intact.
package api
