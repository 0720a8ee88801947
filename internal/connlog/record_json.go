package connlog

import (
	"bytes"
	"encoding/json"
	"time"
)

// recordJSON is the JSON form of a Record: the AzureDiagnostics column
// names as keys, in Columns order (encoding/json keeps field order).
type recordJSON struct {
	TimeGenerated     time.Time `json:"TimeGenerated"`
	Category          string    `json:"Category"`
	OperationName     string    `json:"OperationName"`
	Level             string    `json:"Level"`
	ResultType        string    `json:"ResultType"`
	ResultDescription string    `json:"ResultDescription"`
	DurationMs        *int64    `json:"DurationMs"`
	Properties        string    `json:"properties_s"`
	Location          string    `json:"Location"`
	ResourceID        string    `json:"ResourceId"`
	ResourceIDStd     string    `json:"_ResourceId"`
	SubscriptionID    string    `json:"SubscriptionId"`
	ResourceGroup     string    `json:"ResourceGroup"`
	Resource          string    `json:"Resource"`
	ResourceProvider  string    `json:"ResourceProvider"`
	ResourceType      string    `json:"ResourceType"`
	Type              string    `json:"Type"`
	SourceSystem      string    `json:"SourceSystem"`
	TenantID          string    `json:"TenantId"`
	CorrelationID     string    `json:"CorrelationId"`
	CallerIPAddress   string    `json:"CallerIPAddress"`
	DeviceID          string    `json:"DeviceId"`
	Protocol          string    `json:"Protocol"`
	SDKVersion        string    `json:"SdkVersion"`
	SequenceNumber    string    `json:"SequenceNumber"`
	ItemID            string    `json:"_ItemId"`
}

// Map returns the record keyed by column name (see Columns): TimeGenerated
// is a time.Time in UTC, DurationMs an int64 or nil, everything else a
// string. It is the row shape of GET /api/v1/logs.
func (r Record) Map() map[string]any {
	var dur any
	if r.DurationMs != nil {
		dur = *r.DurationMs
	}
	return map[string]any{
		ColTimeGenerated:     r.TimeGenerated.UTC(),
		ColCategory:          r.Category,
		ColOperationName:     r.OperationName,
		ColLevel:             r.Level,
		ColResultType:        r.ResultType,
		ColResultDescription: r.ResultDescription,
		ColDurationMs:        dur,
		ColProperties:        r.Properties,
		ColLocation:          r.Location,
		ColResourceID:        r.ResourceID,
		ColResourceIDStd:     r.ResourceID,
		ColSubscriptionID:    r.SubscriptionID,
		ColResourceGroup:     r.ResourceGroup,
		ColResource:          r.Resource,
		ColResourceProvider:  r.ResourceProvider,
		ColResourceType:      r.ResourceType,
		ColType:              r.Type,
		ColSourceSystem:      r.SourceSystem,
		ColTenantID:          r.TenantID,
		ColCorrelationID:     r.CorrelationID,
		ColCallerIPAddress:   r.CallerIPAddress,
		ColDeviceID:          r.DeviceID,
		ColProtocol:          r.Protocol,
		ColSDKVersion:        r.SDKVersion,
		ColSequenceNumber:    r.SequenceNumber,
		ColItemID:            r.ItemID,
	}
}

// MarshalJSON writes the same keys as Map, in Columns order, with
// TimeGenerated as RFC 3339 (nanoseconds, UTC) and DurationMs a number or
// null. HTML characters are not escaped, so properties_s stays readable.
func (r Record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(recordJSON{
		TimeGenerated:     r.TimeGenerated.UTC(),
		Category:          r.Category,
		OperationName:     r.OperationName,
		Level:             r.Level,
		ResultType:        r.ResultType,
		ResultDescription: r.ResultDescription,
		DurationMs:        r.DurationMs,
		Properties:        r.Properties,
		Location:          r.Location,
		ResourceID:        r.ResourceID,
		ResourceIDStd:     r.ResourceID,
		SubscriptionID:    r.SubscriptionID,
		ResourceGroup:     r.ResourceGroup,
		Resource:          r.Resource,
		ResourceProvider:  r.ResourceProvider,
		ResourceType:      r.ResourceType,
		Type:              r.Type,
		SourceSystem:      r.SourceSystem,
		TenantID:          r.TenantID,
		CorrelationID:     r.CorrelationID,
		CallerIPAddress:   r.CallerIPAddress,
		DeviceID:          r.DeviceID,
		Protocol:          r.Protocol,
		SDKVersion:        r.SDKVersion,
		SequenceNumber:    r.SequenceNumber,
		ItemID:            r.ItemID,
	}); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// UnmarshalJSON reads what MarshalJSON (or an encoded Map) wrote. When
// only _ResourceId is present it fills ResourceID from it.
func (r *Record) UnmarshalJSON(data []byte) error {
	var j recordJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*r = Record{
		ItemID:            j.ItemID,
		TimeGenerated:     j.TimeGenerated.UTC(),
		Category:          j.Category,
		OperationName:     j.OperationName,
		Level:             j.Level,
		ResultType:        j.ResultType,
		ResultDescription: j.ResultDescription,
		DurationMs:        j.DurationMs,
		Properties:        j.Properties,
		Location:          j.Location,
		ResourceID:        j.ResourceID,
		SubscriptionID:    j.SubscriptionID,
		ResourceGroup:     j.ResourceGroup,
		Resource:          j.Resource,
		ResourceProvider:  j.ResourceProvider,
		ResourceType:      j.ResourceType,
		Type:              j.Type,
		SourceSystem:      j.SourceSystem,
		TenantID:          j.TenantID,
		CorrelationID:     j.CorrelationID,
		CallerIPAddress:   j.CallerIPAddress,
		DeviceID:          j.DeviceID,
		Protocol:          j.Protocol,
		SDKVersion:        j.SDKVersion,
		SequenceNumber:    j.SequenceNumber,
	}
	if r.ResourceID == "" {
		r.ResourceID = j.ResourceIDStd
	}
	return nil
}
