package connlog

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/tether-hub/tether/internal/journal"
)

// ErrUnknownCategory is returned for an Operation of a category this
// version does not log.
var ErrUnknownCategory = errors.New("connlog: unknown operation category")

// FromOperation turns one journalled twin, method or query operation into
// its record, in the category the operation names (D2CTwinOperations,
// C2DTwinOperations, TwinQueries, DirectMethods, and Tether's
// Administrative: administrative.go), shaped like IoT Hub's
// records of that category (Azure's monitoring data reference, "Resource
// logs"; the property shapes and what is Tether's guess are in
// operation_properties.go):
//
//	OperationName      op.OperationName (get, update | read, update, replace | query | send)
//	Level              Information; Error when the operation failed (op.ErrorCode set)
//	ResultType         the IoT Hub error code ("404103"), "" on success
//	ResultDescription  IoT Hub's name of the error (op.ErrorDescription, else
//	                   ErrorName of the code: "DeviceNotOnline")
//	DurationMs         op.DurationMs (every sample of these categories has it)
//	properties_s       per category, see operation_properties.go
//
// A direct method the device answered is a success whatever status it
// answered with (the status is in properties_s). _ItemId is
// ItemID(category, op.ID, 0, op.Time), CorrelationId op.ID; CallerIPAddress
// the masked device address of device-side operations. The indexed
// DeviceId, Protocol and SdkVersion columns repeat properties_s: a
// category whose records have no protocol key leaves Protocol empty.
func FromOperation(res Resource, op journal.Operation) (Record, error) {
	level, desc := LevelInformation, ""
	if op.Failed() {
		level, desc = LevelError, op.ErrorDescription
		if desc == "" {
			desc = ErrorName(op.ErrorCode)
		}
	}
	errMsg := ""
	if op.Failed() {
		errMsg = op.ErrorMessage
	}
	status := statusCode(op.ErrorCode)
	rec := Record{
		ItemID:            ItemID(op.Category, op.ID, 0, op.Time),
		TimeGenerated:     op.Time.UTC(),
		Category:          op.Category,
		OperationName:     op.OperationName,
		Level:             level,
		ResultType:        op.ErrorCode,
		ResultDescription: desc,
		DurationMs:        &op.DurationMs,
		CorrelationID:     op.ID,
		DeviceID:          op.DeviceID,
		SDKVersion:        op.SDKVersion,
	}
	b := make([]byte, 0, 256)
	switch op.Category {
	case CategoryD2CTwinOperations:
		props := D2CTwinProperties{
			DeviceID: op.DeviceID, Protocol: protocolName(op.Protocol), AuthType: authTypeJSON(op.AuthType),
			SDKVersion: op.SDKVersion, MaskedIP: op.MaskedIP, MessageSize: twinMessageSize(op),
			StatusCode: status, Status: op.Status, ErrorMessage: errMsg,
		}
		b = props.appendJSON(b)
		rec.Protocol, rec.CallerIPAddress = props.Protocol, op.MaskedIP
	case CategoryC2DTwinOperations:
		props := C2DTwinProperties{
			DeviceID: op.DeviceID, SDKVersion: op.SDKVersion, MessageSize: twinMessageSize(op), StatusCode: status,
			Caller: op.Caller, Status: op.Status, ErrorMessage: errMsg,
		}
		b = props.appendJSON(b)
	case CategoryTwinQueries:
		props := TwinQueryProperties{
			Query: op.Query, SDKVersion: op.SDKVersion, MessageSize: strconv.FormatInt(op.RequestSize, 10),
			PageSize: strconv.Itoa(op.PageSize), Continuation: strconv.FormatBool(op.Continuation),
			ResultSize: strconv.FormatInt(op.ResponseSize, 10), StatusCode: status,
			Caller: op.Caller, ResultCount: op.ResultCount, Status: op.Status, ErrorMessage: errMsg,
		}
		b = props.appendJSON(b)
		rec.DeviceID = "" // a query is about no one device
	case CategoryDirectMethods:
		props := DirectMethodProperties{
			DeviceID: op.DeviceID, RequestSize: op.RequestSize, ResponseSize: op.ResponseSize,
			SDKVersion: op.SDKVersion, StatusCode: status,
			MethodName: op.MethodName, Caller: op.Caller, Status: op.Status, ErrorMessage: errMsg,
		}
		b = props.appendJSON(b)
	case CategoryAdministrative:
		if err := administrativeRecord(&rec, op, status, errMsg); err != nil {
			return Record{}, fmt.Errorf("connlog: operation %s: %w", op.ID, err)
		}
		res.stamp(&rec, op.Hub)
		return rec, nil
	default:
		return Record{}, fmt.Errorf("%w: %q (operation %s)", ErrUnknownCategory, op.Category, op.ID)
	}
	rec.Properties = string(b)
	res.stamp(&rec, op.Hub)
	return rec, nil
}

// twinMessageSize is messageSize of a twin operation: the twin document
// returned by a read (get, read), the patch or replacement sent by a
// write (update, replace), as IoT Hub's size metrics count them.
func twinMessageSize(op journal.Operation) string {
	n := op.RequestSize
	if op.OperationName == journal.OpGet || op.OperationName == journal.OpRead {
		n = op.ResponseSize
	}
	return strconv.FormatInt(n, 10)
}

// errorNames are IoT Hub's names of the error codes twin, method and
// query operations end with (the service SDKs' ErrorCode enumeration;
// reference/iothub-facts.md §3).
var errorNames = map[string]string{
	"400000": "GenericBadRequest",
	"400004": "ArgumentInvalid",
	"400005": "ArgumentNull",
	"400006": "IotHubFormatError",
	"400027": "ConnectionForcefullyClosedOnNewConnection",
	"401002": "IotHubUnauthorizedAccess",
	"401003": "IoTHubUnauthorized",
	"403002": "IotHubQuotaExceeded",
	"404001": "DeviceNotFound",
	"404010": "ModuleNotFound",
	"404103": "DeviceNotOnline",
	"412001": "PreconditionFailed",
	"413001": "MessageTooLarge",
	"429001": "ThrottlingException",
	"499000": "ClientClosedRequest",
	"500001": "ServerError",
	"500008": "GenericTimeout",
	"503001": "ServiceUnavailable",
	"504101": "GatewayTimeout",
}

// ErrorName is IoT Hub's name of error code ("404103" → "DeviceNotOnline"),
// or "" for a code it does not know.
func ErrorName(code string) string { return errorNames[code] }
