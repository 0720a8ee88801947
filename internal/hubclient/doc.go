// Package hubclient reaches a running Tether hub from tools and tests: the
// HTTPS API signed with an owner-policy SAS token (registry REST, device queries,
// /api/v1 subscriptions and logs), bulk device registration, device twins
// and direct methods (twins.go, with IoT Hub's error answers as HubError),
// and an Event Grid webhook receiver that answers the subscription
// validation handshake.
//
// It holds what the simulator (internal/sim), the benchmarks and the e2e
// tests used to copy. The CLI resolves credentials its own way
// (cmd/tether/client.go) and hands the result to New.
package hubclient
