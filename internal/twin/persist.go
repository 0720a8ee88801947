package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrCorrupt wraps every Unmarshal error: the stored bytes are not a twin
// this package wrote.
var ErrCorrupt = errors.New("twin: corrupt stored twin")

// storeFormat is the stored layout's version, for a future migration.
const storeFormat = 1

// Marshal encodes the whole twin, metadata and counters included, as
// compact JSON for the KV store:
//
//	{"fmt":1,"version":2,"etag":1,"tags":{…},
//	 "desired":{"v":1,"values":{…},"meta":M},"reported":{…}}
//	M = {"t":<unix ns>,"lv":<lastUpdatedVersion, if any>,"c":{"key":M,…}}
//
// with "c" present exactly for objects. Unmarshal gives back an equal Twin.
// Times are kept to the nanosecond (writes stamp them at 100 ns), so they
// must lie between the years 1678 and 2262.
func (t *Twin) Marshal() ([]byte, error) {
	e := encoder{b: make([]byte, 0, 256+2*Size(t.Tags)+6*(Size(t.Desired.Values)+Size(t.Reported.Values)))}
	e.b = append(e.b, `{"fmt":`...)
	e.int(storeFormat)
	e.key("version")
	e.int(t.Version)
	e.key("etag")
	e.int(t.ETagVersion)
	e.key("tags")
	e.value(t.Tags)
	for _, s := range []struct {
		name string
		p    Properties
	}{{"desired", t.Desired}, {"reported", t.Reported}} {
		if s.p.Meta == nil {
			return nil, fmt.Errorf("twin: %s has no metadata", s.name)
		}
		e.key(s.name)
		e.b = append(e.b, `{"v":`...)
		e.int(s.p.Version)
		e.key("values")
		e.value(s.p.Values)
		e.key("meta")
		e.storedMeta(s.p.Meta)
		e.b = append(e.b, '}')
	}
	return append(e.b, '}'), nil
}

func (e *encoder) storedMeta(m *Meta) {
	e.b = append(e.b, `{"t":`...)
	e.int(m.LastUpdated.UnixNano())
	if m.LastUpdatedVersion != 0 {
		e.key("lv")
		e.int(m.LastUpdatedVersion)
	}
	if m.Children != nil {
		e.b = append(e.b, `,"c":{`...)
		start, end := pushKeys(e, m.Children)
		for i := start; i < end; i++ {
			if i > start {
				e.b = append(e.b, ',')
			}
			k := e.keys[i]
			e.b = append(appendString(e.b, k), ':')
			e.storedMeta(m.Children[k])
		}
		e.popKeys(start)
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
}

type storedTwin struct {
	Format      int            `json:"fmt"`
	Version     int64          `json:"version"`
	ETagVersion int64          `json:"etag"`
	Tags        map[string]any `json:"tags"`
	Desired     *storedProps   `json:"desired"`
	Reported    *storedProps   `json:"reported"`
}

type storedProps struct {
	Version int64          `json:"v"`
	Values  map[string]any `json:"values"`
	Meta    *storedMeta    `json:"meta"`
}

type storedMeta struct {
	T  int64                  `json:"t"`
	LV int64                  `json:"lv"`
	C  map[string]*storedMeta `json:"c"`
}

// Unmarshal decodes what Marshal wrote. It checks the structure (counters,
// value types, metadata for every member and only for members) but not
// IoT Hub's limits, so a twin stored under other limits still loads.
func Unmarshal(data []byte) (*Twin, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var s storedTwin
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the document", ErrCorrupt)
	}
	if s.Format != storeFormat {
		return nil, fmt.Errorf("%w: format %d, want %d", ErrCorrupt, s.Format, storeFormat)
	}
	if s.Version < 1 || s.ETagVersion < 1 {
		return nil, fmt.Errorf("%w: version %d, etag %d", ErrCorrupt, s.Version, s.ETagVersion)
	}
	if s.Tags == nil {
		return nil, fmt.Errorf("%w: no tags", ErrCorrupt)
	}
	if err := checkStored(s.Tags, nil); err != nil {
		return nil, fmt.Errorf("%w: tags: %v", ErrCorrupt, err)
	}
	t := &Twin{Tags: s.Tags, Version: s.Version, ETagVersion: s.ETagVersion}
	for _, p := range []struct {
		name string
		in   *storedProps
		out  *Properties
	}{{"desired", s.Desired, &t.Desired}, {"reported", s.Reported, &t.Reported}} {
		if p.in == nil || p.in.Values == nil || p.in.Meta == nil || p.in.Version < 1 {
			return nil, fmt.Errorf("%w: %s missing or without values, metadata or $version", ErrCorrupt, p.name)
		}
		if p.in.Meta.C == nil {
			return nil, fmt.Errorf("%w: %s: root metadata without members", ErrCorrupt, p.name)
		}
		if err := checkStored(p.in.Values, p.in.Meta); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p.name, err)
		}
		*p.out = Properties{Values: p.in.Values, Version: p.in.Version, Meta: p.in.Meta.meta()}
	}
	return t, nil
}

// checkStored checks that obj holds only decoded JSON values, no nulls,
// and, with m, that m has metadata for exactly its members (children for
// objects, none for other values).
func checkStored(obj map[string]any, m *storedMeta) error {
	if m != nil && len(m.C) != len(obj) {
		return fmt.Errorf("%d members but metadata for %d", len(obj), len(m.C))
	}
	for k, v := range obj {
		var cm *storedMeta
		if m != nil {
			if cm = m.C[k]; cm == nil {
				return fmt.Errorf("member %q has no metadata", k)
			}
		}
		if o, ok := v.(map[string]any); ok {
			if cm != nil && cm.C == nil {
				return fmt.Errorf("object %q has metadata without members", k)
			}
			if err := checkStored(o, cm); err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			continue
		}
		if cm != nil && cm.C != nil {
			return fmt.Errorf("non-object %q has metadata with members", k)
		}
		if err := checkStoredValue(v); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
	return nil
}

func checkStoredValue(v any) error {
	switch v := v.(type) {
	case bool, string, json.Number:
		return nil
	case map[string]any:
		return checkStored(v, nil)
	case []any:
		for _, e := range v {
			if err := checkStoredValue(e); err != nil {
				return err
			}
		}
		return nil
	case nil:
		return errors.New("null value")
	}
	return fmt.Errorf("value of type %T", v)
}

func (s *storedMeta) meta() *Meta {
	m := &Meta{LastUpdated: time.Unix(0, s.T).UTC(), LastUpdatedVersion: s.LV}
	if s.C != nil {
		m.Children = make(map[string]*Meta, len(s.C))
		for k, c := range s.C {
			m.Children[k] = c.meta()
		}
	}
	return m
}
