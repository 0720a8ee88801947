package events

import "time"

// timeLayout is how IoT Hub writes eventTime: UTC, seven fractional digits
// (100 ns, .NET ticks), "Z" (reference/iothub-facts.md §1.2).
const timeLayout = "2006-01-02T15:04:05.0000000Z"

// FormatTime renders t as IoT Hub's event times: 2018-06-02T19:17:44.4383997Z.
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// zeroDotNet is how IoT Hub's twin writes a time that was never set
// (.NET DateTime.MinValue, no zone), e.g. statusUpdateTime of a new device.
const zeroDotNet = "0001-01-01T00:00:00"

// formatTwinTime is FormatTime, or zeroDotNet for the zero time.
func formatTwinTime(t time.Time) string {
	if t.IsZero() {
		return zeroDotNet
	}
	return FormatTime(t)
}
