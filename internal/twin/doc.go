// Package twin is the device twin document model: tags, desired and
// reported properties with $version and $metadata, the twin's version and
// etag, the operations devices and services apply to it, IoT Hub's limits
// with IoT Hub's error codes, and the JSON shapes the hub serves. It does no
// I/O and starts no goroutines; storage, MQTT, REST and queries are built on
// it elsewhere.
//
// # Values
//
// Values are JSON as encoding/json decodes it with UseNumber: numbers are
// json.Number, so they round-trip exactly as written (large integers
// included; IoT Hub itself bounds integers to ±2^52). A twin holds no nulls:
// null in a patch deletes.
//
// # Operations (what each does to the counters)
//
//	                 section $version   Version   ETagVersion (etag)
//	PatchReported    reported +1        +1        –
//	PatchDesired     desired +1         +1        +1
//	ServicePatch     desired +1 if any  +1        +1     (tags and desired together: one change)
//	ServiceReplace   desired +1         +1        +1
//
// Every operation decodes and validates first and changes nothing on error.
// Patches are JSON merge patches (RFC 7386) as IoT Hub applies them:
// objects merge recursively, null deletes (a missing member is no error;
// {"a":{"b":null}} with no "a" creates "a": {}, as IoT Hub's own tests
// expect), anything else (arrays too) replaces. An empty patch changes
// nothing; any other patch is a change even if it writes the values
// already there (IoT Hub does not compare: Azure/iotedge#1252).
//
// A new twin (New) is what IoT Hub's DeviceCreated event shows: no tags,
// both sections at $version 1 with only a root $lastUpdated, version 2,
// etag "AAAAAAAAAAE=". Version and etag evolve as Twin's field docs say,
// inferred from real twins (see there).
//
// # Metadata
//
// Every member of desired and reported has $lastUpdated (and, in desired,
// $lastUpdatedVersion, the section $version of its last write); objects
// have it for each of their own members too, arrays only as a whole. A
// write stamps what it writes and every object above it, up to the section
// root; untouched siblings keep their stamps. Times are UTC with up to seven
// fractional digits, trailing zeros dropped, as IoT Hub renders them.
//
// # Limits (validate.go)
//
// Keys: 1..1024 UTF-8 bytes, no control characters (C0, DEL, C1), no '.',
// '$' or space (so none starts with '$'; a device sending "$version" back is
// refused, as IoT Hub refuses it). Strings at most 4096 bytes. Integers
// within [-2^52, 2^52-1]; other numbers must fit a float64. Objects and
// arrays nest at most 10 deep below the section root (IoT Hub's example:
// tags.one…ten.property is the deepest allowed; arrays are counted like
// objects, which IoT Hub's docs do not say). Arrays are allowed (IoT Hub's
// docs said "Arrays are not allowed" until about 2020 and now say "Arrays
// are also supported"; real twins hold them) but may not hold null,
// nor objects with null members (400004 "Value of Property or Tag cannot be
// null", by design per the SDK team). Size: tags 8 KiB, desired and
// reported 32 KiB each, measured as IoT Hub documents it (Size); a write
// that would grow a section past its limit is refused.
//
// Errors are *Error with IoT Hub's identity: malformed JSON is 400
// IotHubFormatError (400006); everything else wrong with a body is 400
// ArgumentInvalid (400004), the code IoT Hub uses for twin key and value
// violations (seen: "Property or Tag value should be maximum 4096 bytes",
// invalid property names). Which code IoT Hub gives a size overrun is not
// documented; 400004 is assumed. Messages name the key path and the limit.
//
// # Rendering
//
// DeviceJSON answers $iothub/twin/GET; ServiceJSON is GET /twins/{id};
// the push returned by desired writes is the $iothub/twin/PATCH/properties/
// desired/ payload. Keys are sorted (Go maps keep no insertion order). Doc
// gives the query language a Lookup over the ServiceJSON shape without
// rendering it. Marshal/Unmarshal store the whole state.
//
// # Concurrency
//
// A Twin may be read by many goroutines at once while nobody mutates it;
// mutators need the caller's lock. Writes are copy-on-write below the Twin
// struct, so maps and values handed out earlier never change under a reader.
package twin
