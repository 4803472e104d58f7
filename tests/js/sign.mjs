#!/usr/bin/env node
// SigV4 signer CLI for differential tests: signs requests exactly as the AWS SDK for
// JavaScript v3 does for cognito-sync, so the server's verifier can be checked against it.
//
// stdin:  JSON array of cases
//   {"id": str, "method": str,
//    "path": str            raw, already percent-encoded, exactly as it will be sent,
//    "query": [[name, value], ...]   decoded pairs; duplicate names become arrays,
//    "headers": [[name, value], ...] extra headers to sign (any case, raw whitespace),
//    "body": str (utf-8), "host": "127.0.0.1:PORT", "region": str, "service": str,
//    "accessKeyId": str, "secretAccessKey": str, "sessionToken": str|null,
//    "date": str (optional: ISO-8601 or YYYYMMDDTHHMMSSZ signing time; default now)}
// stdout: JSON array of
//   {"id", "method",
//    "target": "<path>?<query>" (the query as the v3 SDK's node handler puts it on the wire),
//    "headers": [[name, value], ...] every header to send: host, content-length (when the body
//               is non-empty, as the SDK's contentLengthMiddleware adds it), the extra headers,
//               x-amz-date, x-amz-security-token (when a token is given), x-amz-content-sha256
//               and authorization,
//    "body": str}
//
// The request is built like the SDK builds one (HttpRequest with hostname/port/path, a query
// object, headers incl. host) and signed with @smithy/signature-v4's SignatureV4 using
// sha256 = @aws-crypto/sha256-js, uriEscapePath: true (the SDK's signingEscapePath default, which
// also normalises "." and ".." segments in the canonical path) and applyChecksum: true (the
// SignatureV4 default the SDK uses, which adds x-amz-content-sha256).
import { readFileSync } from "node:fs";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { buildQueryString } from "@smithy/querystring-builder";
import { SignatureV4 } from "@smithy/signature-v4";

function fail(message) {
  process.stderr.write(`sign.mjs: ${message}\n`);
  process.exit(2);
}

function parseDate(s) {
  if (s == null) return new Date();
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  const d = m ? new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`) : new Date(s);
  if (Number.isNaN(d.getTime())) fail(`bad date ${JSON.stringify(s)}`);
  return d;
}

function queryObject(pairs) {
  const query = {};
  for (const [name, value] of pairs ?? []) {
    if (typeof name !== "string" || typeof value !== "string") fail(`query pair must be two strings: ${JSON.stringify([name, value])}`);
    if (!Object.prototype.hasOwnProperty.call(query, name)) query[name] = value;
    else if (Array.isArray(query[name])) query[name].push(value);
    else query[name] = [query[name], value];
  }
  return query;
}

async function signCase(c) {
  for (const field of ["id", "method", "path", "host", "region", "service", "accessKeyId", "secretAccessKey"]) {
    if (typeof c[field] !== "string") fail(`case ${JSON.stringify(c.id)}: "${field}" must be a string`);
  }
  const body = c.body ?? "";
  const colon = c.host.lastIndexOf(":");
  const hostname = colon > 0 && !c.host.endsWith("]") ? c.host.slice(0, colon) : c.host;
  const port = colon > 0 && !c.host.endsWith("]") ? Number(c.host.slice(colon + 1)) : undefined;

  const headers = {};
  const extra = c.headers ?? [];
  const lowerNames = new Set();
  for (const [name, value] of extra) {
    if (typeof name !== "string" || typeof value !== "string") fail(`header must be two strings: ${JSON.stringify([name, value])}`);
    if (lowerNames.has(name.toLowerCase())) fail(`case ${JSON.stringify(c.id)}: header ${name} given twice (the SDK's header map cannot hold that)`);
    lowerNames.add(name.toLowerCase());
    headers[name] = value;
  }
  // hostHeaderMiddleware: host = hostname[:port] unless already present.
  if (!lowerNames.has("host")) headers.host = c.host;
  // contentLengthMiddleware: only for a truthy body without a content-length header.
  if (body && !lowerNames.has("content-length")) headers["content-length"] = String(Buffer.byteLength(body, "utf8"));

  const request = new HttpRequest({
    protocol: "http:",
    hostname,
    port,
    method: c.method,
    path: c.path,
    query: queryObject(c.query),
    headers,
    body: body === "" ? undefined : body,
  });
  const credentials = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
  if (c.sessionToken != null) credentials.sessionToken = c.sessionToken;
  const signer = new SignatureV4({
    credentials,
    region: c.region,
    service: c.service,
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: true,
  });
  const signed = await signer.sign(request, { signingDate: parseDate(c.date) });
  // NodeHttpHandler: path + "?" + buildQueryString(query) when the query string is non-empty.
  const qs = buildQueryString(signed.query ?? {});
  return {
    id: c.id,
    method: signed.method,
    target: qs ? `${signed.path}?${qs}` : signed.path,
    headers: Object.entries(signed.headers),
    body,
  };
}

let cases;
try {
  cases = JSON.parse(readFileSync(0, "utf8"));
} catch (e) {
  fail(`stdin is not JSON: ${e.message}`);
}
if (!Array.isArray(cases)) fail("stdin must be a JSON array of cases");
const out = [];
for (const c of cases) out.push(await signCase(c));
process.stdout.write(JSON.stringify(out) + "\n");
