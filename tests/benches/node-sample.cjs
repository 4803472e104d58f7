// Node.js's own warm time for a Lambda handler, the baseline of `cargo bench --bench js`:
// the handler is required once, then invoked as Lambda's runtime would invoke it on a warm
// container (console.log goes to stdout, which the bench sends to /dev/null).
//
//   node tests/benches/node-sample.cjs <handler.js> <event.json> <invocations>
// prints {"p50_us": …, "p99_us": …} on stderr.
"use strict";
const [file, eventFile, count] = process.argv.slice(2);
const handler = require(require("path").resolve(file)).handler;
const template = require("fs").readFileSync(eventFile, "utf8");
const context = { functionName: "sample", functionVersion: "1", awsRequestId: "r", getRemainingTimeInMillis: () => 5000 };

function once() {
  // Lambda parses the event from JSON and stringifies the result for each invocation.
  const event = JSON.parse(template);
  return new Promise((resolve, reject) => {
    const done = (err, result) => (err ? reject(err) : resolve(JSON.stringify(result)));
    const ctx = { ...context, done, succeed: (r) => done(null, r), fail: (e) => done(e) };
    const returned = handler(event, ctx, done);
    if (returned && typeof returned.then === "function") returned.then((r) => done(null, r), done);
  });
}

(async () => {
  const n = Number(count);
  for (let i = 0; i < n / 10; i++) await once();
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await once();
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  samples.sort((a, b) => a - b);
  const p = (q) => samples[Math.min(samples.length - 1, Math.floor(samples.length * q))];
  process.stderr.write(JSON.stringify({ p50_us: p(0.5), p99_us: p(0.99) }) + "\n");
})();
