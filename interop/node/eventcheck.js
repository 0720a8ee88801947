#!/usr/bin/env node
// Checks webhook deliveries of a Tether hub with the npm packages subscribers use,
// unmodified: @azure/eventgrid (EventGridDeserializer and its isSystemEvent type guards)
// and cloudevents (HTTP.toEvent and CloudEvent.validate()).
//
// Input: delivery records {"contentType": ..., "headers": {...}, "body": "<raw HTTP body>"}
// (headers optional; contentType defaults to headers["content-type"]):
//   node eventcheck.js                 one record per line on stdin (JSON lines)
//   node eventcheck.js FILE...         one record per file; a file that is not a record
//                                      is taken as a raw body, its schema guessed from it
//
// Event Grid schema (content type application/json): the body must be a JSON array;
// EventGridDeserializer.deserializeEventGridEvents must accept it (it checks the envelope:
// id, subject, eventType, eventTime, topic, dataVersion strings, metadataVersion "1",
// data present) and eventTime must become a valid Date.
//
// CloudEvents schema (application/cloudevents+json, or -batch+json for several events):
// HTTP.toEvent({headers, body}) must give CloudEvents, and each must pass validate()
// (the package's JSON schema for 1.0 and its attribute-name rule);
// EventGridDeserializer.deserializeCloudEvents must accept the same body and agree on
// id and type. time is also matched against RFC 3339 here, because the cloudevents
// parser silently replaces an unparsable time with the current time.
//
// For every event, exactly one of the type guards
//   isSystemEvent("Microsoft.Devices.DeviceConnected" | "DeviceDisconnected" |
//                 "DeviceCreated" | "DeviceDeleted" | "DeviceTelemetry", event)
// must hold, and data must have the members the guarded type declares
// (IotHubDeviceConnectedEventData … in @azure/eventgrid's models), with their types:
//   DeviceConnected/Disconnected  deviceId, moduleId, hubName: string;
//                                 deviceConnectionStateEventInfo.sequenceNumber: string (hex)
//   DeviceCreated/Deleted         deviceId, hubName: string; twin: DeviceTwinInfo
//   DeviceTelemetry               body; properties, systemProperties: string → string
// The guards only compare the type, so this is what makes the narrowed type true.
// Where the package's model differs from what IoT Hub documents on the wire, IoT Hub's form
// is accepted and the difference is reported in the result line ("modelNotes"):
// twin.properties.desired/reported carry $metadata.$lastUpdated and $version (model:
// metadata.lastUpdated, version); x509Thumbprint members are null when unset (model:
// optional string); telemetry body is a base64 string unless the message was JSON in
// UTF-8 (model: Record<string, unknown>).
//
// Output: one JSON line per event on stdout:
//   {"event":"checked","schema":...,"delivery":n,"index":i,"id":...,"type":...,"guard":...,...}
//   {"event":"failed","schema":...,"delivery":n,"index":i,"problems":[...]}
// then {"event":"summary",...}. Exit code 0 only when every event passed; otherwise 1, with
// each failure also described on stderr. Unusable input: {"event":"error","message":...}, 1.

"use strict";

const fs = require("fs");
const readline = require("readline");
const { EventGridDeserializer, isSystemEvent } = require("@azure/eventgrid");
const { HTTP } = require("cloudevents");

const DEVICE_EVENT_TYPES = [
  "Microsoft.Devices.DeviceConnected",
  "Microsoft.Devices.DeviceDisconnected",
  "Microsoft.Devices.DeviceCreated",
  "Microsoft.Devices.DeviceDeleted",
  "Microsoft.Devices.DeviceTelemetry",
];

const EVENT_GRID = "EventGridSchema";
const CLOUD_EVENTS = "CloudEventSchemaV1_0";

// RFC 3339 date-time (any number of fractional digits, Z or an offset).
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const deserializer = new EventGridDeserializer();

function out(o) {
  process.stdout.write(JSON.stringify(o) + "\n");
}

function msg(err) {
  if (err && Array.isArray(err.errors) && err.errors.length > 0) {
    return `${err.message}: ${JSON.stringify(err.errors)}`;
  }
  return err && err.message ? err.message : String(err);
}

const typeOf = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

// Member checks against the models; each returns problems (strings).
function member(obj, path, want, problems, opts = {}) {
  let v = obj;
  for (const k of path.split(".")) {
    v = v === null || typeof v !== "object" ? undefined : v[k];
  }
  const got = typeOf(v);
  if (got === "undefined" && opts.optional) {
    return v;
  }
  const wants = Array.isArray(want) ? want : [want];
  if (!wants.includes(got)) {
    problems.push(`data.${path} is ${got === "undefined" ? "missing" : got}, the model declares ${wants.join(" | ")}`);
  } else if (got === "string" && opts.nonEmpty && v === "") {
    problems.push(`data.${path} is empty`);
  }
  return v;
}

function stringMap(obj, path, problems) {
  const m = member(obj, path, "object", problems);
  if (m && typeof m === "object") {
    for (const [k, v] of Object.entries(m)) {
      if (typeof v !== "string") {
        problems.push(`data.${path}[${JSON.stringify(k)}] is ${typeOf(v)}, the model declares string`);
      }
    }
  }
  return m;
}

// checkData checks data against the model of the guarded type; it returns
// {problems, notes, info}.
function checkData(type, data, subject) {
  const problems = [];
  const notes = [];
  const info = {};
  if (typeOf(data) !== "object") {
    return { problems: [`data is ${typeOf(data)}, want an object`], notes, info };
  }
  switch (type) {
    case "Microsoft.Devices.DeviceConnected":
    case "Microsoft.Devices.DeviceDisconnected": {
      const id = member(data, "deviceId", "string", problems, { nonEmpty: true });
      const mod = member(data, "moduleId", "string", problems);
      member(data, "hubName", "string", problems, { nonEmpty: true });
      const seq = member(data, "deviceConnectionStateEventInfo.sequenceNumber", "string", problems, { nonEmpty: true });
      if (typeof seq === "string" && seq !== "" && !/^[0-9A-Fa-f]+$/.test(seq)) {
        problems.push(`data.deviceConnectionStateEventInfo.sequenceNumber ${JSON.stringify(seq)} is not hexadecimal, as the model documents`);
      }
      info.deviceId = id;
      info.sequenceNumber = seq;
      if (typeof id === "string") {
        const want = mod ? `devices/${id}/modules/${mod}` : `devices/${id}`;
        if (subject !== want) {
          problems.push(`subject ${JSON.stringify(subject)}, want ${JSON.stringify(want)}`);
        }
      }
      break;
    }
    case "Microsoft.Devices.DeviceCreated":
    case "Microsoft.Devices.DeviceDeleted": {
      const id = member(data, "deviceId", "string", problems, { nonEmpty: true });
      member(data, "hubName", "string", problems, { nonEmpty: true });
      info.deviceId = id;
      const twin = member(data, "twin", "object", problems);
      if (twin && typeof twin === "object") {
        for (const k of ["authenticationType", "connectionState", "deviceId", "etag", "lastActivityTime", "status", "statusUpdateTime"]) {
          member(data, `twin.${k}`, "string", problems);
        }
        for (const k of ["cloudToDeviceMessageCount", "version"]) {
          member(data, `twin.${k}`, "number", problems);
        }
        if (twin.deviceId !== id) {
          problems.push(`data.twin.deviceId ${JSON.stringify(twin.deviceId)} differs from data.deviceId ${JSON.stringify(id)}`);
        }
        const tp = member(data, "twin.x509Thumbprint", "object", problems);
        if (tp && typeof tp === "object") {
          for (const k of ["primaryThumbprint", "secondaryThumbprint"]) {
            const v = member(data, `twin.x509Thumbprint.${k}`, ["string", "null"], problems, { optional: true });
            if (v === null) {
              notes.push(`twin.x509Thumbprint.${k} is null (IoT Hub's wire form; model: optional string)`);
            }
          }
        }
        const props = member(data, "twin.properties", "object", problems);
        if (props && typeof props === "object") {
          for (const side of ["desired", "reported"]) {
            const p = member(data, `twin.properties.${side}`, "object", problems, { optional: true });
            if (!p || typeof p !== "object") {
              continue;
            }
            if ("$metadata" in p || "$version" in p) {
              member(data, `twin.properties.${side}.$metadata.$lastUpdated`, "string", problems);
              member(data, `twin.properties.${side}.$version`, "number", problems);
              notes.push(`twin.properties.${side} uses $metadata/$version (IoT Hub's wire form; model: metadata/version)`);
            } else {
              member(data, `twin.properties.${side}.metadata.lastUpdated`, "string", problems);
              member(data, `twin.properties.${side}.version`, "number", problems);
            }
          }
        }
      }
      if (typeof id === "string" && subject !== `devices/${id}`) {
        problems.push(`subject ${JSON.stringify(subject)}, want ${JSON.stringify(`devices/${id}`)}`);
      }
      break;
    }
    case "Microsoft.Devices.DeviceTelemetry": {
      const body = member(data, "body", ["object", "string"], problems);
      if (typeof body === "string") {
        notes.push("body is a base64 string (the message was not JSON in UTF-8; model: Record<string, unknown>)");
      }
      info.bodyKind = typeOf(body);
      stringMap(data, "properties", problems);
      const sys = stringMap(data, "systemProperties", problems);
      if (sys && typeof sys === "object") {
        const id = member(data, "systemProperties.iothub-connection-device-id", "string", problems, { nonEmpty: true });
        member(data, "systemProperties.iothub-enqueuedtime", "string", problems, { nonEmpty: true });
        info.deviceId = id;
        if (typeof id === "string" && subject !== `devices/${id}`) {
          problems.push(`subject ${JSON.stringify(subject)}, want ${JSON.stringify(`devices/${id}`)}`);
        }
      }
      break;
    }
  }
  return { problems, notes, info };
}

// guard applies every device type guard; exactly one must hold.
function guard(ev, problems) {
  const held = DEVICE_EVENT_TYPES.filter((t) => isSystemEvent(t, ev));
  if (held.length !== 1) {
    problems.push(`isSystemEvent holds for ${held.length} of the Microsoft.Devices types (${held.join(", ") || "none"}); want exactly one`);
    return undefined;
  }
  return held[0];
}

let failed = 0;
let checked = 0;
const counts = { [EVENT_GRID]: {}, [CLOUD_EVENTS]: {} };

function report(base, problems, fields) {
  if (problems.length > 0) {
    failed++;
    out({ event: "failed", ...base, ...fields, problems });
    process.stderr.write(`FAIL ${base.schema} delivery ${base.delivery} event ${base.index}` +
      `${fields.id ? ` (id ${fields.id}, type ${fields.type})` : ""}:\n  - ${problems.join("\n  - ")}\n`);
    return;
  }
  checked++;
  counts[base.schema][fields.type] = (counts[base.schema][fields.type] || 0) + 1;
  out({ event: "checked", ...base, ...fields });
}

function failDelivery(schema, n, problem) {
  report({ schema, delivery: n, index: -1 }, [problem], {});
}

async function checkEventGrid(n, rec) {
  const schema = EVENT_GRID;
  let raw;
  try {
    raw = JSON.parse(rec.body);
  } catch (err) {
    return failDelivery(schema, n, `body is not JSON: ${msg(err)}`);
  }
  if (!Array.isArray(raw)) {
    return failDelivery(schema, n, `body is a JSON ${typeOf(raw)}; Event Grid delivers an array`);
  }
  let evs;
  try {
    evs = await deserializer.deserializeEventGridEvents(rec.body);
  } catch (err) {
    return failDelivery(schema, n, `EventGridDeserializer.deserializeEventGridEvents rejected the body: ${msg(err)}`);
  }
  if (evs.length !== raw.length) {
    return failDelivery(schema, n, `deserializeEventGridEvents returned ${evs.length} events for an array of ${raw.length}`);
  }
  evs.forEach((ev, i) => {
    const problems = [];
    if (!(ev.eventTime instanceof Date) || Number.isNaN(ev.eventTime.getTime())) {
      problems.push(`eventTime ${JSON.stringify(raw[i].eventTime)} did not deserialize to a valid Date`);
    }
    if (!RFC3339.test(raw[i].eventTime)) {
      problems.push(`eventTime ${JSON.stringify(raw[i].eventTime)} is not an RFC 3339 date-time`);
    }
    const type = guard(ev, problems);
    const d = type ? checkData(type, ev.data, ev.subject) : { problems: [], notes: [], info: {} };
    problems.push(...d.problems);
    report({ schema, delivery: n, index: i }, problems, {
      id: ev.id, type: ev.eventType, guard: type, subject: ev.subject, time: raw[i].eventTime,
      topic: ev.topic, dataVersion: ev.dataVersion, metadataVersion: ev.metadataVersion,
      ...d.info, modelNotes: d.notes, data: ev.data,
    });
  });
}

async function checkCloudEvents(n, rec) {
  const schema = CLOUD_EVENTS;
  let raw;
  try {
    raw = JSON.parse(rec.body);
  } catch (err) {
    return failDelivery(schema, n, `body is not JSON: ${msg(err)}`);
  }
  const batch = (rec.contentType || "").toLowerCase().startsWith("application/cloudevents-batch+json");
  if (batch !== Array.isArray(raw)) {
    return failDelivery(schema, n, `content type ${JSON.stringify(rec.contentType)} with a JSON ${typeOf(raw)} body`);
  }
  const raws = Array.isArray(raw) ? raw : [raw];
  // cloudevents: the HTTP binding (structured or batched mode from the content type).
  const headers = { ...(rec.headers || {}) };
  if (rec.contentType) {
    headers["content-type"] = rec.contentType;
  }
  let ces;
  try {
    const got = HTTP.toEvent({ headers, body: rec.body });
    ces = Array.isArray(got) ? got : [got];
  } catch (err) {
    return failDelivery(schema, n, `cloudevents HTTP.toEvent rejected the delivery: ${msg(err)}`);
  }
  // @azure/eventgrid: the CloudEvent deserializer.
  let egs;
  try {
    egs = await deserializer.deserializeCloudEvents(rec.body);
  } catch (err) {
    return failDelivery(schema, n, `EventGridDeserializer.deserializeCloudEvents rejected the body: ${msg(err)}`);
  }
  if (ces.length !== raws.length || egs.length !== raws.length) {
    return failDelivery(schema, n, `body holds ${raws.length} events; cloudevents read ${ces.length}, @azure/eventgrid ${egs.length}`);
  }
  raws.forEach((r, i) => {
    const problems = [];
    const ce = ces[i];
    const eg = egs[i];
    try {
      ce.validate();
    } catch (err) {
      problems.push(`cloudevents CloudEvent.validate() failed: ${msg(err)}`);
    }
    if (typeof r.time === "string" && !RFC3339.test(r.time)) {
      problems.push(`time ${JSON.stringify(r.time)} is not an RFC 3339 date-time`);
    }
    if (r.time !== undefined && (!(eg.time instanceof Date) || Number.isNaN(eg.time.getTime()))) {
      problems.push(`@azure/eventgrid did not deserialize time ${JSON.stringify(r.time)} to a valid Date`);
    }
    if (ce.id !== eg.id || ce.type !== eg.type || ce.source !== eg.source || ce.subject !== eg.subject) {
      problems.push(`the packages disagree: cloudevents ${JSON.stringify([ce.id, ce.type, ce.source, ce.subject])}, ` +
        `@azure/eventgrid ${JSON.stringify([eg.id, eg.type, eg.source, eg.subject])}`);
    }
    if (eg.datacontenttype !== "application/json") {
      problems.push(`datacontenttype ${JSON.stringify(eg.datacontenttype)}, want "application/json" (data is JSON)`);
    }
    const type = guard(eg, problems);
    if (type && !isSystemEvent(type, ce)) {
      problems.push(`isSystemEvent(${JSON.stringify(type)}) holds for @azure/eventgrid's CloudEvent but not for cloudevents'`);
    }
    const d = type ? checkData(type, eg.data, eg.subject) : { problems: [], notes: [], info: {} };
    problems.push(...d.problems);
    if (type && JSON.stringify(ce.data) !== JSON.stringify(eg.data)) {
      problems.push("the packages disagree on data");
    }
    report({ schema, delivery: n, index: i }, problems, {
      id: eg.id, type: eg.type, guard: type, subject: eg.subject, time: r.time, source: eg.source,
      specversion: eg.specversion, datacontenttype: eg.datacontenttype,
      extensionAttributes: eg.extensionAttributes, ...d.info, modelNotes: d.notes, data: eg.data,
    });
  });
}

// schemaOf picks the schema from the content type, or from the body when
// there is none.
function schemaOf(rec) {
  const ct = (rec.contentType || "").toLowerCase();
  if (ct.startsWith("application/cloudevents")) {
    return CLOUD_EVENTS;
  }
  if (ct.startsWith("application/json")) {
    return EVENT_GRID;
  }
  if (ct !== "") {
    return undefined;
  }
  try {
    const o = JSON.parse(rec.body);
    const first = Array.isArray(o) ? o[0] : o;
    if (first && first.specversion !== undefined) {
      rec.contentType = Array.isArray(o) ? "application/cloudevents-batch+json" : "application/cloudevents+json";
      return CLOUD_EVENTS;
    }
    if (first && first.eventType !== undefined) {
      rec.contentType = "application/json";
      return EVENT_GRID;
    }
  } catch (_) {
    // not JSON: reported by the check
  }
  return undefined;
}

// normalize turns a parsed record into {contentType, headers, body} with
// lower-case header names and string values.
function normalize(o) {
  const headers = {};
  for (const [k, v] of Object.entries(o.headers || {})) {
    headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : String(v);
  }
  const body = typeof o.body === "string" ? o.body : JSON.stringify(o.body);
  return { contentType: o.contentType || headers["content-type"] || "", headers, body };
}

async function readRecords() {
  const files = process.argv.slice(2);
  const recs = [];
  if (files.length > 0) {
    for (const f of files) {
      const text = fs.readFileSync(f, "utf8");
      let o;
      try {
        o = JSON.parse(text);
      } catch (_) {
        o = undefined;
      }
      if (o && !Array.isArray(o) && o.body !== undefined && o.specversion === undefined) {
        recs.push({ ...normalize(o), source: f });
      } else {
        recs.push({ contentType: "", headers: {}, body: text, source: f });
      }
    }
    return recs;
  }
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === "") {
      continue;
    }
    let o;
    try {
      o = JSON.parse(text);
    } catch (err) {
      throw new Error(`stdin line ${line} is not JSON: ${msg(err)}`);
    }
    if (!o || typeof o !== "object" || o.body === undefined) {
      throw new Error(`stdin line ${line} is not a delivery record {contentType, headers, body}`);
    }
    recs.push({ ...normalize(o), source: `stdin:${line}` });
  }
  return recs;
}

async function main() {
  const recs = await readRecords();
  if (recs.length === 0) {
    throw new Error("no deliveries to check (give files, or JSON lines on stdin)");
  }
  for (const [i, rec] of recs.entries()) {
    const n = i + 1;
    const schema = schemaOf(rec);
    if (schema === EVENT_GRID) {
      await checkEventGrid(n, rec);
    } else if (schema === CLOUD_EVENTS) {
      await checkCloudEvents(n, rec);
    } else {
      failDelivery("unknown", n, `${rec.source}: cannot tell the schema (content type ${JSON.stringify(rec.contentType)})`);
    }
  }
  out({ event: "summary", deliveries: recs.length, checked, failed, counts });
  if (failed > 0) {
    process.stderr.write(`eventcheck: ${failed} of ${checked + failed} checks failed\n`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  out({ event: "error", message: msg(err) });
  process.stderr.write(`eventcheck: ${msg(err)}\n`);
  process.exitCode = 1;
});
