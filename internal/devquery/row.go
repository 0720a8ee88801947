package devquery

import (
	"bytes"
	"encoding/json"
)

// Row is one result of a projection or an aggregate: its members in the
// order of the select list. Members whose path is undefined in the
// document are left out (as Cosmos DB does), so a row may have fewer
// members than the select list, or none: {}.
type Row []Member

// Member is one named value of a Row. Values taken from a document are
// the document's own (not copies).
type Member struct {
	Name  string
	Value any
}

// MarshalJSON writes the members in order.
func (r Row) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		name, err := json.Marshal(m.Name)
		if err != nil {
			return nil, err
		}
		val, err := json.Marshal(m.Value)
		if err != nil {
			return nil, err
		}
		b.Write(name)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Get returns the value of the member called name.
func (r Row) Get(name string) (any, bool) {
	for _, m := range r {
		if m.Name == name {
			return m.Value, true
		}
	}
	return nil, false
}

// project builds the row of a non-aggregate select list for d.
func (q *Query) project(d Doc) Row {
	row := make(Row, 0, len(q.items))
	for _, p := range q.items {
		if x, ok := d.Lookup(p.path); ok {
			row = append(row, Member{Name: p.name, Value: x})
		}
	}
	return row
}
