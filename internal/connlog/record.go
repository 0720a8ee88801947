package connlog

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tether-hub/tether/internal/journal"
)

// Categories Tether writes (AzureDiagnostics column Category). The
// operation categories are the journal's (journal.Operation.Category);
// Administrative is Tether's own (journal.CategoryAdministrative).
const (
	CategoryConnections              = "Connections"
	CategoryDeviceIdentityOperations = "DeviceIdentityOperations"
	CategoryD2CTwinOperations        = journal.CategoryD2CTwinOperations
	CategoryC2DTwinOperations        = journal.CategoryC2DTwinOperations
	CategoryTwinQueries              = journal.CategoryTwinQueries
	CategoryDirectMethods            = journal.CategoryDirectMethods
	CategoryAdministrative           = journal.CategoryAdministrative
)

// Categories lists every category Tether writes, in the order settings,
// filters and help texts present them.
var Categories = []string{
	CategoryConnections, CategoryDeviceIdentityOperations,
	CategoryD2CTwinOperations, CategoryC2DTwinOperations, CategoryTwinQueries, CategoryDirectMethods,
	CategoryAdministrative,
	CategoryInsights,
}

// Levels IoT Hub writes (column Level). Azure's common schema also allows
// Informational/Warning/Critical; IoT Hub uses only these two.
const (
	LevelInformation = "Information"
	LevelError       = "Error"
)

// Operation names (column OperationName). Connections use Azure's names.
// DeviceIdentityOperations use the lower-case verbs Azure logs for that
// category ("get", "create", "update", "delete"); Tether journals only
// writes, so only the last three appear. The operation categories take
// theirs from the journal (journal.OperationNames: get, read, update,
// replace, query, send).
const (
	OpDeviceConnect    = "deviceConnect"
	OpDeviceDisconnect = "deviceDisconnect"
	OpCreate           = "create"
	OpUpdate           = "update"
	OpDelete           = "delete"
)

// Constant columns of every IoT Hub row.
const (
	ResourceProvider = "MICROSOFT.DEVICES"
	ResourceType     = "IOTHUBS"
	TableType        = "AzureDiagnostics" // column Type
	SourceSystem     = "Azure"
)

// Record is one row of the AzureDiagnostics table. Field comments name the
// column; Map and MarshalJSON use exactly those names (see Columns).
//
// DeviceID, Protocol, SDKVersion and SequenceNumber are not AzureDiagnostics
// columns: they repeat values of properties_s so stores can index them
// (Microsoft's queries extend DeviceId from parse_json(properties_s)). The
// mappers fill both from the same value.
type Record struct {
	ItemID            string    // _ItemId: unique, stable; stores drop repeats
	TimeGenerated     time.Time // TimeGenerated (UTC; nanoseconds kept)
	Category          string    // Category
	OperationName     string    // OperationName
	Level             string    // Level
	ResultType        string    // ResultType: "" on success, else "404104"…
	ResultDescription string    // ResultDescription: "" or "DeviceConnectionClosedRemotely"…
	// DurationMs is the operation's duration; nil (null) when unknown, as in
	// every Connections record Azure writes.
	DurationMs *int64
	Properties string // properties_s: a JSON object as a string (properties.go)

	Location       string // Location: the hub's region
	ResourceID     string // ResourceId and _ResourceId
	SubscriptionID string // SubscriptionId
	ResourceGroup  string // ResourceGroup (upper case, as Azure derives it)
	Resource       string // Resource: the hub name, upper case
	// ResourceProvider, ResourceType, Type and SourceSystem are constants
	// for IoT Hub rows but stored per row, as in Log Analytics.
	ResourceProvider string // ResourceProvider: "MICROSOFT.DEVICES"
	ResourceType     string // ResourceType: "IOTHUBS"
	Type             string // Type: "AzureDiagnostics"
	SourceSystem     string // SourceSystem: "Azure"
	TenantID         string // TenantId: the log workspace id
	// CorrelationID is the id of the journal entry the record came from
	// (ConnectionEvent.ID or Change.ID): the two records of a token expiry
	// share it.
	CorrelationID   string // CorrelationId
	CallerIPAddress string // CallerIPAddress: masked, like maskedIpAddress

	DeviceID       string // DeviceId (indexed)
	Protocol       string // Protocol: "Mqtt", "MqttWs"
	SDKVersion     string // SdkVersion
	SequenceNumber string // SequenceNumber: 64 hex digits; connection state changes only
}

// Column names, in the order Map, stores and the API present them.
const (
	ColItemID            = "_ItemId"
	ColTimeGenerated     = "TimeGenerated"
	ColCategory          = "Category"
	ColOperationName     = "OperationName"
	ColLevel             = "Level"
	ColResultType        = "ResultType"
	ColResultDescription = "ResultDescription"
	ColDurationMs        = "DurationMs"
	ColProperties        = "properties_s"
	ColLocation          = "Location"
	ColResourceID        = "ResourceId"
	ColResourceIDStd     = "_ResourceId"
	ColSubscriptionID    = "SubscriptionId"
	ColResourceGroup     = "ResourceGroup"
	ColResource          = "Resource"
	ColResourceProvider  = "ResourceProvider"
	ColResourceType      = "ResourceType"
	ColType              = "Type"
	ColSourceSystem      = "SourceSystem"
	ColTenantID          = "TenantId"
	ColCorrelationID     = "CorrelationId"
	ColCallerIPAddress   = "CallerIPAddress"
	ColDeviceID          = "DeviceId"
	ColProtocol          = "Protocol"
	ColSDKVersion        = "SdkVersion"
	ColSequenceNumber    = "SequenceNumber"
)

// ColumnType is the Kusto type of a column.
type ColumnType string

const (
	TypeString   ColumnType = "string"
	TypeDatetime ColumnType = "datetime"
	TypeLong     ColumnType = "long"
)

// Column describes one column of the table, for stores and query compilers.
type Column struct {
	Name string
	Type ColumnType
}

// Columns lists every column of a Record, in presentation order.
var Columns = []Column{
	{ColTimeGenerated, TypeDatetime},
	{ColCategory, TypeString},
	{ColOperationName, TypeString},
	{ColLevel, TypeString},
	{ColResultType, TypeString},
	{ColResultDescription, TypeString},
	{ColDurationMs, TypeLong},
	{ColProperties, TypeString},
	{ColLocation, TypeString},
	{ColResourceID, TypeString},
	{ColResourceIDStd, TypeString},
	{ColSubscriptionID, TypeString},
	{ColResourceGroup, TypeString},
	{ColResource, TypeString},
	{ColResourceProvider, TypeString},
	{ColResourceType, TypeString},
	{ColType, TypeString},
	{ColSourceSystem, TypeString},
	{ColTenantID, TypeString},
	{ColCorrelationID, TypeString},
	{ColCallerIPAddress, TypeString},
	{ColDeviceID, TypeString},
	{ColProtocol, TypeString},
	{ColSDKVersion, TypeString},
	{ColSequenceNumber, TypeString},
	{ColItemID, TypeString},
}

// ErrInvalidRecord is returned (wrapped) by LogStore.Append for a record
// that Validate rejects; nothing of that batch is stored.
var ErrInvalidRecord = errors.New("connlog: invalid record")

// Validate checks what every store relies on: an _ItemId, a
// TimeGenerated within Unix-nanosecond range (1678–2262), a Category.
func (r Record) Validate() error {
	switch {
	case r.ItemID == "":
		return fmt.Errorf("%w: no _ItemId", ErrInvalidRecord)
	case r.TimeGenerated.Before(minTime) || r.TimeGenerated.After(maxTime):
		return fmt.Errorf("%w: _ItemId %s: TimeGenerated %s out of range", ErrInvalidRecord, r.ItemID, r.TimeGenerated)
	case r.Category == "":
		return fmt.Errorf("%w: _ItemId %s: no Category", ErrInvalidRecord, r.ItemID)
	}
	return nil
}

var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)
