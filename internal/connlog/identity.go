package connlog

import (
	"github.com/tether-hub/tether/internal/registry"
)

// FromChange turns one registry write into its DeviceIdentityOperations
// record: OperationName "create" | "update" | "delete" (Azure's verbs for
// the category; an unknown op passes through as its string), Level
// Information, no result. Tether journals only accepted writes, so
// identity records are never errors. _ItemId is
// ItemID(DeviceIdentityOperations, c.ID, 0, c.Time); CorrelationId is c.ID.
func FromChange(res Resource, c registry.Change) Record {
	op := string(c.Op)
	switch c.Op {
	case registry.OpCreated:
		op = OpCreate
	case registry.OpUpdated:
		op = OpUpdate
	case registry.OpDeleted:
		op = OpDelete
	}
	props := IdentityProperties{
		DeviceID:     c.DeviceID,
		Caller:       c.Caller,
		Status:       string(c.Device.Status),
		GenerationID: c.Device.GenerationID,
		ETag:         c.Device.ETag,
	}
	if c.Keys != nil {
		props.PrimaryKey, props.SecondaryKey = c.Keys.Primary, c.Keys.Secondary
	}
	if c.Device.StatusReason != nil {
		props.StatusReason = *c.Device.StatusReason
	}
	rec := Record{
		ItemID:        ItemID(CategoryDeviceIdentityOperations, c.ID, 0, c.Time),
		TimeGenerated: c.Time.UTC(),
		Category:      CategoryDeviceIdentityOperations,
		OperationName: op,
		Level:         LevelInformation,
		Properties:    string(props.appendJSON(make([]byte, 0, 256))),
		CorrelationID: c.ID,
		DeviceID:      c.DeviceID,
	}
	res.stamp(&rec, c.Hub)
	return rec
}
