package kql

import (
	"strings"
)

// Type is a Log Analytics column type.
type Type string

const (
	TString   Type = "string"
	TDatetime Type = "datetime"
	TLong     Type = "long"
	TInt      Type = "int"
	TReal     Type = "real"
	TBool     Type = "bool"
	TDynamic  Type = "dynamic"
	TTimespan Type = "timespan"
)

func (t Type) numeric() bool { return t == TLong || t == TInt || t == TReal }

// Column is a named, typed column of a table or result.
type Column struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Table is the schema a query runs against.
type Table struct {
	Name    string
	Columns []Column
	// TimeColumn is the datetime column a query's timespan filters (and the
	// default timespan applies to when the query does not filter it).
	TimeColumn string
	// Extracted maps a JSON string column to its properties whose values
	// are also stored in their own column: tostring(parse_json(col).prop)
	// compiles to that column (indexed, no JSON parsing).
	Extracted map[string]map[string]string
}

func (t *Table) column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// names returns the column names of cols.
func names(cols []Column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out
}

// typeOfName maps the type names of Log Analytics (and their aliases) to Types.
func typeOfName(s string) (Type, bool) {
	switch strings.ToLower(s) {
	case "string":
		return TString, true
	case "datetime", "date":
		return TDatetime, true
	case "long", "int64":
		return TLong, true
	case "int", "int32":
		return TInt, true
	case "real", "double":
		return TReal, true
	case "bool", "boolean":
		return TBool, true
	case "dynamic":
		return TDynamic, true
	case "timespan", "time":
		return TTimespan, true
	}
	return "", false
}
