package twin

import (
	"maps"
	"time"
)

// Meta is the $metadata of one member of a properties section (or of the
// section itself): when it was last written and, in desired properties, at
// which section $version. An object member has a Meta for each of its own
// members in Children; a scalar or array member has none (IoT Hub keeps one
// timestamp for a whole array).
//
// A write stamps every object on the way down to what it wrote, the section
// root included, so a parent's $lastUpdated is the latest of its subtree and
// a deletion (which leaves no member to stamp) still shows on its parent, as
// IoT Hub documents ("kept at every level … to preserve updates that remove
// object keys"). Untouched siblings keep their stamps.
type Meta struct {
	LastUpdated time.Time
	// LastUpdatedVersion is the section $version of the last write, recorded
	// for desired properties only; 0 means none (reported properties, and a
	// desired root that was never written since the twin was created, as
	// IoT Hub shows it).
	LastUpdatedVersion int64
	// Children is non-nil exactly for object members (and the root).
	Children map[string]*Meta
}

// timeLayout renders IoT Hub's twin timestamps: UTC, up to seven fractional
// digits (.NET ticks of 100 ns) with trailing zeros dropped, as IoT Hub does
// ("2023-01-02T21:21:20.314905Z", "0001-01-01T00:00:00Z").
const timeLayout = "2006-01-02T15:04:05.9999999Z"

// FormatTime formats t as IoT Hub formats twin times (see timeLayout).
func FormatTime(t time.Time) string { return string(appendTime(nil, t)) }

// appendTime appends t in timeLayout. Rendering a twin formats one time per
// member, so this does by hand what t.AppendFormat(b, timeLayout) does (a
// test holds the two equal).
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, min, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = appendDigits(append(b, '-'), int(month), 2)
	b = appendDigits(append(b, '-'), day, 2)
	b = appendDigits(append(b, 'T'), hour, 2)
	b = appendDigits(append(b, ':'), min, 2)
	b = appendDigits(append(b, ':'), sec, 2)
	if ticks := t.Nanosecond() / 100; ticks != 0 {
		n := 7
		for ; ticks%10 == 0; ticks /= 10 {
			n--
		}
		b = appendDigits(append(b, '.'), ticks, n)
	}
	return append(b, 'Z')
}

// appendDigits appends v in exactly n decimal digits (v < 10^n).
func appendDigits(b []byte, v, n int) []byte {
	start := len(b)
	for range n {
		b = append(b, '0')
	}
	for i := len(b) - 1; i >= start; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// stamp is the time a write records: UTC, no monotonic reading, truncated to
// IoT Hub's 100 ns ticks, so that what is stored, rendered and persisted is
// the same instant.
func stamp(now time.Time) time.Time { return now.UTC().Truncate(100 * time.Nanosecond) }

func newMeta(now time.Time, version int64, object bool) *Meta {
	m := &Meta{LastUpdated: now, LastUpdatedVersion: version}
	if object {
		m.Children = map[string]*Meta{}
	}
	return m
}

// freshMeta stamps v and, for an object, every member below it.
func freshMeta(v any, now time.Time, version int64) *Meta {
	obj, ok := v.(map[string]any)
	m := newMeta(now, version, ok)
	for k, c := range obj {
		m.Children[k] = freshMeta(c, now, version)
	}
	return m
}

// clone copies m and everything below it.
func (m *Meta) clone() *Meta {
	if m == nil {
		return nil
	}
	c := &Meta{LastUpdated: m.LastUpdated, LastUpdatedVersion: m.LastUpdatedVersion}
	if m.Children != nil {
		c.Children = make(map[string]*Meta, len(m.Children))
		for k, v := range m.Children {
			c.Children[k] = v.clone()
		}
	}
	return c
}

// stampedCopy is the Meta a write gives an object it goes into: a fresh
// stamp and its previous children (to be replaced one by one). It never
// changes m, which other readers may still hold.
func (m *Meta) stampedCopy(now time.Time, version int64) *Meta {
	c := newMeta(now, version, true)
	if m != nil && m.Children != nil {
		c.Children = maps.Clone(m.Children)
	}
	return c
}
