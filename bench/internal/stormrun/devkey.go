package stormrun

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// DefaultSeed keys the device-key derivation unless a run overrides it.
const DefaultSeed = "tether-bench-connstorm"

// APIVersion is the IoT Hub API version used in usernames and REST calls.
const APIVersion = "2021-04-12"

// DeviceID is the id (and MQTT client id) of bench device i.
func DeviceID(i int) string { return "bench-" + strconv.Itoa(i) }

// DeviceKeys returns the primary and secondary symmetric keys (base64 of
// 32 bytes) of device id: HMAC-SHA256(seed, id) and HMAC-SHA256(seed, id+"/secondary").
func DeviceKeys(seed, id string) (primary, secondary string) {
	return derive(seed, id), derive(seed, id+"/secondary")
}

func derive(seed, msg string) string {
	h := hmac.New(sha256.New, []byte(seed))
	h.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
