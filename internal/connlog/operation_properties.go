package connlog

import "strconv"

// The properties_s objects of the operation categories. Azure documents
// each category by one sample record (the IoT Hub monitoring data
// reference, "Resource logs"), and the keys below start with that
// sample's, spelled and typed as there: sizes are decimal strings except
// in DirectMethods, whose sample has numbers. Keys marked "guess" are not
// in the sample: Tether writes them where a sibling category's sample has
// them. Tether's extras follow and are omitted when empty:
//
//	status        the status the caller got (a direct method: the device's)
//	errorMessage  on failure, what the caller was told
//	caller        service-side: the shared access policy used
//
// statusCode (guess, in every category): null on success, else the HTTP
// class of ResultType ("404"), as DeviceIdentityOperations, C2DCommands,
// Routes, Configurations and DeviceStreams samples have it.

// D2CTwinProperties is properties_s of a D2CTwinOperations record (a
// device's twin GET or reported-properties patch). Sample keys: deviceId,
// protocol, authenticationType (a JSON string like Connections' authType).
// sdkVersion: Microsoft's "SDK version of devices" query reads it from
// this category, so it is written when known. maskedIpAddress and
// messageSize (the returned twin for get, the patch for update): guesses.
type D2CTwinProperties struct {
	DeviceID    string  `json:"deviceId"`
	Protocol    string  `json:"protocol"`
	AuthType    *string `json:"authenticationType"`
	SDKVersion  string  `json:"sdkVersion,omitempty"`
	MaskedIP    string  `json:"maskedIpAddress"`
	MessageSize string  `json:"messageSize"`
	StatusCode  *string `json:"statusCode"`

	// Tether extras.
	Status       int    `json:"status,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// C2DTwinProperties is properties_s of a C2DTwinOperations record (the
// back end reads, updates or replaces a twin). Sample keys: deviceId,
// sdkVersion (for service calls IoT Hub writes the api-version there),
// messageSize (the returned twin for read, the patch or replacement for
// update and replace).
type C2DTwinProperties struct {
	DeviceID    string  `json:"deviceId"`
	SDKVersion  string  `json:"sdkVersion"`
	MessageSize string  `json:"messageSize"`
	StatusCode  *string `json:"statusCode"`

	// Tether extras.
	Caller       string `json:"caller,omitempty"`
	Status       int    `json:"status,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// TwinQueryProperties is properties_s of a TwinQueries record. Sample
// keys: query, sdkVersion, messageSize (Tether: the request body's
// bytes), pageSize, continuation ("true" when the request carried a
// continuation token: Tether's reading), resultSize (Tether: the result
// page's bytes, as the twinQueries.resultSize metric counts bytes).
// resultCount (extra) is the number of items on the page.
type TwinQueryProperties struct {
	Query        string  `json:"query"`
	SDKVersion   string  `json:"sdkVersion"`
	MessageSize  string  `json:"messageSize"`
	PageSize     string  `json:"pageSize"`
	Continuation string  `json:"continuation"`
	ResultSize   string  `json:"resultSize"`
	StatusCode   *string `json:"statusCode"`

	// Tether extras.
	Caller       string `json:"caller,omitempty"`
	ResultCount  int    `json:"resultCount,omitempty"`
	Status       int    `json:"status,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// DirectMethodProperties is properties_s of a DirectMethods record. Sample
// keys: deviceId, RequestSize and ResponseSize (capitalised, numbers: the
// method's payload and the device's response payload in bytes),
// sdkVersion (the api-version of the call).
type DirectMethodProperties struct {
	DeviceID     string  `json:"deviceId"`
	RequestSize  int64   `json:"RequestSize"`
	ResponseSize int64   `json:"ResponseSize"`
	SDKVersion   string  `json:"sdkVersion"`
	StatusCode   *string `json:"statusCode"`

	// Tether extras.
	MethodName   string `json:"methodName,omitempty"`
	Caller       string `json:"caller,omitempty"`
	Status       int    `json:"status,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// The writers below produce what marshalProperties produces for the same
// value (FuzzPropertiesJSON), as properties_json.go's do.

func (p *D2CTwinProperties) appendJSON(b []byte) []byte {
	b = append(b, `{"deviceId":`...)
	b = appendJSONString(b, p.DeviceID)
	b = append(b, `,"protocol":`...)
	b = appendJSONString(b, p.Protocol)
	b = append(b, `,"authenticationType":`...)
	b = appendJSONStringPtr(b, p.AuthType)
	b = appendOptString(b, `,"sdkVersion":`, p.SDKVersion)
	b = append(b, `,"maskedIpAddress":`...)
	b = appendJSONString(b, p.MaskedIP)
	b = append(b, `,"messageSize":`...)
	b = appendJSONString(b, p.MessageSize)
	b = append(b, `,"statusCode":`...)
	b = appendJSONStringPtr(b, p.StatusCode)
	b = appendOptInt(b, `,"status":`, int64(p.Status))
	b = appendOptString(b, `,"errorMessage":`, p.ErrorMessage)
	return append(b, '}')
}

func (p *C2DTwinProperties) appendJSON(b []byte) []byte {
	b = append(b, `{"deviceId":`...)
	b = appendJSONString(b, p.DeviceID)
	b = append(b, `,"sdkVersion":`...)
	b = appendJSONString(b, p.SDKVersion)
	b = append(b, `,"messageSize":`...)
	b = appendJSONString(b, p.MessageSize)
	b = append(b, `,"statusCode":`...)
	b = appendJSONStringPtr(b, p.StatusCode)
	b = appendOptString(b, `,"caller":`, p.Caller)
	b = appendOptInt(b, `,"status":`, int64(p.Status))
	b = appendOptString(b, `,"errorMessage":`, p.ErrorMessage)
	return append(b, '}')
}

func (p *TwinQueryProperties) appendJSON(b []byte) []byte {
	b = append(b, `{"query":`...)
	b = appendJSONString(b, p.Query)
	b = append(b, `,"sdkVersion":`...)
	b = appendJSONString(b, p.SDKVersion)
	b = append(b, `,"messageSize":`...)
	b = appendJSONString(b, p.MessageSize)
	b = append(b, `,"pageSize":`...)
	b = appendJSONString(b, p.PageSize)
	b = append(b, `,"continuation":`...)
	b = appendJSONString(b, p.Continuation)
	b = append(b, `,"resultSize":`...)
	b = appendJSONString(b, p.ResultSize)
	b = append(b, `,"statusCode":`...)
	b = appendJSONStringPtr(b, p.StatusCode)
	b = appendOptString(b, `,"caller":`, p.Caller)
	b = appendOptInt(b, `,"resultCount":`, int64(p.ResultCount))
	b = appendOptInt(b, `,"status":`, int64(p.Status))
	b = appendOptString(b, `,"errorMessage":`, p.ErrorMessage)
	return append(b, '}')
}

func (p *DirectMethodProperties) appendJSON(b []byte) []byte {
	b = append(b, `{"deviceId":`...)
	b = appendJSONString(b, p.DeviceID)
	b = append(b, `,"RequestSize":`...)
	b = strconv.AppendInt(b, p.RequestSize, 10)
	b = append(b, `,"ResponseSize":`...)
	b = strconv.AppendInt(b, p.ResponseSize, 10)
	b = append(b, `,"sdkVersion":`...)
	b = appendJSONString(b, p.SDKVersion)
	b = append(b, `,"statusCode":`...)
	b = appendJSONStringPtr(b, p.StatusCode)
	b = appendOptString(b, `,"methodName":`, p.MethodName)
	b = appendOptString(b, `,"caller":`, p.Caller)
	b = appendOptInt(b, `,"status":`, int64(p.Status))
	b = appendOptString(b, `,"errorMessage":`, p.ErrorMessage)
	return append(b, '}')
}

// appendOptInt appends key and n unless n is 0 (omitempty).
func appendOptInt(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}
