package kql

import "github.com/tether-hub/tether/internal/connlog"

// AzureDiagnostics is the table of the Connections log: every column of
// connlog.Record with its Log Analytics type, and the properties_s keys
// the log writer also stores in columns of their own.
func AzureDiagnostics() *Table {
	t := &Table{
		Name:       connlog.TableType,
		TimeColumn: connlog.ColTimeGenerated,
		Extracted: map[string]map[string]string{
			connlog.ColProperties: {
				"deviceId":       connlog.ColDeviceID,
				"protocol":       connlog.ColProtocol,
				"sdkVersion":     connlog.ColSDKVersion,
				"sequenceNumber": connlog.ColSequenceNumber,
			},
		},
	}
	for _, c := range connlog.Columns {
		typ, ok := typeOfName(string(c.Type))
		if !ok {
			typ = TString
		}
		t.Columns = append(t.Columns, Column{Name: c.Name, Type: typ})
	}
	return t
}
