// Package devquery runs IoT Hub device queries ("SELECT * FROM devices
// WHERE …") over device twins: Parse checks and compiles a query, Match
// evaluates its condition on one document, Run returns one page of results
// from a Source with a continuation token for the next. It is pure: no
// I/O, no clocks, no goroutines. The grammar is in package syntax.
//
// # Language
//
// SELECT [TOP n] * | item, … FROM devices [WHERE cond] [GROUP BY path, …],
// keywords in any case. An item is an attribute path (deviceId,
// tags.location.region, properties.reported.$metadata.$lastUpdated) or an
// aggregate (COUNT(), AVG, SUM, MIN, MAX of a path), each with an
// optional AS alias. Names are case-sensitive, except the twin's fixed
// fields (deviceId, status, connectionState, properties.reported …),
// which are found in any case as IoT Hub's own example SELECT DeviceId,
// LastActivityTime shows; a leading "devices." is the collection and is
// dropped. Keywords used as names are escaped: [[group]].
//
// Results. SELECT * returns the documents. A projection returns one object
// per document with the items in select order, named by alias or by the
// path's last name; an item whose path is undefined in the document is
// left out (Cosmos DB's rule; a document defining none gives {}). Two
// items with one name are an error. With aggregates or GROUP BY every
// item must be an aggregate or a GROUP BY path; there is one row per
// group (one in all without GROUP BY, also over no documents: COUNT() is
// then 0), rows ordered by their keys (undefined, null, false, true,
// numbers, strings, arrays, objects); an undefined key is a group of its
// own whose row leaves the key out. Unnamed aggregates are $1, $2 ….
// COUNT() counts documents; SUM and AVG count numbers and are undefined
// (left out) when a non-number is among them, SUM over nothing is 0, AVG,
// MIN and MAX over nothing are undefined; MIN and MAX order mixed types as
// above. GROUP BY attributes need not be selected (Cosmos DB's rule; we
// found no statement that IoT Hub requires it).
//
// Conditions. = != <> < > <= >= compare two values of the same primitive
// type (strings by UTF-8 bytes, numbers exactly, also large integers
// against floats, false < true, null = null). Anything else (different
// types, undefined, objects, arrays) makes the comparison undefined, and
// so does arithmetic (+ - * / %) on non-numbers or a division by zero.
// AND, OR and NOT are three-valued like Cosmos DB's: false AND undefined is
// false, true OR undefined is true, NOT undefined is undefined. A document
// matches only when the condition is true ("any constant different than
// Boolean true is considered as false", the IoT Hub reference), so
// status != 'enabled' does not match a twin without a status, and neither
// does x NIN ['a'] where x is undefined. x IN [c, …] is true when x
// equals one of the constants, false when x is a primitive that equals
// none, undefined otherwise; NIN is its negation.
//
// Functions: IS_DEFINED, IS_NULL, IS_BOOL, IS_NUMBER, IS_STRING,
// IS_OBJECT, IS_ARRAY, IS_PRIMITIVE, STARTSWITH(s, prefix),
// ENDSWITH(s, suffix), ABS, CEILING, FLOOR, ROUND, SIGN, SQRT, SQUARE,
// EXP, POWER(x, y). IoT Hub documents IS_DEFINED for twin queries and the
// rest for routing conditions; users report STARTSWITH works in twin
// queries and STARTS_WITH (the routing spelling) does not, so Tether
// answers STARTS_WITH with "did you mean 'STARTSWITH'?". ROUND is Cosmos
// DB's. A function given the wrong types is undefined.
//
// Not supported, each with a clear error: FROM devices.modules and
// devices.jobs, ORDER BY, indexing ([0]), expressions in the select list.
//
// Limits: 8,192 characters per query (IoT Hub's documented maximum),
// nesting 64 deep, 1,000 values per IN list.
//
// # Wire protocol (what the REST layer serves)
//
// Read from azure-iothub 1.16.6 (registry.js createQuery/_executeQueryFunc,
// query.js) and the C# and Java service SDKs:
//
//   - Request: POST /devices/query?api-version=2021-04-12, Content-Type
//     application/json; charset=utf-8, body {"query":"SELECT …"}. Headers
//     x-ms-max-item-count: page size (the Node SDK sends it only when
//     createQuery got a pageSize), x-ms-continuation: the previous
//     response's token (absent on the first page).
//   - Response 200, Content-Type application/json (the Node SDK parses the
//     body only then), body a JSON array of the page's items, headers
//     x-ms-item-type: "twin" for SELECT *, "raw" otherwise (Page.ItemType),
//     and x-ms-continuation: Page.Continuation only when it is non-empty.
//     The Node SDK sets hasMoreResults = (header !== undefined), so the
//     last page must carry no such header at all, not an empty one. The
//     C# SDK's GetNextAsTwinAsync throws unless the item type is "twin";
//     Java compares it with the query type it expected.
//   - Page size: ParsePageSize; absent = 100 (Tether's default; the Node
//     SDK's comment claims 1000), capped at 1000 (the IoT Hub guide of
//     2016 said "up to 1000", later versions "up to 100").
//   - Errors: every error of Parse is a *SyntaxError and every error of Run
//     a *ContinuationError: both are the caller's mistake, HTTP 400. IoT
//     Hub's Message body convention is {"Message":"ErrorCode:<Code>;<text>"}
//     (azure-sdk-wire.md); ArgumentInvalid (400004, "something in the
//     request payload is invalid") is the closest IoT Hub code we found —
//     no source shows the exact code IoT Hub uses for a bad query, and the
//     Node SDK turns any 400 into ArgumentError whatever the code. The
//     text should be err.Error() so the user sees the line and column.
//
// # Documents and sources
//
// Doc.Lookup returns the value at a path; evaluation reads strings,
// numbers (json.Number or float64, compared exactly) and booleans from it
// without allocating. MapDoc is a Doc over a decoded JSON object. Run
// drives Source.Scan in device-id order and resumes after the last id it
// returned, which makes paging stable while the registry changes.
//
// What a document costs to look at decides the speed of a scan, not the
// evaluator: over 100,000 twins decoded into nested maps, a condition on
// connectionState spends its time waiting for memory (each twin's map is
// elsewhere in the heap), while a Doc that keeps the twin's top-level
// fields in a small struct, held as any so Lookup does not allocate,
// answers several times faster (BenchmarkMatch/state-fielddoc). Items of
// a page are the documents themselves (SELECT *) or refer to their
// values (Row); encode them before the documents may change.
package devquery
