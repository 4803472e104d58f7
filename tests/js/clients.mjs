#!/usr/bin/env node
// Real JavaScript Cognito clients against a running synctrig-wasm server.
//
//   node tests/js/clients.mjs SCENARIO [SCENARIO...] --url http://127.0.0.1:PORT --pool IDENTITY_POOL_ID
//   (or SYNCTRIG_URL / SYNCTRIG_POOL in the environment)
//
// Scenarios (each prints one JSON object on its own stdout line, {"scenario": name, ...}):
//   sdk-v3        @aws-sdk/client-cognito-identity + @aws-sdk/client-cognito-sync, call by call.
//   sync-manager  amazon-cognito-js (the Cognito Sync Manager) on aws-sdk v2: two devices of one
//                 identity, a forced 409 on the second push, a same-key conflict, a remove.
//   logins-merge  the Sync Manager: a guest signs in as a user who has data (--dataset NAME).
//   dataset-metadata  the Sync Manager's refreshDatasetMetadata, then a synchronize.
//   identity-v3   the v3 SDK manages a pool with developer credentials (--key, --secret).
// Exit status 0 when every scenario ran (the caller asserts on the printed outcomes); non-zero with
// a message on stderr when a client call failed unexpectedly.
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import {
  CognitoIdentityClient,
  CreateIdentityPoolCommand,
  DescribeIdentityPoolCommand,
  GetCredentialsForIdentityCommand,
  GetIdCommand,
  GetOpenIdTokenForDeveloperIdentityCommand,
  ListIdentityPoolsCommand,
  LookupDeveloperIdentityCommand,
} from "@aws-sdk/client-cognito-identity";
import {
  CognitoSyncClient,
  DescribeDatasetCommand,
  DescribeIdentityUsageCommand,
  ListDatasetsCommand,
  ListRecordsCommand,
  UpdateRecordsCommand,
} from "@aws-sdk/client-cognito-sync";

const REGION = "us-east-1";
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// sdk-v3

const recs = (records) => (records ?? []).map((r) => [r.Key, r.Value ?? null, r.SyncCount]);
const rid = (out) => out.$metadata.requestId ?? null;

async function sdkV3({ url, pool }) {
  // GetId / GetCredentialsForIdentity are noAuth operations in the v3 model: no credentials needed.
  const identity = new CognitoIdentityClient({ region: REGION, endpoint: url, maxAttempts: 1 });
  const getId = await identity.send(new GetIdCommand({ IdentityPoolId: pool }));
  const IdentityId = getId.IdentityId;
  const got = await identity.send(new GetCredentialsForIdentityCommand({ IdentityId }));
  const c = got.Credentials;
  const client = new CognitoSyncClient({
    region: REGION,
    endpoint: url,
    maxAttempts: 1,
    credentials: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretKey, sessionToken: c.SessionToken },
  });
  // Keep the raw HTTP response headers of the last successful call, to show where requestId comes from.
  let lastHeaders = null;
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      lastHeaders = result.response?.headers ?? null;
      return result;
    },
    { step: "finalizeRequest", name: "captureResponseHeaders" },
  );
  const ids = { IdentityPoolId: pool, IdentityId };
  const list = (DatasetName, extra = {}) => client.send(new ListRecordsCommand({ ...ids, DatasetName, ...extra }));
  const update = (DatasetName, SyncSessionToken, RecordPatches) =>
    client.send(new UpdateRecordsCommand({ ...ids, DatasetName, SyncSessionToken, RecordPatches }));
  const listing = (o) => ({
    records: recs(o.Records),
    count: o.Count,
    datasetSyncCount: o.DatasetSyncCount,
    datasetExists: o.DatasetExists,
    deletedAfter: o.DatasetDeletedAfterRequestedSyncCount,
    mergedDatasetNames: o.MergedDatasetNames ?? null,
    hasToken: typeof o.SyncSessionToken === "string" && o.SyncSessionToken.length > 0,
    requestId: rid(o),
  });
  const put = (Key, Value, SyncCount) => ({ Op: "replace", Key, Value, SyncCount, DeviceLastModifiedDate: new Date() });
  const remove = (Key, SyncCount) => ({ Op: "remove", Key, SyncCount, DeviceLastModifiedDate: new Date() });
  const errorOf = (e) => ({
    name: e.name,
    fault: e.$fault ?? null,
    status: e.$metadata?.httpStatusCode ?? null,
    message: e.message,
    requestId: e.$metadata?.requestId ?? null,
  });
  const expectError = async (promise) => {
    try {
      const out = await promise;
      return { unexpectedSuccess: recs(out.Records) };
    } catch (e) {
      if (!e.$metadata) throw e; // not a service error: a client-side failure
      return errorOf(e);
    }
  };

  const out = {
    scenario: "sdk-v3",
    identityId: IdentityId,
    getIdRequestId: rid(getId),
    credentials: {
      identityId: got.IdentityId,
      hasAccessKeyId: !!c.AccessKeyId,
      hasSecretKey: !!c.SecretKey,
      hasSessionToken: !!c.SessionToken,
      expirationIsDate: c.Expiration instanceof Date && !Number.isNaN(c.Expiration.getTime()),
      expiresInSeconds: c.Expiration instanceof Date ? Math.round((c.Expiration.getTime() - Date.now()) / 1000) : null,
      requestId: rid(got),
    },
  };

  const l0 = await list("game");
  out.list0 = listing(l0);
  out.requestIdHeader = { header: lastHeaders?.["x-amzn-requestid"] ?? null, metadata: rid(l0) };
  const u1 = await update("game", l0.SyncSessionToken, [put("a", "1", 0), put("b", "2", 0), put("c", "3", 0)]);
  out.update1 = { records: recs(u1.Records), requestId: rid(u1) };
  const l1 = await list("game");
  out.list1 = listing(l1);
  const u2 = await update("game", l1.SyncSessionToken, [put("a", "10", 1), remove("b", 1)]);
  out.update2 = { records: recs(u2.Records), requestId: rid(u2) };
  const l2 = await list("game", { LastSyncCount: 1 });
  out.listSince1 = listing(l2);
  // A fresh token but a stale SyncCount for "c" (it is 1): 409.
  out.staleSyncCount = await expectError(update("game", l2.SyncSessionToken, [put("c", "33", 0)]));
  // A token from before the dataset last changed: 409.
  out.staleToken = await expectError(update("game", l1.SyncSessionToken, [put("c", "33", 1)]));
  const d = (await client.send(new DescribeDatasetCommand({ ...ids, DatasetName: "game" })));
  out.describeDataset = {
    datasetName: d.Dataset.DatasetName,
    identityId: d.Dataset.IdentityId,
    numRecords: d.Dataset.NumRecords,
    dataStorage: d.Dataset.DataStorage,
    creationDateIsDate: d.Dataset.CreationDate instanceof Date,
    lastModifiedDateIsDate: d.Dataset.LastModifiedDate instanceof Date,
    lastModifiedBy: d.Dataset.LastModifiedBy ?? null,
    requestId: rid(d),
  };

  // "." and ".." match the model's DatasetName pattern [\w.:-]+; the SDK puts them in the path as-is
  // and its signer normalises dot segments in the canonical URI. ".." syncs; ListRecords of "."
  // is signed exactly as DescribeDataset of "records", so the server refuses it.
  out.dotDatasets = {};
  for (const [name, value] of [["..", "dotdot"]]) {
    const first = await list(name);
    const u = await update(name, first.SyncSessionToken, [put("k", value, 0)]);
    const after = await list(name);
    out.dotDatasets[name] = { first: listing(first), update: recs(u.Records), after: listing(after) };
  }
  try {
    await list(".");
    out.dotListing = { error: null };
  } catch (e) {
    out.dotListing = { error: e.name, status: e.$metadata?.httpStatusCode ?? null, message: e.message };
  }
  // Nothing leaked into the parent path's neighbours: "game" is unchanged.
  out.gameAfterDots = listing(await list("game"));
  // Paging by hand (the v3 client has no paginator for cognito-sync): MaxResults + NextToken.
  out.pages = [];
  for (let NextToken, n = 0; n < 10; n++) {
    const page = await list("game", { MaxResults: 2, ...(NextToken ? { NextToken } : {}) });
    out.pages.push(recs(page.Records));
    NextToken = page.NextToken;
    if (!NextToken) break;
  }

  const ds = await client.send(new ListDatasetsCommand(ids));
  out.listDatasets = {
    datasets: (ds.Datasets ?? []).map((x) => [x.DatasetName, x.NumRecords, x.DataStorage]).sort(),
    count: ds.Count,
    requestId: rid(ds),
  };
  const usage = await client.send(new DescribeIdentityUsageCommand(ids));
  out.identityUsage = {
    identityId: usage.IdentityUsage.IdentityId,
    identityPoolId: usage.IdentityUsage.IdentityPoolId,
    datasetCount: usage.IdentityUsage.DatasetCount,
    dataStorage: usage.IdentityUsage.DataStorage,
    lastModifiedDateIsDate: usage.IdentityUsage.LastModifiedDate instanceof Date,
    requestId: rid(usage),
  };
  return out;
}

// ---------------------------------------------------------------------------------------------
// sync-manager

function loadV2(url) {
  process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = "1";
  const AWS = require("aws-sdk");
  require("amazon-cognito-js"); // attaches AWS.CognitoSyncManager to the aws-sdk module
  if (typeof AWS.CognitoSyncManager !== "function") throw new Error("amazon-cognito-js did not attach AWS.CognitoSyncManager");
  // maxRetries 0: no SDK-level retry can hide a server error; the library's own retries still run.
  AWS.config.update({ region: REGION, maxRetries: 0, cognitosync: { endpoint: url }, cognitoidentity: { endpoint: url } });
  return AWS;
}

const gate = () => {
  let open;
  const p = new Promise((resolve) => (open = resolve));
  return { p, open };
};

// Replace obj[name] for one call; wrapper(original, args) does the call.
function once(obj, name, wrapper) {
  const original = obj[name];
  obj[name] = function (...args) {
    obj[name] = original;
    return wrapper(original.bind(obj), args);
  };
}

class Device {
  constructor(AWS, label) {
    this.AWS = AWS;
    this.label = label;
    this.events = []; // callbacks that fired, in order, tagged with the phase
    this.http = []; // every cognito-sync call this device made: [phase, operation, status, errorCode, requestId]
    this.phase = "setup";
  }

  // A device = its own CognitoIdentityCredentials (device A: GetId + GetCredentialsForIdentity;
  // device B: the identity id A got, as an app would restore it, + its own GetCredentialsForIdentity),
  // its own CognitoSyncManager and its own in-memory store.
  async open(pool, identityId, datasetName, logins) {
    const AWS = this.AWS;
    const params = identityId ? { IdentityPoolId: pool, IdentityId: identityId } : { IdentityPoolId: pool };
    if (logins) params.Logins = logins;
    this.credentials = new AWS.CognitoIdentityCredentials(params);
    await this.credentials.getPromise();
    // The manager reads AWS.config.credentials once, and its AWS.CognitoSync client copies
    // AWS.config when constructed: swapping the global between devices gives each its own.
    AWS.config.credentials = this.credentials;
    this.manager = new AWS.CognitoSyncManager({ DataStore: AWS.CognitoSyncManager.StoreInMemory });
    const client = this.manager.remote.client;
    if (client.config.credentials !== this.credentials) throw new Error(`${this.label}: sync client does not use the device's credentials`);
    client.customizeRequests((req) =>
      req.on("complete", (resp) => {
        this.http.push([this.phase, req.operation, resp.httpResponse.statusCode, resp.error ? resp.error.code : null, resp.requestId ?? null]);
      }),
    );
    this.dataset = await new Promise((resolve, reject) =>
      this.manager.openOrCreateDataset(datasetName, (err, ds) => (err ? reject(err) : resolve(ds))),
    );
    return this;
  }

  identityId() {
    return this.credentials.identityId;
  }

  // The dataset again, as an app does after its identity changed (the local store is per identity).
  async reopen(datasetName) {
    this.dataset = await new Promise((resolve, reject) =>
      this.manager.openOrCreateDataset(datasetName, (err, ds) => (err ? reject(err) : resolve(ds))),
    );
  }

  accessKeyId() {
    return this.credentials.accessKeyId;
  }

  put(key, value) {
    return new Promise((resolve, reject) => this.dataset.put(key, value, (err) => (err ? reject(err) : resolve())));
  }

  remove(key) {
    return new Promise((resolve, reject) => this.dataset.remove(key, (err) => (err ? reject(err) : resolve())));
  }

  getAll() {
    return new Promise((resolve, reject) => this.dataset.getAll((err, map) => (err ? reject(err) : resolve(map))));
  }

  lastSyncCount() {
    return new Promise((resolve, reject) =>
      this.manager.local.getLastSyncCount(this.identityId(), this.dataset.datasetName, (err, n) => (err ? reject(err) : resolve(n))),
    );
  }

  synchronize(phase) {
    this.phase = phase;
    const ev = (name, detail) => this.events.push([phase, name, detail]);
    return new Promise((resolve) => {
      let done = false;
      const finish = (outcome) => {
        if (done) {
          ev("callbackAfterFinish", outcome);
          return;
        }
        done = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      const timer = setTimeout(() => {
        ev("timeout", null);
        finish("timeout");
      }, 20000);
      this.dataset.synchronize({
        onSuccess: (ds, updates) => {
          ev("onSuccess", (updates ?? []).map((r) => r.getKey()));
          finish("success");
        },
        onFailure: (err) => {
          ev("onFailure", err && err.message);
          finish("failure");
        },
        onConflict: (ds, conflicts, cb) => {
          ev(
            "onConflict",
            conflicts.map((c) => [c.getKey(), c.getLocalRecord().getValue(), c.getRemoteRecord().getValue(), c.getRemoteRecord().getSyncCount()]),
          );
          ds.resolve(conflicts.map((c) => c.resolveWithRemoteRecord()), () => cb(true));
        },
        onDatasetDeleted: (ds, name, cb) => {
          ev("onDatasetDeleted", name);
          cb(true);
        },
        onDatasetsMerged: (ds, names, cb) => {
          ev("onDatasetsMerged", names);
          cb(false);
        },
      });
    });
  }
}

// Both devices call ListRecords before either pushes; `first` pushes, and only then `second`
// pushes with its now stale SyncSessionToken, so the server must answer it 409 and the library
// must recover (pull, merge or raise onConflict, push again).
async function racingSync(phase, first, second) {
  const secondListed = gate();
  const firstPushed = gate();
  once(second.manager.remote, "listUpdates", (orig, args) => {
    const cb = args.pop();
    return orig(...args, (err, res) => {
      secondListed.open();
      cb(err, res);
    });
  });
  once(first.manager.remote, "putRecords", async (orig, args) => {
    await secondListed.p;
    const cb = args.pop();
    return orig(...args, (err, res) => {
      firstPushed.open();
      cb(err, res);
    });
  });
  once(second.manager.remote, "putRecords", async (orig, args) => {
    await firstPushed.p;
    return orig(...args);
  });
  const [a, b] = await Promise.all([first.synchronize(phase), second.synchronize(phase)]);
  return { [first.label]: a, [second.label]: b };
}

async function serverView(device, datasetName) {
  const out = await device.manager.remote.client
    .listRecords({ IdentityPoolId: device.credentials.params.IdentityPoolId, IdentityId: device.identityId(), DatasetName: datasetName })
    .promise();
  return {
    datasetSyncCount: out.DatasetSyncCount,
    records: (out.Records ?? []).map((r) => [r.Key, r.Value ?? null, r.SyncCount]).sort(),
  };
}

async function syncManager({ url, pool }) {
  const AWS = loadV2(url);
  const DATASET = "settings";
  const A = await new Device(AWS, "A").open(pool, null, DATASET);
  const B = await new Device(AWS, "B").open(pool, A.identityId(), DATASET);
  const out = {
    scenario: "sync-manager",
    identityIds: { A: A.identityId(), B: B.identityId() },
    distinctCredentials: A.accessKeyId() !== B.accessKeyId(),
    phases: {},
  };
  const snapshot = async () => ({
    A: await A.getAll(),
    B: await B.getAll(),
    lastSyncCount: { A: await A.lastSyncCount(), B: await B.lastSyncCount() },
  });

  // 1. A puts k1=v1 and synchronizes; B synchronizes and sees it.
  await A.put("k1", "v1");
  const p1 = { A: await A.synchronize("1-first-push") };
  p1.B = await B.synchronize("1-first-pull");
  out.phases.first = { outcomes: p1, ...(await snapshot()) };

  // 2. Different keys on both devices, pushed in a race: B's push is refused (409) and B recovers.
  await A.put("kA", "fromA");
  await B.put("kB", "fromB");
  const race = await racingSync("2-race", A, B);
  const again = { A: await A.synchronize("2-settle"), B: await B.synchronize("2-settle") };
  out.phases.differentKeys = { outcomes: race, settle: again, ...(await snapshot()) };

  // 3. The same key on both devices: B's push is refused, B pulls and gets onConflict; it keeps the remote record.
  await A.put("k1", "sameFromA");
  await B.put("k1", "sameFromB");
  const race3 = await racingSync("3-race", A, B);
  const again3 = { A: await A.synchronize("3-settle"), B: await B.synchronize("3-settle") };
  out.phases.sameKey = { outcomes: race3, settle: again3, ...(await snapshot()) };

  // 4. A removes a key; B learns of the deletion.
  await A.remove("kA");
  const p4 = { A: await A.synchronize("4-remove") };
  p4.B = await B.synchronize("4-remove");
  out.phases.remove = { outcomes: p4, ...(await snapshot()) };

  out.server = await serverView(A, DATASET);
  out.events = { A: A.events, B: B.events };
  out.http = { A: A.http, B: B.http };
  return out;
}

// A user signed in (Logins) on device U, a guest on device G. Then G signs in as the same user:
// aws-sdk v2's CognitoIdentityCredentials calls GetCredentialsForIdentity with the guest's id and
// the login, the server merges the guest into the user, and the Sync Manager, syncing the
// dataset under the user's identity, hands the guest's merged dataset to onDatasetsMerged.
async function loginsMerge({ url, pool, logins, dataset }) {
  const AWS = loadV2(url);
  const DATASET = dataset ?? "settings";
  const U = await new Device(AWS, "U").open(pool, null, DATASET, logins);
  await U.put("k", "fromUser");
  const u1 = await U.synchronize("user-push");
  const G = await new Device(AWS, "G").open(pool, null, DATASET);
  const guestId = G.identityId();
  await G.put("k", "fromGuest");
  const g1 = await G.synchronize("guest-push");
  // Sign in on G: the cached guest id goes with the login.
  G.credentials.params.Logins = logins;
  G.credentials.expired = true;
  await G.credentials.getPromise();
  const signedIn = G.identityId();
  await G.reopen(DATASET);
  const g2 = await G.synchronize("signed-in");
  return {
    scenario: "logins-merge",
    userId: U.identityId(),
    guestId,
    signedInId: signedIn,
    outcomes: { u1, g1, g2 },
    events: G.events,
    user: await U.getAll(),
  };
}

// The Sync Manager's own dataset listing (refreshDatasetMetadata: ListDatasets with its default
// MaxResults of 64, past the server's page of 20), then a synchronize: the listing must reach
// its callback (a refused page made the library throw a TypeError instead) and syncing go on.
async function datasetMetadata({ url, pool }) {
  const AWS = loadV2(url);
  const A = await new Device(AWS, "A").open(pool, null, "profile");
  await A.put("k", "v");
  const first = await A.synchronize("push");
  let uncaught = null;
  const onUncaught = (e) => {
    uncaught = String((e && e.stack) || e);
  };
  process.on("uncaughtException", onUncaught);
  const refreshed = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ timeout: true }), 10000);
    A.manager.refreshDatasetMetadata((err, datasets) => {
      clearTimeout(timer);
      resolve(err ? { error: err.message } : { names: datasets.map((d) => d.getDatasetName()).sort() });
    });
  });
  process.off("uncaughtException", onUncaught);
  await A.put("k2", "v2");
  const after = await A.synchronize("after-refresh");
  return { scenario: "dataset-metadata", first, refreshed, uncaught, after, server: await serverView(A, "profile"), http: A.http };
}

// The Cognito Identity API through the v3 SDK with a tenant's developer credentials: a pool made
// with CreateIdentityPool, a developer-authenticated user on two devices, errors by name.
async function identityV3({ url, key, secret }) {
  const dev = new CognitoIdentityClient({ region: REGION, endpoint: url, maxAttempts: 1, credentials: { accessKeyId: key, secretAccessKey: secret } });
  const created = await dev.send(
    new CreateIdentityPoolCommand({ IdentityPoolName: "from v3", AllowUnauthenticatedIdentities: false, DeveloperProviderName: "login.v3.app" }),
  );
  const pool = created.IdentityPoolId;
  const described = await dev.send(new DescribeIdentityPoolCommand({ IdentityPoolId: pool }));
  const listed = await dev.send(new ListIdentityPoolsCommand({ MaxResults: 10 }));
  const public_ = new CognitoIdentityClient({ region: REGION, endpoint: url, maxAttempts: 1 });
  const devices = [];
  for (let i = 0; i < 2; i++) {
    const t = await dev.send(new GetOpenIdTokenForDeveloperIdentityCommand({ IdentityPoolId: pool, Logins: { "login.v3.app": "ada" } }));
    const c = await public_.send(new GetCredentialsForIdentityCommand({ IdentityId: t.IdentityId, Logins: { "cognito-identity.amazonaws.com": t.Token } }));
    devices.push({ identityId: c.IdentityId, accessKeyId: c.Credentials.AccessKeyId, expiration: c.Credentials.Expiration instanceof Date });
  }
  const lookup = await dev.send(new LookupDeveloperIdentityCommand({ IdentityPoolId: pool, DeveloperUserIdentifier: "ada" }));
  let unauthenticated;
  try {
    await public_.send(new GetIdCommand({ IdentityPoolId: pool }));
    unauthenticated = "allowed";
  } catch (err) {
    unauthenticated = { name: err.name, status: err.$metadata.httpStatusCode, message: err.message };
  }
  return {
    scenario: "identity-v3",
    created: { name: created.IdentityPoolName, allowUnauthenticated: created.AllowUnauthenticatedIdentities, developer: created.DeveloperProviderName },
    describedSame: described.IdentityPoolId === pool && described.DeveloperProviderName === "login.v3.app",
    listed: listed.IdentityPools.map((p) => p.IdentityPoolId).includes(pool),
    devices,
    lookup: { identityId: lookup.IdentityId, users: lookup.DeveloperUserIdentifierList },
    unauthenticated,
  };
}

// ---------------------------------------------------------------------------------------------

const SCENARIOS = {
  "sdk-v3": sdkV3,
  "sync-manager": syncManager,
  "logins-merge": loginsMerge,
  "identity-v3": identityV3,
  "dataset-metadata": datasetMetadata,
};

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: "string" },
      pool: { type: "string" },
      logins: { type: "string" },
      key: { type: "string" },
      secret: { type: "string" },
      dataset: { type: "string" },
    },
  });
  const opts = {
    url: values.url ?? process.env.SYNCTRIG_URL,
    pool: values.pool ?? process.env.SYNCTRIG_POOL,
    logins: values.logins ? JSON.parse(values.logins) : undefined,
    key: values.key,
    secret: values.secret,
    dataset: values.dataset,
  };
  if (!opts.url || !opts.pool || positionals.length === 0) {
    throw new Error(`usage: clients.mjs SCENARIO... --url URL --pool IDENTITY_POOL_ID (scenarios: ${Object.keys(SCENARIOS).join(", ")})`);
  }
  for (const name of positionals) {
    if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name} (scenarios: ${Object.keys(SCENARIOS).join(", ")})`);
  }
  for (const name of positionals) {
    const result = await SCENARIOS[name](opts);
    process.stdout.write(JSON.stringify(result) + "\n");
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    const meta = err && err.$metadata ? ` [${err.name} status=${err.$metadata.httpStatusCode} requestId=${err.$metadata.requestId}]` : "";
    const v2 = err && err.statusCode ? ` [${err.code} status=${err.statusCode} requestId=${err.requestId}]` : "";
    process.stderr.write(`clients.mjs: ${err && err.stack ? err.stack : err}${meta}${v2}\n`);
    process.exit(1);
  },
);
