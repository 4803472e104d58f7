// A Lambda-style harness for Node.js: runs one Sync Trigger handler on one event as the
// Node.js 20 Lambda runtime (aws-lambda-nodejs-runtime-interface-client) would, and prints
// one JSON line: what the invocation ended with, and its log.
//
//   node lambda.cjs <script.js> <event.json> <deadline-ms> [handler-export]
//
// The runtime's rules that decide an outcome, as its source has them:
// - the script is loaded as a CommonJS module (`/var/task/index.js`); an error while
//   loading fails the invocation;
// - `context` carries its fields as own properties, plus done/succeed/fail and
//   callbackWaitsForEmptyEventLoop (true);
// - the first call of callback/done/succeed/fail (a returned Promise calls succeed or
//   fail) counts, later ones are ignored; an error is posted at once, so is the result of
//   done/succeed; callback's result when the event loop is empty (at once when
//   callbackWaitsForEmptyEventLoop is false); fail() without an error fails with "handled";
// - the result is posted as JSON.stringify(result ?? null); one that cannot be stringified
//   fails the invocation;
// - an uncaught exception or an unhandled rejection before the result is posted fails the
//   invocation; a handler that leaves the loop empty without settling posts null;
// - the deadline ends the invocation.
//
// Outcomes are named as synctrig-wasm maps them: an error given to callback/done/fail or a
// rejected Promise is "rejected" with Lambda's errorMessage; a throw, an uncaught error, an
// unhandled rejection or a result that cannot be stringified is "failed"; "timeout".
'use strict';

const fs = require('fs');
const Module = require('module');
const util = require('util');

const [scriptPath, eventPath, deadlineText, exportName = 'handler'] = process.argv.slice(2);
const deadlineMs = Number(deadlineText);
const logs = [];
let finished = false;
const realWrite = process.stdout.write.bind(process.stdout);
const started = Date.now();

function finish(outcome) {
  if (finished) return;
  finished = true;
  realWrite(JSON.stringify({ ...outcome, logs, ms: Date.now() - started }) + '\n');
  process.exit(0);
}

// Lambda's errorMessage for what a handler failed with (toRapidResponse).
function errorMessage(error) {
  try {
    if (util.types.isNativeError(error) || error instanceof Error) return String(error.message);
    return error.toString();
  } catch (_) {
    return 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack';
  }
}

const level = { log: 'info', info: 'info', warn: 'warn', error: 'error', debug: 'debug', trace: 'debug' };
for (const [name, lvl] of Object.entries(level)) {
  console[name] = (...args) => logs.push('[' + lvl + '] ' + util.format(...args).toWellFormed());
}
console.dir = (value) => logs.push('[info] ' + util.inspect(value));
process.stdout.write = (chunk) => { logs.push('[info] ' + String(chunk).replace(/\n$/, '')); return true; };
process.stderr.write = (chunk) => { logs.push('[error] ' + String(chunk).replace(/\n$/, '')); return true; };

process.env.AWS_REGION = process.env.AWS_DEFAULT_REGION = 'us-east-1';
process.env.AWS_LAMBDA_FUNCTION_NAME = 'test-fn';
process.env.AWS_LAMBDA_FUNCTION_VERSION = '7';
process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE = '64';
process.env.TZ = ':UTC';

let posted = false;
function post(result) {
  if (posted) return;
  posted = true;
  let json;
  try {
    json = JSON.stringify(result === undefined ? null : result);
  } catch (e) {
    return finish({ outcome: 'failed', message: 'Unable to stringify response body' });
  }
  finish({ outcome: 'ok', result: JSON.parse(json) });
}
function postError(kind, error) {
  if (posted) return;
  posted = true;
  finish({ outcome: kind, message: errorMessage(error) });
}

process.on('uncaughtException', (e) => postError('failed', e));
process.on('unhandledRejection', (reason) => postError('failed', reason));
setTimeout(() => { if (!posted) { posted = true; finish({ outcome: 'timeout' }); } }, deadlineMs).unref();

let handler;
try {
  const source = fs.readFileSync(scriptPath, 'utf8');
  const m = new Module('/var/task/index.js', null);
  m.filename = '/var/task/index.js';
  m.paths = [];
  m._compile(source, '/var/task/index.js');
  handler = m.exports[exportName];
  if (typeof handler !== 'function') throw new Error('index.' + exportName + ' is not a function');
} catch (e) {
  finish({ outcome: 'failed', message: errorMessage(e) });
}
// What the top level logged is the deploy's log, not the invocation's.
logs.length = 0;

let waits = true;
let pending = null; // the callback's result, posted when the loop is empty
// The runtime's rules: the first of callback/done/succeed/fail counts; an error is posted
// at once, a callback's result when the loop is empty (or at once without waiting).
let finishedCall = false;
const once = (fn) => (...args) => { if (finishedCall) return; finishedCall = true; fn(...args); };
const done = (err, result) => {
  if (err !== undefined && err !== null) postError('rejected', err);
  else post(result);
};
const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionVersion: '7',
  functionName: 'test-fn',
  memoryLimitInMB: '64',
  logGroupName: '/aws/lambda/test-fn',
  logStreamName: '2026/12/05/[7]00000000000000000000000000000000',
  clientContext: undefined,
  identity: undefined,
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:test-fn:7',
  awsRequestId: '00000000-0000-0000-0000-000000000000',
  getRemainingTimeInMillis: () => deadlineMs,
  done: once(done),
  succeed: once((result) => done(null, result)),
  fail: once((err) => done(err === undefined || err === null ? 'handled' : err)),
};
Object.defineProperty(context, 'callbackWaitsForEmptyEventLoop', {
  get: () => waits, set: (v) => { waits = v; }, enumerable: true,
});
const callback = once((err, result) => {
  if ((err !== undefined && err !== null) || !waits) done(err, result);
  else pending = [null, result];
});
process.on('beforeExit', () => {
  if (pending) done(...pending);
  else post(null);
});

// As the runtime does, the handler is called from an I/O callback (the poll phase):
// immediates it queues run before its first timers.
fs.readFile(eventPath, 'utf8', (err, text) => {
  const event = JSON.parse(text);
  let returned;
  try {
    returned = handler(event, context, callback);
  } catch (e) {
    postError('failed', e);
  }
  if (returned && typeof returned.then === 'function') {
    returned.then(context.succeed, context.fail);
  }
});
