package insight

import (
	"strings"
	"time"
)

// SDK is what the diagnosis knows of a device SDK from its sdkVersion
// (the DeviceClientType of the MQTT username): its family and how it
// renews SAS tokens over MQTT (reference/iothub-facts.md §2.4, §7.1).
type SDK struct {
	// Family: node, csharp, java, python, c, probe, or "" when unknown.
	Family string
	// Name is how people call it ("azure-iot-device (Node.js)").
	Name string
	// ErrorsOnRenewal: the SDK waits for the hub to close the connection
	// at token expiry, which the log records as 401003 then 404104 (.NET,
	// Java); the others disconnect cleanly first.
	ErrorsOnRenewal bool
	// TokenLifetime is the SDK's default token lifetime.
	TokenLifetime time.Duration
	// Renewal says when it renews, in words.
	Renewal string
}

var sdkFamilies = map[string]SDK{
	"node":   {Family: "node", Name: "azure-iot-device (Node.js)", TokenLifetime: time.Hour, Renewal: "disconnects and reconnects 15 min before expiry (at 45 of 60 min), info records only"},
	"c":      {Family: "c", Name: "azure-iot-sdk-c", TokenLifetime: time.Hour, Renewal: "disconnects and reconnects with a new token every 48 of 60 min, info records only"},
	"python": {Family: "python", Name: "azure-iot-device (Python)", TokenLifetime: time.Hour, Renewal: "disconnects and reconnects 2 min before expiry, info records only"},
	"csharp": {Family: "csharp", Name: "Microsoft.Azure.Devices.Client (.NET)", ErrorsOnRenewal: true, TokenLifetime: time.Hour, Renewal: "keeps the connection until the hub closes it at expiry: 401003 then 404104, then reconnects"},
	"java":   {Family: "java", Name: "azure-iot-device-client (Java)", ErrorsOnRenewal: true, TokenLifetime: time.Hour, Renewal: "keeps the connection until the hub closes it at expiry: 401003 then 404104, then reconnects"},
	"probe":  {Family: "probe", Name: "tether probe", TokenLifetime: 10 * time.Minute},
}

// IdentifySDK reads an sdkVersion. Tether's simulator names its profile
// ("tether-sim/1.0 (node)") and counts as that SDK.
func IdentifySDK(s string) SDK {
	l := strings.ToLower(s)
	switch {
	case l == "":
		return SDK{}
	case strings.HasPrefix(l, ProbePrefix):
		return sdkFamilies["probe"]
	case strings.HasPrefix(l, "tether-sim/"):
		if i, j := strings.IndexByte(l, '('), strings.IndexByte(l, ')'); i >= 0 && j > i {
			if f, ok := sdkFamilies[strings.TrimSpace(l[i+1:j])]; ok {
				return f
			}
		}
		return SDK{}
	case strings.HasPrefix(l, ".net/"), strings.HasPrefix(l, "microsoft.azure.devices.client"):
		return sdkFamilies["csharp"]
	case strings.HasPrefix(l, "com.microsoft.azure.sdk.iot"), strings.HasPrefix(l, "com.microsoft.azure.iothub-java-client"):
		return sdkFamilies["java"]
	case strings.HasPrefix(l, "iothubclient/"):
		return sdkFamilies["c"]
	case strings.HasPrefix(l, "azure-iot-device/"):
		if strings.Contains(l, "python") {
			return sdkFamilies["python"]
		}
		return sdkFamilies["node"]
	}
	return SDK{}
}
