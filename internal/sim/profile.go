package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// RenewMode is how an SDK replaces its SAS token over MQTT, which cannot
// re-authenticate a live connection (reference/iothub-facts.md §7.1).
type RenewMode int

const (
	// RenewReconnect: at the renewal point the SDK sends DISCONNECT and
	// connects again with a new token (Node, C, Python).
	RenewReconnect RenewMode = iota
	// RenewOnExpiry: the SDK keeps the connection until the hub closes it
	// at token expiry (404104, reason token-expired), then reconnects with
	// a new token through its retry policy (.NET and Java over MQTT).
	RenewOnExpiry
)

// Profile is what one device SDK does about tokens, keep-alive and retries.
type Profile struct {
	Name string
	// TokenTTL is the default token lifespan; RenewAt the fraction of the
	// lifespan after which a new token is made (for RenewOnExpiry the
	// connection still lasts until expiry).
	TokenTTL  time.Duration
	RenewAt   float64
	RenewMode RenewMode
	KeepAlive time.Duration
	// RetryUnauthorized: whether the SDK keeps retrying after CONNACK 5
	// on a reconnect (after a first successful connection).
	RetryUnauthorized bool
	// Backoff returns the delay before retry attempt n (n = 1, 2, …) of a
	// connection, drawing jitter from r.
	Backoff func(n int, r *rand.Rand) time.Duration
	// Source names where the numbers come from.
	Source string

	// How the SDK uses the twin and method topics (azure-sdk-wire.md §3:
	// no SUBSCRIBE at connect, one per feature when the app first uses it).
	// DesiredAfterGet: the desired-properties SUBSCRIBE follows the first
	// GET's answer (the app registers its handler on the twin getTwin
	// returned); otherwise it goes out with the other twin topic before the
	// GET.
	DesiredAfterGet bool
	// Resubscribe: after a reconnect the SDK subscribes again to what the
	// app enabled; otherwise it relies on the hub keeping the session's
	// subscriptions (clean session 0) and sends no SUBSCRIBE.
	Resubscribe bool
	// RegetTwin: after a reconnect the SDK GETs the whole twin again.
	RegetTwin bool
	// TwinSource says where the twin behaviour comes from.
	TwinSource string
}

// RenewAfter is when a connection made with a token of lifespan ttl
// renews: RenewAt × ttl. With ttl overridden (--token-ttl) the renewal
// point keeps its fraction, so a 60 s token of the Node profile renews at
// 45 s as a 3600 s one renews at 2700 s.
func (p Profile) RenewAfter(ttl time.Duration) time.Duration {
	return time.Duration(float64(ttl) * p.RenewAt)
}

// Profiles are the SDKs' defaults (reference/iothub-facts.md §7,
// azure-sdk-wire.md §5, §7).
var Profiles = map[string]Profile{
	"node": {
		Name: "node", TokenTTL: time.Hour, RenewAt: 0.75, RenewMode: RenewReconnect,
		KeepAlive: 180 * time.Second, RetryUnauthorized: true, Backoff: nodeBackoff,
		Source:          "azure-iot-device 1.18: tokenValidTimeInSeconds 3600, tokenRenewalMarginInSeconds 900; ExponentialBackOffWithJitter c=100ms cMin=100ms cMax=10s ju=0.25 jd=0.5",
		DesiredAfterGet: true, Resubscribe: false, RegetTwin: false,
		TwinSource: "azure-iot-device 1.18 / azure-iot-device-mqtt 1.16 (read): topic.subscribed is never reset, so no SUBSCRIBE after any reconnect; getTwin subscribes $iothub/twin/res/#, twin.on('properties.desired') the desired topic; no GET after a reconnect",
	},
	"c": {
		Name: "c", TokenTTL: time.Hour, RenewAt: 0.8, RenewMode: RenewReconnect,
		KeepAlive: 240 * time.Second, RetryUnauthorized: true, Backoff: cBackoff,
		Source:          "azure-iot-sdk-c: new token every 48 of 60 min; EXPONENTIAL_BACKOFF_WITH_JITTER from 1 s doubling, minus 0–100 % jitter, first retry immediate",
		DesiredAfterGet: false, Resubscribe: true, RegetTwin: true,
		TwinSource: "iothubtransport_mqtt_common.c (read): every reconnect sets topics_ToSubscribe again and clears device_twin_get_sent, so the SDK subscribes anew and GETs the full twin after the SUBACK",
	},
	"csharp": {
		Name: "csharp", TokenTTL: time.Hour, RenewAt: 0.85, RenewMode: RenewOnExpiry,
		KeepAlive: 300 * time.Second, RetryUnauthorized: false, Backoff: csharpBackoff,
		Source:          "Microsoft.Azure.Devices.Client: SasTokenTimeToLive 60 min, renewal buffer 15 %; ExponentialBackoff min 100 ms, max 10 s, delta 100 ms (±20 %)",
		DesiredAfterGet: false, Resubscribe: true, RegetTwin: false,
		TwinSource: "RetryDelegatingHandler.HandleDisconnectAsync (read): after a connection loss it re-enables methods and twin patches (SUBSCRIBE again); no GET",
	},
	"java": {
		Name: "java", TokenTTL: time.Hour, RenewAt: 0.85, RenewMode: RenewOnExpiry,
		KeepAlive: 230 * time.Second, RetryUnauthorized: false, Backoff: javaBackoff,
		Source:          "azure-iot-device-client (Java): 60 min tokens, 85 %; ExponentialBackoffWithJitter min 100 ms, max 10 s, delta 100 ms, first retry immediate",
		DesiredAfterGet: false, Resubscribe: true, RegetTwin: false,
		TwinSource: "assumed like .NET (not verified from the Java sources)",
	},
	"python": {
		Name: "python", TokenTTL: time.Hour, RenewAt: 1 - 120.0/3600, RenewMode: RenewReconnect,
		KeepAlive: 60 * time.Second, RetryUnauthorized: true, Backoff: pythonBackoff,
		Source:          "azure-iot-device (Python): 3600 s tokens renewed 120 s before expiry; connection_retry_interval 10 s fixed",
		DesiredAfterGet: false, Resubscribe: false, RegetTwin: true,
		TwinSource: "EnsureDesiredPropertiesStage (read): GET after every reconnect once desired patches are enabled; no SUBSCRIBE after a reconnect (assumed: relies on the session)",
	},
}

// ProfileNames lists the profiles, sorted.
func ProfileNames() []string {
	var out []string
	for n := range Profiles {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// LookupProfile returns the named profile.
func LookupProfile(name string) (Profile, error) {
	p, ok := Profiles[strings.ToLower(name)]
	if !ok {
		return Profile{}, fmt.Errorf("unknown profile %q (have %s)", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// pow2 is 2^k for k ≥ 0, saturating (no overflow for long outages).
func pow2(k int) float64 {
	return float64(uint64(1) << min(max(k, 0), 40))
}

// capped converts ns to a duration no larger than limit (computed in
// floating point: 2^40 × a delta overflows a Duration).
func capped(ns float64, limit time.Duration) time.Duration {
	if ns >= float64(limit) {
		return limit
	}
	return time.Duration(ns)
}

// nodeBackoff: cMin + (2^(n-1) − 1) × J, J uniform in [0, c·(jd−ju)),
// capped at cMax. The "immediate first retry" flag never takes effect in
// the shipped code (the counter is incremented before use), so retry 1
// waits 100 ms (azure-sdk-wire.md §7).
func nodeBackoff(n int, r *rand.Rand) time.Duration {
	const c, cMin, cMax = 100 * time.Millisecond, 100 * time.Millisecond, 10 * time.Second
	const ju, jd = 0.25, 0.5
	j := r.Float64() * float64(c) * (jd - ju)
	return capped(float64(cMin)+(pow2(n-1)-1)*j, cMax)
}

// dotnetFormula: min(minBackoff + (2^k − 1) × rand[0.8·delta, 1.2·delta),
// maxBackoff) for 0-based k.
func dotnetFormula(k int, r *rand.Rand) time.Duration {
	const minB, maxB, delta = 100 * time.Millisecond, 10 * time.Second, 100 * time.Millisecond
	d := float64(delta) * (0.8 + 0.4*r.Float64())
	return capped(float64(minB)+(pow2(k)-1)*d, maxB)
}

// csharpBackoff uses the .NET formula with k = n−1.
func csharpBackoff(n int, r *rand.Rand) time.Duration { return dotnetFormula(n-1, r) }

// javaBackoff is the same formula with firstFastRetry: retry 1 is
// immediate, retry n ≥ 2 uses k = n−1.
func javaBackoff(n int, r *rand.Rand) time.Duration {
	if n <= 1 {
		return 0
	}
	return dotnetFormula(n-1, r)
}

// cBackoff: first retry immediate, then 1 s doubling each time, minus a
// random 0–100 % (no cap in the SDK; capped here at 2^20 s).
func cBackoff(n int, r *rand.Rand) time.Duration {
	if n <= 1 {
		return 0
	}
	base := float64(time.Second) * pow2(min(n-2, 20))
	return time.Duration(base * (1 - r.Float64()))
}

// pythonBackoff: a fixed 10 s between connection retries.
func pythonBackoff(int, *rand.Rand) time.Duration { return 10 * time.Second }
