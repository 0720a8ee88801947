package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"reflect"
	"time"
)

// PatchReported applies a device's reported-properties patch (the body of
// $iothub/twin/PATCH/properties/reported/) as a JSON merge patch: objects
// merge recursively, null deletes a member (a missing one is no error),
// anything else replaces. It returns the new reported $version, which the
// hub answers with in res/204/?$version=. Keys starting with '$' are
// rejected like any '$' key, $version included.
//
// On error the twin is unchanged. An empty patch {} changes nothing and
// returns the current version; any other accepted patch is a new version,
// even if it sets every value to what it already was (IoT Hub does not
// compare either: Azure/iotedge#1252).
func (t *Twin) PatchReported(patch []byte, now time.Time) (newVersion int64, err error) {
	p, err := decodeObject(patch, "a reported properties patch")
	if err != nil {
		return 0, err
	}
	if err := validate(sectionReported, p); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return t.Reported.Version, nil
	}
	next := t.Reported.patched(p, stamp(now), false)
	if err := checkSize(sectionReported, t.Reported.Values, next.Values, MaxPropertiesBytes); err != nil {
		return 0, err
	}
	t.Reported = next
	t.Version++
	return next.Version, nil
}

// PatchDesired applies a desired-properties patch (the properties.desired
// part of a service PATCH, as such) with the same merge rules. It returns
// what the hub publishes to the device on
// $iothub/twin/PATCH/properties/desired/?$version=N: the patch as applied,
// nulls included, plus "$version": N; nil when the patch was empty and
// nothing changed. Top-level "$metadata" and "$version" members are ignored
// as in ServicePatch.
func (t *Twin) PatchDesired(patch []byte, now time.Time) (pushed []byte, err error) {
	p, err := decodeObject(patch, "a desired properties patch")
	if err != nil {
		return nil, err
	}
	return t.apply(nil, stripReadOnly(p), now)
}

// ServicePatch applies the body of PATCH /twins/{id}:
// {"tags":{…},"properties":{"desired":{…}}}, either part optional, each a
// merge patch. It returns the desired push as PatchDesired does, or nil if
// desired did not change. Tags and desired change together, as one twin
// version (and one etag) change.
//
// What else the body may hold follows what the service SDKs send.
// azure-iothub's Twin.update sends the caller's patch object as the body
// unchanged (If-Match carries the etag), so it holds whatever the app wrote;
// the .NET RegistryManager.UpdateTwinAsync(id, Twin, etag) serialises a
// whole Twin: deviceId, etag, version, status…, tags, and properties with
// desired and reported, each with the $metadata and $version it was read
// with (and an empty reported for new Twin()). So:
//   - every top-level member other than tags and properties is ignored
//     (the etag to check is the If-Match header's: see MatchETag);
//   - "$metadata" and "$version" at the top of desired are ignored;
//   - "tags": null, "properties": null and "desired": null mean no change;
//   - properties.reported may be present only as a no-op: empty, or equal to
//     the current reported values (a twin read and sent back). Anything else
//     is a write to reported properties, which only the device may make:
//     400 ArgumentInvalid. (IoT Hub's docs say such fields "will not be
//     applied"; Tether says so instead of dropping the write silently.)
func (t *Twin) ServicePatch(body []byte, now time.Time) (desiredPush []byte, err error) {
	tags, desired, err := t.serviceBody(body, "a twin patch")
	if err != nil {
		return nil, err
	}
	return t.apply(tags, desired, now)
}

// ServiceReplace applies the body of PUT /twins/{id}: tags and desired
// properties are replaced by the body's (an absent or null part replaces
// with an empty one, as a .NET Twin without tags serialises none); reported
// properties are untouched, with the same rule for a reported member as
// ServicePatch. Null members in the body are left out. Every member written
// gets a new $lastUpdated; desired $version, the twin version and the etag
// move by one even if nothing differs.
//
// desiredPush is the full new desired document plus, as null, every member
// the replacement removed (at any depth where an object stays an object),
// then "$version". IoT Hub documents that a device observing desired
// properties "receives the same form of update (partial or full
// replacement)", but device SDKs merge what they receive (azure-iot-device's
// _mergePatch), so a plain full document would leave removed members on the
// device; the nulls make merging it yield exactly the new document.
func (t *Twin) ServiceReplace(body []byte, now time.Time) (desiredPush []byte, err error) {
	tags, desired, err := t.serviceBody(body, "a twin replacement")
	if err != nil {
		return nil, err
	}
	if err := validate(sectionTags, tags); err != nil {
		return nil, err
	}
	if err := validate(sectionDesired, desired); err != nil {
		return nil, err
	}
	now = stamp(now)
	w := writer{now: now}
	newTags, _ := w.merge(nil, nil, tags)
	nextDesired := t.Desired.replaced(desired, now)
	if err := checkSize(sectionTags, t.Tags, newTags, MaxTagsBytes); err != nil {
		return nil, err
	}
	if err := checkSize(sectionDesired, t.Desired.Values, nextDesired.Values, MaxPropertiesBytes); err != nil {
		return nil, err
	}
	push := replacementPatch(t.Desired.Values, nextDesired.Values)
	t.Tags, t.Desired = newTags, nextDesired
	t.Version++
	t.ETagVersion++
	return pushJSON(push, nextDesired.Version), nil
}

const (
	sectionTags     = "tags"
	sectionDesired  = "properties.desired"
	sectionReported = "properties.reported"
)

// apply validates and applies a tags patch and a desired patch (either nil
// or empty for none) as one change.
func (t *Twin) apply(tags, desired map[string]any, now time.Time) ([]byte, error) {
	if err := validate(sectionTags, tags); err != nil {
		return nil, err
	}
	if err := validate(sectionDesired, desired); err != nil {
		return nil, err
	}
	if len(tags) == 0 && len(desired) == 0 {
		return nil, nil
	}
	now = stamp(now)
	newTags, nextDesired := t.Tags, t.Desired
	if len(tags) > 0 {
		newTags, _ = (&writer{now: now}).merge(t.Tags, nil, tags)
		if err := checkSize(sectionTags, t.Tags, newTags, MaxTagsBytes); err != nil {
			return nil, err
		}
	}
	if len(desired) > 0 {
		nextDesired = t.Desired.patched(desired, now, true)
		if err := checkSize(sectionDesired, t.Desired.Values, nextDesired.Values, MaxPropertiesBytes); err != nil {
			return nil, err
		}
	}
	t.Tags, t.Desired = newTags, nextDesired
	t.Version++
	t.ETagVersion++
	if len(desired) == 0 {
		return nil, nil
	}
	return pushJSON(desired, nextDesired.Version), nil
}

// serviceBody takes a PATCH or PUT /twins body apart (see ServicePatch for
// the rules) into its tags and desired parts, nil where absent.
func (t *Twin) serviceBody(body []byte, what string) (tags, desired map[string]any, err error) {
	root, err := decodeObject(body, what)
	if err != nil {
		return nil, nil, err
	}
	if tags, err = member(root, "tags", "tags"); err != nil {
		return nil, nil, err
	}
	props, err := member(root, "properties", "properties")
	if err != nil {
		return nil, nil, err
	}
	if desired, err = member(props, "desired", sectionDesired); err != nil {
		return nil, nil, err
	}
	reported, err := member(props, "reported", sectionReported)
	if err != nil {
		return nil, nil, err
	}
	if reported = stripReadOnly(reported); len(reported) > 0 && !reflect.DeepEqual(reported, t.Reported.Values) {
		return nil, nil, invalid("%s can only be written by the device; a service may write tags and properties.desired (a body may carry reported properties only unchanged, as read)", sectionReported)
	}
	return tags, stripReadOnly(desired), nil
}

// member returns obj[key] if it is an object, nil if absent or null, and an
// error for anything else.
func member(obj map[string]any, key, path string) (map[string]any, error) {
	switch v := obj[key].(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	default:
		return nil, invalid("%s must be a JSON object, not %s", path, jsonKind(v))
	}
}

// stripReadOnly drops the read-only members a section carries when it was
// read from the hub and sent back.
func stripReadOnly(section map[string]any) map[string]any {
	_, m := section["$metadata"]
	_, v := section["$version"]
	if !m && !v {
		return section
	}
	out := maps.Clone(section)
	delete(out, "$metadata")
	delete(out, "$version")
	return out
}

// patched returns p with patch merged in as the next version. desired:
// record $lastUpdatedVersion. p itself is not changed.
func (p Properties) patched(patch map[string]any, now time.Time, desired bool) Properties {
	next := p.Version + 1
	w := writer{now: now, meta: true}
	if desired {
		w.version = next
	}
	values, meta := w.merge(p.Values, p.Meta, patch)
	return Properties{Values: values, Version: next, Meta: meta}
}

// replaced returns desired properties holding exactly doc (nulls left out)
// as the next version, every member freshly stamped.
func (p Properties) replaced(doc map[string]any, now time.Time) Properties {
	next := p.Version + 1
	w := writer{now: now, version: next, meta: true}
	values, meta := w.merge(nil, nil, doc)
	return Properties{Values: values, Version: next, Meta: meta}
}

// writer merges patches; with meta it also keeps $metadata, stamping what it
// writes with now and version (0: none).
type writer struct {
	now     time.Time
	version int64
	meta    bool
}

// merge returns dst with patch merged in (RFC 7386) and, with w.meta, the
// matching metadata. It never changes dst, dm or patch: every object on a
// written path is a new map and untouched subtrees are shared, so values a
// reader got from the twin before stay as they were.
func (w *writer) merge(dst map[string]any, dm *Meta, patch map[string]any) (map[string]any, *Meta) {
	out := make(map[string]any, len(dst)+len(patch))
	maps.Copy(out, dst)
	var om *Meta
	if w.meta {
		om = dm.stampedCopy(w.now, w.version)
	}
	for k, pv := range patch {
		switch pv := pv.(type) {
		case nil:
			delete(out, k)
			if om != nil {
				delete(om.Children, k)
			}
		case map[string]any:
			cur, _ := out[k].(map[string]any)
			var cm *Meta
			if om != nil && cur != nil {
				cm = om.Children[k]
			}
			nv, nm := w.merge(cur, cm, pv)
			out[k] = nv
			if om != nil {
				om.Children[k] = nm
			}
		default:
			out[k] = pv
			if om != nil {
				om.Children[k] = newMeta(w.now, w.version, false)
			}
		}
	}
	return out, om
}

// replacementPatch is next plus a null for every member of prev that next
// no longer has, recursing where both hold an object: merged into prev it
// gives next.
func replacementPatch(prev, next map[string]any) map[string]any {
	out := make(map[string]any, len(next)+len(prev))
	for k, v := range next {
		po, pok := prev[k].(map[string]any)
		no, nok := v.(map[string]any)
		if pok && nok {
			out[k] = replacementPatch(po, no)
			continue
		}
		out[k] = v
	}
	for k := range prev {
		if _, ok := next[k]; !ok {
			out[k] = nil
		}
	}
	return out
}

// pushJSON renders a desired push: the patch's members, then "$version".
func pushJSON(patch map[string]any, version int64) []byte {
	e := encoder{b: []byte{'{'}}
	e.members(patch)
	e.b = append(e.b, `"$version":`...)
	e.int(version)
	return append(e.b, '}')
}

// decodeObject decodes data as one JSON object, numbers as json.Number.
// what names the input in error messages.
func decodeObject(data []byte, what string) (map[string]any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, newError(ErrFormat, "%s must be a JSON object; the body is empty", what)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, formatError(what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, newError(ErrFormat, "%s: unexpected data after the JSON value, at byte %d", what, dec.InputOffset())
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("%s must be a JSON object, not %s", what, jsonKind(v))
	}
	return obj, nil
}

func formatError(what string, err error) *Error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return newError(ErrFormat, "%s is not valid JSON: %v (at byte %d)", what, se, se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return newError(ErrFormat, "%s is not valid JSON: it ends before the JSON value does", what)
	}
	return newError(ErrFormat, "%s is not valid JSON: %v", what, err)
}

// jsonKind names the JSON type of a decoded value, for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a value of an unsupported type"
}
