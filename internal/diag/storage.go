package diag

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

// storageRecord is a record in the shape Azure Monitor writes resource logs
// to a storage account or an event hub (reference/iothub-facts.md §2.2):
// the common-schema fields in lower camel case, properties as a JSON
// string. resultType, resultDescription and durationMs are left out when
// empty, as in Azure's Connections samples.
type storageRecord struct {
	Time              string `json:"time"`
	ResourceID        string `json:"resourceId"`
	OperationName     string `json:"operationName"`
	Category          string `json:"category"`
	Level             string `json:"level"`
	ResultType        string `json:"resultType,omitempty"`
	ResultDescription string `json:"resultDescription,omitempty"`
	DurationMs        *int64 `json:"durationMs,omitempty"`
	Properties        string `json:"properties"`
	Location          string `json:"location"`
}

// storageTime is Azure's timestamp: UTC with seven fractional digits.
const storageTime = "2006-01-02T15:04:05.0000000Z"

// AppendStorageJSON appends r as one JSON object in the storage shape (no
// newline). The same record always gives the same bytes.
func AppendStorageJSON(b []byte, r connlog.Record) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Only strings and an int pointer: encoding cannot fail.
	_ = enc.Encode(storageRecord{
		Time:              r.TimeGenerated.UTC().Format(storageTime),
		ResourceID:        r.ResourceID,
		OperationName:     r.OperationName,
		Category:          r.Category,
		Level:             r.Level,
		ResultType:        r.ResultType,
		ResultDescription: r.ResultDescription,
		DurationMs:        r.DurationMs,
		Properties:        r.Properties,
		Location:          r.Location,
	})
	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...)
}

// StorageRecord is a record read back from the storage shape (tests, tools).
type StorageRecord = storageRecord

// ParseStorageTime reads the time field of a storage record.
func ParseStorageTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// container is the storage container of category: insights-logs-<category
// in lower case>, Azure's naming (reference §2.2).
func container(category string) string { return "insights-logs-" + strings.ToLower(category) }
