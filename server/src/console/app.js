// The synctrig-wasm console: one page, hash routes, and the same API every client calls.
// Requests carry the session cookie set at sign-in plus the console header; the server
// authenticates them as the credential that signed in. Every value from the API is put in
// the page as text (never as HTML): record values are other people's data.

const main = document.getElementById("main");
const statusArea = document.getElementById("status");
let session = null;
/** Bumped on every navigation: a page still loading after the user moved on draws nothing. */
let navToken = 0;
/** What the page shown redraws when the window changes size (the plot), if anything. */
let onResize = null;
let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => onResize?.(), 150);
});
/** Tells this console's other tabs that the session changed (signed in or out). */
const tabs = "BroadcastChannel" in window ? new BroadcastChannel("synctrig-console") : null;

// ---- DOM ----------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function table(headers, rows, opts = {}) {
  // The wrapper scrolls sideways on a narrow screen: it takes focus so the keyboard can.
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": opts.label || null },
    h("table", { "aria-label": opts.label },
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", class: x.narrow ? "hide-narrow" : null }, x.title || x)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, opts.empty || "None.")))));
}

function errorBox(e, editor) {
  const name = e.name && e.name !== "Error" ? e.name : "Error";
  const message = e.message || String(e);
  return h("div", { class: "error", role: "alert" }, h("strong", {}, name), ": ", message, goToLine(message, editor));
}

/** A button that puts the cursor on the script's line an error names (`index.js:18:50`). */
function goToLine(text, editor) {
  const at = editor && /index\.js:(\d+)(?::(\d+))?/.exec(text || "");
  if (!at) return null;
  const [line, column] = [Number(at[1]), Number(at[2] || 1)];
  return h("div", { class: "actions" }, h("button", { type: "button", onclick: () => editor.goTo(line, column) }, `Go to line ${line}`));
}

/** A code editor: a textarea with line numbers beside it. */
function codeEditor(attrs, value) {
  const numbers = h("pre", { class: "gutter", "aria-hidden": "true" });
  const area = h("textarea", { ...attrs, wrap: "off", spellcheck: "false" });
  area.value = value;
  const number = () => {
    const lines = area.value.split("\n").length;
    if (numbers.childElementCount !== lines) {
      numbers.replaceChildren(...Array.from({ length: lines }, (_, i) => h("span", {}, String(i + 1))));
    }
    numbers.scrollTop = area.scrollTop;
  };
  area.addEventListener("input", number);
  area.addEventListener("scroll", () => { numbers.scrollTop = area.scrollTop; });
  number();
  const el = h("div", { class: "editor" }, numbers, area);
  el.area = area;
  el.goTo = (line, column) => {
    const lines = area.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    const at = Math.min(start + Math.max(column - 1, 0), start + (lines[line - 1] || "").length);
    area.focus();
    area.setSelectionRange(at, start + (lines[line - 1] || "").length);
    // Scroll the line into view: the textarea does not do it for a selection set by script.
    const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (line - 3) * lineHeight);
  };
  return el;
}

/** A box of text that may scroll: reachable with the keyboard, and named. */
function scrollBox(attrs, text) {
  return h("pre", { tabindex: "0", role: "region", ...attrs }, text);
}

function when(seconds) {
  if (seconds === undefined || seconds === null) return "";
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

// ---- API ----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(name, message, status) {
    super(message);
    this.name = name;
    this.status = status;
  }
}

async function call(method, path, body, extraHeaders = {}) {
  const headers = { "x-synctrig-console": "1", ...extraHeaders };
  if (body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  } catch (e) {
    throw new ApiError("NetworkError", `the server could not be reached: ${e.message}`);
  }
  const text = await response.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { message: text }; }
  if (!response.ok) {
    const name = (data.__type || response.headers.get("x-amzn-errortype") || `HTTP ${response.status}`).split("#").pop();
    // A refused console session (signed out in another tab, expired, its key deleted):
    // this tab is signed out too.
    if (response.status === 401 || (name === "NotAuthorizedException" && /sign in again/.test(data.message || ""))) {
      if (session) { session = null; signedOut(); }
    }
    throw new ApiError(name, data.message || data.Message || response.statusText, response.status);
  }
  return data;
}

const sync = (method, path, body) => call(method, path, body);
const identity = (operation, body) => call("POST", "/", body, {
  "content-type": "application/x-amz-json-1.1",
  "x-amz-target": `AWSCognitoIdentityService.${operation}`,
});
const enc = encodeURIComponent;

// ---- progress and messages ----------------------------------------------------------

/** Runs `work` with `button` disabled and a progress line; shows the error, if any, in `into`. */
async function busy(button, label, work, into) {
  if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
  statusArea.replaceChildren(h("div", { class: "progress" }, h("progress", { "aria-label": label }), label));
  if (into) into.replaceChildren();
  try {
    return await work();
  } catch (e) {
    if (into) into.replaceChildren(errorBox(e)); else statusArea.replaceChildren(errorBox(e));
    if (!into) return undefined;
    return undefined;
  } finally {
    if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
    if (statusArea.querySelector("progress")) statusArea.replaceChildren();
  }
}

/**
 * A success notice, shown until the user moves on. `withNavigation`: the action that made it
 * goes on to another page (or draws this one again), so the notice outlives that one step.
 */
function notice(text, withNavigation = false) {
  const until = withNavigation ? navToken + 1 : navToken;
  statusArea.replaceChildren(h("div", { class: "success", "data-until": String(until) }, text));
}

// ---- sign in ------------------------------------------------------------------------

function signedIn(s) {
  session = s;
  // Functions belong to a tenant: the operator's root key has none to show.
  for (const a of document.querySelectorAll("#nav a[data-tenant]")) a.hidden = s.Principal === "root";
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  document.getElementById("who").textContent = s.Principal === "root"
    ? `operator (root) · ${s.AccessKeyId}`
    : `tenant ${s.Tenant} · ${s.AccessKeyId}`;
}

function signedOut() {
  session = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  if (location.hash !== "#/signin") location.hash = "#/signin";
  else route();
}

function signInPage() {
  const out = h("div");
  const key = h("input", { id: "access-key", type: "text", name: "access-key", autocomplete: "username", required: true, spellcheck: "false" });
  const secret = h("input", { id: "secret-key", type: "password", name: "secret-key", autocomplete: "current-password", required: true });
  const button = h("button", { class: "primary", type: "submit" }, "Sign in");
  const form = h("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      await busy(button, "Signing in…", async () => {
        const s = await call("POST", "/console/session", { AccessKeyId: key.value.trim(), SecretAccessKey: secret.value });
        signedIn(s);
        tabs?.postMessage("signed-in");
        location.hash = "#/pools";
      }, out);
    },
  },
  h("label", { for: "access-key" }, "Access key ID"), key,
  h("label", { for: "secret-key" }, "Secret access key"), secret,
  h("div", { class: "actions" }, button), out);
  show(h("h1", {}, "Sign in"),
    h("section", { class: "card" },
      h("p", { class: "muted" }, "Use a tenant's developer credentials (from ", h("code", {}, "admin create-tenant"), ") or the operator's root credentials."),
      form));
  key.focus();
}

// ---- identity pools -----------------------------------------------------------------

async function poolsPage() {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const out = h("div");
  const name = h("input", { id: "pool-name", type: "text", required: true, maxlength: 128 });
  const unauth = h("input", { id: "pool-unauth", type: "checkbox" });
  const devProvider = h("input", { id: "pool-developer-provider", type: "text", placeholder: "login.mycompany.myapp" });
  const providers = h("textarea", { id: "pool-providers", rows: 3, class: "short", placeholder: "accounts.google.com=client-id" });
  const button = h("button", { class: "primary", type: "submit" }, "Create pool");
  const form = h("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      await busy(button, "Creating the identity pool…", async () => {
        const supported = {};
        for (const line of providers.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
          const [k, ...v] = line.split("=");
          supported[k.trim()] = v.join("=").trim();
        }
        const body = { IdentityPoolName: name.value.trim(), AllowUnauthenticatedIdentities: unauth.checked };
        if (devProvider.value.trim()) body.DeveloperProviderName = devProvider.value.trim();
        if (Object.keys(supported).length) body.SupportedLoginProviders = supported;
        const pool = await identity("CreateIdentityPool", body);
        location.hash = `#/pools/${enc(pool.IdentityPoolId)}`;
      }, out);
    },
  },
  h("label", { for: "pool-name" }, "Identity pool name"), name,
  h("label", { class: "inline", for: "pool-unauth" }, unauth, "Enable access to unauthenticated identities"),
  h("label", { for: "pool-developer-provider" }, "Developer provider name (optional)"), devProvider,
  h("label", { for: "pool-providers" }, "Login providers (optional, one provider=app-id per line)"), providers,
  h("div", { class: "actions" }, button), out);
  show(h("h1", {}, "Identity pools"),
    h("section", { class: "card" }, h("h2", {}, "Your identity pools"), list),
    h("section", { class: "card" }, h("h2", {}, "Create new identity pool"), form));
  try {
    const pools = [];
    let token;
    do {
      const page = await identity("ListIdentityPools", { MaxResults: 60, NextToken: token });
      pools.push(...page.IdentityPools);
      token = page.NextToken;
    } while (token && pools.length < 600);
    list.replaceChildren(table(["Name", "Identity pool ID"], pools.map((p) =>
      h("tr", {}, h("td", {}, link(`#/pools/${enc(p.IdentityPoolId)}`, p.IdentityPoolName)), h("td", { class: "mono" }, p.IdentityPoolId))),
    { label: "Identity pools", empty: "No identity pools yet." }));
  } catch (e) {
    list.replaceChildren(errorBox(e));
  }
}

async function functionNames() {
  const { Functions } = await sync("GET", "/synctrig/functions");
  return Functions;
}

async function poolPage(poolId, params) {
  const token = navToken;
  const base = `/identitypools/${enc(poolId)}`;
  let pool;
  try {
    pool = await identity("DescribeIdentityPool", { IdentityPoolId: poolId });
  } catch (e) {
    if (token !== navToken) return;
    show(h("h1", {}, "Identity pool"), errorBox(e), h("p", {}, link("#/pools", "Back to identity pools")));
    return;
  }
  if (token !== navToken) return;
  const usage = h("div", { class: "figures" });
  const editOut = h("div");
  const browser = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const editButton = h("button", { type: "button", "aria-expanded": "false", "aria-controls": "edit-pool" }, "Edit identity pool");
  const edit = h("section", { class: "card", id: "edit-pool", hidden: true });
  editButton.addEventListener("click", () => {
    edit.hidden = !edit.hidden;
    editButton.setAttribute("aria-expanded", String(!edit.hidden));
    if (!edit.hidden) edit.querySelector("input, select, summary")?.focus();
  });
  show(h("p", {}, link("#/pools", "← Identity pools")),
    h("h1", {}, pool.IdentityPoolName),
    h("p", { class: "mono" }, pool.IdentityPoolId),
    h("div", { class: "actions" }, editButton),
    edit,
    h("section", { class: "card" }, h("h2", {}, "Usage"), usage),
    h("section", { class: "card" }, h("h2", {}, "Identity browser"), browser));

  // Edit identity pool → Cognito Events → Sync Trigger.
  const unauth = h("input", { id: "edit-unauth", type: "checkbox", checked: pool.AllowUnauthenticatedIdentities });
  const trigger = h("select", { id: "sync-trigger" }, h("option", { value: "" }, "None"));
  // Save stays off until the current settings are loaded: saving over a failed load would
  // clear the pool's trigger.
  const save = h("button", { class: "primary", type: "submit", disabled: true }, "Save Changes");
  let current = null;
  const events = h("details", { id: "cognito-events" }, h("summary", {}, "Cognito Events"),
    h("p", { class: "muted" }, "The Sync Trigger runs on every update of a dataset in this pool and may change, remove or add records before they are stored."),
    h("label", { for: "sync-trigger" }, "Sync Trigger"), trigger);
  // Cognito Streams and push sync (SetIdentityPoolConfiguration): saved only when changed.
  const streamName = h("input", { id: "stream-name", type: "text", maxlength: "128", autocomplete: "off" });
  const streamRole = h("input", { id: "stream-role", type: "text", maxlength: "2048", autocomplete: "off", placeholder: "arn:aws:iam::123456789012:role/…" });
  const streaming = h("input", { id: "stream-enabled", type: "checkbox" });
  const streamState = h("p", { id: "stream-state", class: "muted", "aria-live": "polite" });
  const bulkOut = h("div");
  const bulkState = h("p", { id: "bulk-state", "aria-live": "polite" });
  const bulkButton = h("button", { type: "button", id: "bulk-publish" }, "Start bulk publish");
  const pushArns = h("textarea", { id: "push-arns", rows: "3", spellcheck: "false", placeholder: "arn:aws:sns:us-east-1:123456789012:app/GCM/MyApp" });
  const pushRole = h("input", { id: "push-role", type: "text", maxlength: "2048", autocomplete: "off" });
  let configured = null;
  const configBody = () => {
    const streams = { StreamingStatus: streaming.checked ? "ENABLED" : "DISABLED" };
    if (streamName.value.trim()) streams.StreamName = streamName.value.trim();
    if (streamRole.value.trim()) streams.RoleArn = streamRole.value.trim();
    const push = { ApplicationArns: pushArns.value.split("\n").map((l) => l.trim()).filter(Boolean) };
    if (pushRole.value.trim()) push.RoleArn = pushRole.value.trim();
    return { CognitoStreams: streams, PushSync: push };
  };
  const showConfig = (c) => {
    const s = c.CognitoStreams || {};
    streamName.value = s.StreamName || "";
    streamRole.value = s.RoleArn || "";
    streaming.checked = s.StreamingStatus === "ENABLED";
    streamState.textContent = s.DisabledReason ? `Streaming was turned off: ${s.DisabledReason}` : "";
    pushArns.value = ((c.PushSync || {}).ApplicationArns || []).join("\n");
    pushRole.value = (c.PushSync || {}).RoleArn || "";
    configured = JSON.stringify(configBody());
  };
  const showBulk = (d) => {
    const status = { NOT_STARTED: "Not started", IN_PROGRESS: "In progress", SUCCEEDED: "Succeeded", FAILED: "Failed" }[d.BulkPublishStatus] || d.BulkPublishStatus;
    bulkState.replaceChildren("Bulk publish: ", h("strong", {}, status),
      d.BulkPublishStartTime ? ` (started ${when(d.BulkPublishStartTime)}` : "",
      d.BulkPublishCompleteTime ? `, completed ${when(d.BulkPublishCompleteTime)})` : d.BulkPublishStartTime ? ")" : "",
      d.FailureMessage ? ` — ${d.FailureMessage}` : "");
  };
  bulkButton.addEventListener("click", () => busy(bulkButton, "Starting the bulk publish…", async () => {
    await sync("POST", `${base}/bulkpublish`);
    showBulk(await sync("POST", `${base}/getBulkPublishDetails`));
    notice("Bulk publish started: every dataset of this pool is published to its stream as it stands.");
  }, bulkOut));
  const streamsSection = h("details", { id: "cognito-streams" }, h("summary", {}, "Cognito Streams"),
    h("p", { class: "muted" }, "Every committed change of a dataset in this pool is published, once and in order, to this JetStream stream on the server's NATS broker. The broker's own credentials replace the role; a role ARN entered here is kept."),
    h("label", { for: "stream-name" }, "Stream name"), streamName,
    h("label", { for: "stream-role" }, "Role ARN (optional)"), streamRole,
    h("label", { class: "inline", for: "stream-enabled" }, streaming, "Enable streaming"), streamState,
    h("h3", {}, "Bulk publish"),
    h("p", { class: "muted" }, "Publishes every dataset of the pool as it stands, at most once a day."),
    bulkState, h("div", { class: "actions" }, bulkButton), bulkOut);
  const pushSection = h("details", { id: "push-sync" }, h("summary", {}, "Push synchronization"),
    h("p", { class: "muted" }, "After a change, each other device of the identity subscribed to the dataset gets a push message on the server's NATS broker, for a push gateway to deliver."),
    h("label", { for: "push-arns" }, "Platform application ARNs (one per line; none turns push sync off)"), pushArns,
    h("label", { for: "push-role" }, "Role ARN (optional)"), pushRole);
  edit.append(h("h2", {}, "Edit identity pool"), h("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      await busy(save, "Saving…", async () => {
        if (unauth.checked !== pool.AllowUnauthenticatedIdentities) {
          const { ResponseMetadata, ...shape } = pool;
          pool = await identity("UpdateIdentityPool", { ...shape, AllowUnauthenticatedIdentities: unauth.checked });
        }
        if (trigger.value !== current) {
          await sync("POST", `${base}/events`, { Events: { SyncTrigger: trigger.value } });
          current = trigger.value;
        }
        if (JSON.stringify(configBody()) !== configured) {
          showConfig(await sync("POST", `${base}/configuration`, configBody()));
        }
        notice(trigger.value ? `Saved: the Sync Trigger is ${trigger.value}.` : "Saved: no Sync Trigger.");
      }, editOut);
    },
  }, h("label", { class: "inline", for: "edit-unauth" }, unauth, "Enable access to unauthenticated identities"),
  events, streamsSection, pushSection, h("div", { class: "actions" }, save), editOut));
  try {
    const [{ Events }, fns, config, bulk] = await Promise.all([sync("GET", `${base}/events`), functionNames(),
      sync("GET", `${base}/configuration`), sync("POST", `${base}/getBulkPublishDetails`)]);
    current = Events.SyncTrigger || "";
    showConfig(config);
    showBulk(bulk);
    // "latest" for every function, and its ten newest fixed versions.
    const versions = await Promise.all(fns.map((f) => sync("GET", `/synctrig/functions/${enc(f.Name)}`).catch((e) => e)));
    fns.forEach((f, i) => {
      const group = h("optgroup", { label: f.Name }, h("option", { value: f.Name }, `${f.Name} (latest)`));
      const listed = versions[i] instanceof Error ? [] : versions[i].Versions.slice(0, 10);
      for (const v of listed) group.append(h("option", { value: `${f.Name}:${v.Version}` }, `${f.Name} version ${v.Version}`));
      trigger.append(group);
    });
    const failed = versions.find((v) => v instanceof Error);
    if (failed) editOut.replaceChildren(errorBox(failed));
    if (current && ![...trigger.options].some((o) => o.value === current)) trigger.append(h("option", { value: current }, current));
    trigger.value = current;
    save.disabled = false;
    if (params.get("edit")) { edit.hidden = false; events.open = true; editButton.setAttribute("aria-expanded", "true"); }
  } catch (e) {
    editOut.replaceChildren(errorBox(e));
  }

  // Usage figures.
  try {
    const { IdentityPoolUsage: u } = await sync("GET", base);
    const { Identities } = await identity("ListIdentities", { IdentityPoolId: poolId, MaxResults: 60 });
    const figure = (name, value) => h("div", { class: "figure" }, h("div", { class: "value" }, value), h("div", { class: "name" }, name));
    usage.replaceChildren(
      figure("Identities", Identities.length >= 60 ? "60+" : Identities.length),
      figure("Sync sessions", u.SyncSessionsCount),
      figure("Data stored", bytes(u.DataStorage)),
      figure("Last modified", u.LastModifiedDate ? when(u.LastModifiedDate) : "—"));
    await identityBrowser(browser, poolId, Identities, params);
  } catch (e) {
    usage.replaceChildren(errorBox(e));
    browser.replaceChildren();
  }
}

async function identityBrowser(into, poolId, identities, params) {
  const selectedIdentity = params.get("identity");
  const selectedDataset = params.get("dataset");
  const here = (q) => `#/pools/${enc(poolId)}?${new URLSearchParams(q)}`;
  const parts = [h("h3", {}, "Identities"), table(["Identity ID", "Logins", "Last modified"], identities.map((i) =>
    h("tr", { class: i.IdentityId === selectedIdentity ? "selected" : null },
      h("td", { class: "mono" }, link(here({ identity: i.IdentityId }), i.IdentityId, { "aria-current": i.IdentityId === selectedIdentity ? "true" : null })),
      h("td", {}, (i.Logins || []).join(", ") || h("span", { class: "muted" }, "unauthenticated")),
      h("td", {}, when(i.LastModifiedDate)))), { label: "Identities", empty: "No identities yet." })];
  into.replaceChildren(...parts);
  if (!selectedIdentity) return;
  const idBase = `/identitypools/${enc(poolId)}/identities/${enc(selectedIdentity)}`;
  try {
    const { Datasets } = await sync("GET", `${idBase}/datasets?maxResults=20`);
    into.append(h("h3", { id: "datasets-heading" }, "Datasets of ", h("span", { class: "mono" }, selectedIdentity)),
      table(["Dataset", "Records", "Storage", "Last modified"], Datasets.map((d) =>
        h("tr", { class: d.DatasetName === selectedDataset ? "selected" : null },
          h("td", {}, link(here({ identity: selectedIdentity, dataset: d.DatasetName }), d.DatasetName)),
          h("td", {}, d.NumRecords), h("td", {}, bytes(d.DataStorage)), h("td", {}, when(d.LastModifiedDate)))),
      { label: "Datasets", empty: "No datasets." }));
    if (!selectedDataset) return;
    const records = [];
    let token, page;
    do {
      const q = new URLSearchParams({ maxResults: "1024" });
      if (token) q.set("nextToken", token);
      page = await sync("GET", `${idBase}/datasets/${enc(selectedDataset)}/records?${q}`);
      records.push(...page.Records);
      token = page.NextToken;
    } while (token && records.length < 10000);
    into.append(h("h3", { id: "records-heading" }, `Records of ${selectedDataset}`),
      h("p", {}, "Dataset SyncCount: ", h("strong", { id: "dataset-sync-count" }, page.DatasetSyncCount)),
      table(["Key", "Value", "SyncCount", "Last modified", "By"], records.map((r) =>
        h("tr", { "data-key": r.Key },
          h("td", { class: "mono" }, r.Key),
          h("td", { class: "mono" }, r.Value === undefined ? h("em", { class: "muted" }, "deleted") : r.Value),
          h("td", {}, r.SyncCount), h("td", {}, when(r.LastModifiedDate)), h("td", { class: "mono" }, r.LastModifiedBy || ""))),
      { label: "Records", empty: "No records." }));
    document.getElementById("records-heading").scrollIntoView({ block: "nearest" });
  } catch (e) {
    into.append(errorBox(e));
  }
}

// ---- functions ----------------------------------------------------------------------

function fileText(file) {
  return file.text();
}

async function fileBase64(file) {
  const buf = new Uint8Array(await file.arrayBuffer());
  let s = "";
  for (let i = 0; i < buf.length; i += 0x8000) s += String.fromCharCode(...buf.subarray(i, i + 0x8000));
  return btoa(s);
}

async function codeFromForm(kind, file, handler) {
  if (kind === "blueprint") {
    const r = await fetch("/console/blueprints/cognito-sync-trigger.js");
    if (!r.ok) throw new ApiError(`HTTP ${r.status}`, "the blueprint could not be loaded");
    return { Script: await r.text(), Handler: "index.handler" };
  }
  if (!file) throw new ApiError("InvalidParameterException", "choose a file to upload");
  // The request body is at most 4 MiB: base64 makes 3 bytes 4, and JSON escapes some
  // characters of a script. Larger files go through the command line.
  const limit = 3 * 1024 * 1024 - 1024;
  if (file.size > limit) {
    const what = kind === "js" ? "scripts" : "components";
    const command = kind === "js" ? "synctrig-wasm admin deploy --js" : "synctrig-wasm admin deploy --wasm";
    throw new ApiError("LimitExceededException", `${file.name} is ${bytes(file.size)}: the console uploads ${what} up to 3 MiB; use ${command}`);
  }
  if (kind === "js") return { Script: await fileText(file), Handler: handler || "index.handler" };
  return { Component: await fileBase64(file) };
}

/** `NAME=value` lines as Lambda's Environment.Variables; blank lines are skipped. */
function environmentFromText(text) {
  const vars = {};
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at < 1) throw new ApiError("InvalidParameterException", `environment variable line ${JSON.stringify(line)} is not NAME=value`);
    vars[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return vars;
}

async function functionsPage() {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const out = h("div");
  const name = h("input", { id: "function-name", type: "text", required: true, maxlength: 64, pattern: "[A-Za-z0-9_\\-]+" });
  const radios = [["blueprint", "Blueprint: cognito-sync-trigger (Node.js, the sample Sync Trigger)"], ["js", "Upload a .js file (Node.js handler)"], ["wasm", "Upload a .wasm component (Rust guest SDK)"]];
  const kindInputs = radios.map(([value, text], i) => h("label", { class: "inline" }, h("input", { type: "radio", name: "kind", value, checked: i === 0 }), text));
  const file = h("input", { id: "function-file", type: "file", accept: ".js,.mjs,.cjs,.wasm" });
  const handler = h("input", { id: "function-handler", type: "text", value: "index.handler" });
  const uploadFields = h("div", { hidden: true }, h("label", { for: "function-file" }, "File"), file, h("label", { for: "function-handler" }, "Handler (scripts)"), handler);
  const button = h("button", { class: "primary", type: "submit" }, "Create function");
  const form = h("form", {
    onchange: () => { uploadFields.hidden = form.kind.value === "blueprint"; },
    onsubmit: async (ev) => {
      ev.preventDefault();
      await busy(button, "Deploying: checking, pre-initialising and compiling the function…", async () => {
        // A new function only: an existing one is changed from its own page.
        const body = { ...await codeFromForm(form.kind.value, file.files[0], handler.value.trim()), ExpectedLatestVersion: 0 };
        const done = await sync("POST", `/synctrig/functions/${enc(name.value.trim())}/versions`, body);
        location.hash = `#/functions/${enc(done.FunctionName)}`;
        notice(`Deployed ${done.FunctionName} version ${done.Version}.${done.Log ? ` Its top level logged: ${done.Log.trim()}` : ""}`, true);
      }, out);
    },
  },
  h("label", { for: "function-name" }, "Function name"), name,
  h("fieldset", {}, h("legend", {}, "Code"), kindInputs), uploadFields,
  h("div", { class: "actions" }, button), out);
  show(h("h1", {}, "Functions"),
    h("section", { class: "card" }, h("h2", {}, "Your functions"), list),
    h("section", { class: "card" }, h("h2", {}, "Create function"), form));
  try {
    const fns = await functionNames();
    list.replaceChildren(table(["Name", "Latest version", "Runtime", "Last deployed"], fns.map((f) =>
      h("tr", {}, h("td", {}, link(`#/functions/${enc(f.Name)}`, f.Name)), h("td", {}, f.LatestVersion),
        h("td", {}, f.Script ? "Node.js (JavaScript)" : "WebAssembly component"), h("td", {}, when(f.Modified)))),
    { label: "Functions", empty: "No functions yet." }));
  } catch (e) {
    list.replaceChildren(errorBox(e));
  }
}

async function functionPage(name) {
  const token = navToken;
  const fbase = `/synctrig/functions/${enc(name)}`;
  let described;
  try {
    described = await sync("GET", fbase);
  } catch (e) {
    if (token !== navToken) return;
    show(h("h1", {}, name), errorBox(e), h("p", {}, link("#/functions", "Back to functions")));
    return;
  }
  if (token !== navToken) return;
  const latest = described.Versions[0];
  /** The code editor on the page, for errors that name a line of its script. */
  let shownEditor = null;
  const versionsOut = h("div");
  const codeArea = h("div");
  const testOut = h("div", { id: "test-result" });
  const rows = described.Versions.map((v) => {
    const view = h("button", { type: "button", onclick: () => viewCode(v.Version) }, "View code");
    const rollback = v.Version === latest.Version ? null : h("button", {
      type: "button",
      onclick: async (ev) => {
        await busy(ev.currentTarget, `Rolling back to version ${v.Version}…`, async () => {
          const done = await sync("POST", `${fbase}/versions`, { FromVersion: v.Version, ExpectedLatestVersion: latest.Version });
          notice(`Version ${done.Version} is version ${v.Version}'s code, and is now the latest.`, true);
          route();
        }, versionsOut);
      },
    }, `Roll back to ${v.Version}`);
    return h("tr", {}, h("td", {}, v.Version === latest.Version ? `${v.Version} (latest)` : v.Version),
      h("td", {}, v.Script ? `Node.js · ${v.Handler}` : "Wasm component"),
      h("td", { class: "mono hide-narrow" }, v.Digest.slice(0, 12)), h("td", { class: "hide-narrow" }, bytes(v.ComponentBytes)),
      h("td", {}, when(v.Created)), h("td", {}, h("div", { class: "actions" }, view, rollback)));
  });

  async function viewCode(version) {
    codeArea.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const v = await sync("GET", `${fbase}/versions/${version}`);
      if (v.Source === undefined) {
        codeArea.replaceChildren(h("h3", {}, `Version ${version}`),
          h("p", {}, `A WebAssembly component of ${bytes(v.ComponentBytes)}, SHA-256 `, h("code", {}, v.Digest), "."));
        return;
      }
      const editor = codeEditor({ id: "code-editor", "aria-label": `Code of version ${version}` }, v.Source);
      shownEditor = editor;
      // process.env of the version: one NAME=value per line.
      const vars = (v.Environment && v.Environment.Variables) || {};
      const envArea = h("textarea", { id: "function-environment", rows: 3, spellcheck: false, class: "mono", "aria-describedby": "function-environment-help" });
      envArea.value = Object.entries(vars).map(([k, val]) => `${k}=${val}`).join("\n");
      const publish = h("button", { class: "primary", type: "button" }, "Publish new version");
      const out = h("div");
      publish.addEventListener("click", () => busy(publish, "Publishing: pre-initialising and compiling…", async () => {
        try {
          const Variables = environmentFromText(envArea.value);
          const done = await sync("POST", `${fbase}/versions`, { Script: editor.area.value, Handler: v.Handler || "index.handler", Environment: { Variables }, ExpectedLatestVersion: latest.Version });
          notice(`Published version ${done.Version}.`, true);
          route();
        } catch (e) {
          out.replaceChildren(errorBox(e, editor));
        }
      }, out));
      codeArea.replaceChildren(h("h3", {}, `Version ${version} · index.js · handler ${v.Handler}`), editor,
        h("label", { for: "function-environment" }, "Environment variables"),
        h("p", { class: "muted", id: "function-environment-help" }, "One NAME=value per line, in process.env of the version you publish (at most 4 KB; AWS_* and LAMBDA_* names are the runtime's)."),
        envArea, h("div", { class: "actions" }, publish), out);
    } catch (e) {
      codeArea.replaceChildren(errorBox(e));
    }
  }

  const eventEditor = codeEditor({ id: "test-event", "aria-label": "Test event (JSON)" }, "");
  const eventInput = eventEditor.area;
  const versionSelect = h("select", { id: "test-version" }, h("option", { value: "" }, "latest"),
    described.Versions.map((v) => h("option", { value: v.Version }, `version ${v.Version}`)));
  const testButton = h("button", { class: "primary", type: "button", id: "test-button" }, "Test");
  testButton.addEventListener("click", () => busy(testButton, "Running the function in the sandbox…", async () => {
    const body = { Event: eventInput.value };
    if (versionSelect.value) body.Version = Number(versionSelect.value);
    const r = await sync("POST", `${fbase}/test`, body);
    const verdict = r.Error
      ? h("div", { class: "error", role: "alert" }, h("strong", {}, r.Error.Name), ": ", r.Error.Message,
        goToLine(`${r.Error.Message}\n${r.Log || ""}`, shownEditor))
      : h("div", { class: "success" }, `Succeeded: version ${r.Version} returned a valid response.`);
    testOut.replaceChildren(verdict,
      h("div", { class: "figures" },
        h("div", { class: "figure" }, h("div", { class: "value" }, `${(r.WallMicros / 1000).toFixed(2)} ms`), h("div", { class: "name" }, "Wall time")),
        h("div", { class: "figure" }, h("div", { class: "value" }, r.Fuel.toLocaleString("en")), h("div", { class: "name" }, "Fuel")),
        h("div", { class: "figure" }, h("div", { class: "value" }, bytes(r.PeakMemoryBytes)), h("div", { class: "name" }, "Peak memory"))),
      r.Response === undefined ? null : h("div", {}, h("h3", { id: "test-response-heading" }, "Validated response"),
        scrollBox({ id: "test-response", "aria-labelledby": "test-response-heading" }, r.Response)),
      h("h3", { id: "test-log-heading" }, "Log"), scrollBox({ id: "test-log", "aria-labelledby": "test-log-heading" }, r.Log || "(nothing logged)"));
  }, testOut));

  const [aliases, recording] = await Promise.all([aliasesCard(fbase, described.Versions), recordingCard(name, fbase, described.Versions)]);
  if (token !== navToken) return;
  const deleteOut = h("div");
  const deleteButton = h("button", { type: "button", id: "function-delete" }, `Delete ${name}`);
  deleteButton.addEventListener("click", () => busy(deleteButton, `Deleting ${name}…`, async () => {
    if (!window.confirm(`Delete ${name} with every version, alias, invocation and recording?`)) return;
    const done = await sync("DELETE", fbase);
    notice(`Deleted ${name} (${done.DeletedVersions} versions).`, true);
    location.hash = "#/functions";
  }, deleteOut));
  show(h("p", {}, link("#/functions", "← Functions")),
    h("h1", {}, name),
    h("p", {}, link(`#/invocations/${enc(name)}`, "Invocations of this function")),
    h("section", { class: "card" }, h("h2", {}, "Versions"), table(["Version", "Runtime", { title: "Digest", narrow: true }, { title: "Size", narrow: true }, "Deployed", { title: "Actions" }], rows, { label: "Versions" }), versionsOut),
    aliases,
    recording,
    h("section", { class: "card" }, h("h2", {}, "Code"), codeArea),
    h("section", { class: "card" }, h("h2", {}, "Test"),
      h("p", { class: "muted" }, "Runs the function on this event as ", h("code", {}, "synctrig-wasm run"), " does: the stored dataset is the event's oldValues; nothing is stored."),
      h("label", { for: "test-version" }, "Version"), versionSelect,
      h("label", { for: "test-event" }, "Event"), eventEditor,
      h("div", { class: "actions" }, testButton), testOut),
    h("section", { class: "card" }, h("h2", {}, "Delete"),
      h("p", { class: "muted" }, "Deletes every version, alias, invocation and recording of the function. A pool's SyncTrigger must name another function first."),
      h("div", { class: "actions" }, deleteButton), deleteOut));
  viewCode(latest.Version);
  try {
    const r = await fetch("/console/sample-event.json");
    if (!r.ok) throw new ApiError(`HTTP ${r.status}`, "the sample event could not be loaded");
    eventInput.value = await r.text();
    eventInput.dispatchEvent(new Event("input"));
  } catch (e) {
    testOut.replaceChildren(errorBox(e));
  }
}

// ---- aliases --------------------------------------------------------------------------

/** A version's figures behind an alias, in one line. */
function figuresText(f) {
  const ms = (us) => (us === null || us === undefined ? "–" : `${(us / 1000).toFixed(2)} ms`);
  return `v${f.Version}: ${f.Invocations} runs (${f.Ok} ok, ${f.Rejected} rejected, ${f.Error} failed, ${f.Timeout} timed out), p50 ${ms(f.WallMicrosP50)}, p99 ${ms(f.WallMicrosP99)}`;
}

/** The function's aliases with their figures and rollouts, a form to point one, and the
 *  decisions rollouts made. */
async function aliasesCard(fbase, versions) {
  const out = h("div");
  let listed, decided;
  try {
    [listed, decided] = await Promise.all([sync("GET", `${fbase}/aliases`), sync("GET", `${fbase}/decisions`)]);
  } catch (e) {
    return h("section", { class: "card" }, h("h2", {}, "Aliases"), errorBox(e));
  }
  const rows = listed.Aliases.map((a) => {
    const weights = Object.entries((a.RoutingConfig || {}).AdditionalVersionWeights || {});
    const split = weights.length ? `${Math.round(weights[0][1] * 1000) / 10}% to version ${weights[0][0]}` : "–";
    const after = a.Rollout ? [a.Rollout.PromoteAfterInvocations && `${a.Rollout.PromoteAfterInvocations} runs`,
      a.Rollout.PromoteAfterSeconds && `${a.Rollout.PromoteAfterSeconds} s`].filter(Boolean) : [];
    const rollout = a.Rollout ? `rolling out: promote after ${after.join(" or ")}` : "";
    const remove = h("button", {
      type: "button",
      onclick: (ev) => busy(ev.currentTarget, `Deleting alias ${a.Name}…`, async () => {
        await sync("DELETE", `${fbase}/aliases/${enc(a.Name)}`);
        notice(`Alias ${a.Name} deleted.`, true);
        route();
      }, out),
    }, `Delete ${a.Name}`);
    return h("tr", {}, h("td", {}, a.Name), h("td", {}, a.FunctionVersion), h("td", {}, split, rollout ? h("div", { class: "muted" }, rollout) : null),
      h("td", {}, a.Figures.length ? a.Figures.map((f) => h("div", {}, figuresText(f))) : h("span", { class: "muted" }, "No runs since it last changed")),
      h("td", {}, h("div", { class: "actions" }, remove)));
  });
  const options = () => versions.map((v) => h("option", { value: v.Version }, `version ${v.Version}`));
  const aliasName = h("input", { type: "text", id: "alias-name", autocomplete: "off", "aria-describedby": "alias-help" });
  const primary = h("select", { id: "alias-version" }, options());
  const second = h("select", { id: "alias-second" }, h("option", { value: "" }, "none"), options());
  const weight = h("input", { type: "text", id: "alias-weight", inputmode: "decimal", value: "10" });
  const promoteAfter = h("input", { type: "text", id: "alias-promote", inputmode: "numeric", value: "" });
  const margin = h("input", { type: "text", id: "alias-margin", inputmode: "decimal", value: "5" });
  const save = h("button", { class: "primary", type: "button", id: "alias-save" }, "Save alias");
  save.addEventListener("click", () => busy(save, "Saving the alias…", async () => {
    const body = { FunctionVersion: primary.value };
    if (second.value) {
      body.RoutingConfig = { AdditionalVersionWeights: { [second.value]: Number(weight.value) / 100 } };
      if (promoteAfter.value.trim()) {
        const pct = Number(margin.value) / 100;
        body.Rollout = { PromoteAfterInvocations: Number(promoteAfter.value), MaxErrorRateIncrease: pct, MaxRejectRateIncrease: pct };
      }
    }
    const name = aliasName.value.trim();
    const exists = listed.Aliases.some((a) => a.Name === name);
    const saved = exists ? await sync("PUT", `${fbase}/aliases/${enc(name)}`, body)
      : await sync("POST", `${fbase}/aliases`, { Name: name, ...body });
    notice(`Alias ${saved.Name} points to version ${saved.FunctionVersion}.`, true);
    route();
  }, out));
  const decisions = decided.Decisions.map((d) => h("tr", {}, h("td", {}, when(d.At)), h("td", {}, d.Alias),
    h("td", {}, h("span", { class: `badge ${d.Decision === "promoted" ? "ok" : "bad"}` }, d.Decision), ` version ${d.CandidateVersion}`),
    h("td", {}, d.Reason)));
  return h("section", { class: "card", id: "aliases" }, h("h2", {}, "Aliases"),
    h("p", { class: "muted", id: "alias-help" }, "A pool whose SyncTrigger is ", h("code", {}, "function:alias"),
      " runs the version its alias points to. A second version can take a share of the syncs (each dataset stays with one), and a rollout promotes it after so many runs or rolls it back at once when it fails more than the first."),
    table(["Alias", "Version", "Second version", "Since it last changed", { title: "Actions" }], rows, { label: "Aliases", empty: "No aliases." }),
    h("h3", {}, "Point an alias"),
    h("div", { class: "grid2" },
      h("div", {}, h("label", { for: "alias-name" }, "Alias name"), aliasName),
      h("div", {}, h("label", { for: "alias-version" }, "Version"), primary),
      h("div", {}, h("label", { for: "alias-second" }, "Second version"), second),
      h("div", {}, h("label", { for: "alias-weight" }, "Its share (%, at most 50)"), weight),
      h("div", {}, h("label", { for: "alias-promote" }, "Roll out: promote after this many runs (empty: no rollout)"), promoteAfter),
      h("div", {}, h("label", { for: "alias-margin" }, "Roll back when it fails or rejects this many points more (%)"), margin)),
    h("div", { class: "actions" }, save), out,
    h("h3", {}, "Rollout decisions"),
    table(["When", "Alias", "Decision", "Why"], decisions, { label: "Rollout decisions", empty: "No decisions yet." }));
}

// ---- recording, replay and shadow ---------------------------------------------------

/** Whether the function records its invocations (and runs a shadow version beside them),
 *  with a form to change it and the way to the replay page. */
async function recordingCard(name, fbase, versions) {
  const out = h("div");
  let config;
  try {
    config = await sync("GET", `${fbase}/recording`);
  } catch (e) {
    return h("section", { class: "card" }, h("h2", {}, "Recording and replay"), errorBox(e));
  }
  const enabled = h("input", { type: "checkbox", id: "recording-enabled" });
  enabled.checked = config.Enabled;
  const maxCount = h("input", { type: "text", id: "recording-count", inputmode: "numeric", value: String(config.MaxCount || 1000) });
  const maxDays = h("input", { type: "text", id: "recording-days", inputmode: "decimal", value: String((config.MaxAgeSeconds || 7 * 86400) / 86400) });
  const shadow = h("select", { id: "recording-shadow" }, h("option", { value: "" }, "none"),
    versions.map((v) => h("option", { value: v.Version }, `version ${v.Version}`)));
  shadow.value = config.ShadowVersion ? String(config.ShadowVersion) : "";
  const save = h("button", { class: "primary", type: "button", id: "recording-save" }, "Save recording settings");
  save.addEventListener("click", () => busy(save, "Saving…", async () => {
    const body = enabled.checked
      ? { Enabled: true, MaxCount: Number(maxCount.value), MaxAgeSeconds: Math.round(Number(maxDays.value) * 86400) }
      : { Enabled: false };
    if (enabled.checked && shadow.value) body.ShadowVersion = Number(shadow.value);
    const saved = await sync("PUT", `${fbase}/recording`, body);
    notice(saved.Enabled ? `Recording the last ${saved.MaxCount} invocations of ${name}.` : `Recording is off; ${name}'s recordings are deleted.`, true);
    route();
  }, out));
  const state = config.Enabled
    ? `On: the last ${config.MaxCount} invocations, kept ${config.MaxAgeSeconds / 86400} days${config.ShadowVersion ? `; version ${config.ShadowVersion} runs in the shadow` : ""}.`
    : "Off: nothing is recorded.";
  return h("section", { class: "card", id: "recording" }, h("h2", {}, "Recording and replay"),
    h("p", { class: "muted", id: "recording-help" }, "A recording keeps a sync's event, the trigger's answer, its random seed and clock, so a candidate can be replayed on it bit for bit. Recordings hold your users' data: only you see them, and turning recording off deletes them."),
    h("p", { id: "recording-state" }, state),
    h("div", { class: "grid2" },
      h("div", {}, h("label", { class: "check" }, enabled, " Record invocations")),
      h("div", {}, h("label", { for: "recording-count" }, "Keep the last (at most 1,000)"), maxCount),
      h("div", {}, h("label", { for: "recording-days" }, "Keep for (days, at most 30)"), maxDays),
      h("div", {}, h("label", { for: "recording-shadow" }, "Shadow version (its answers are only compared)"), shadow)),
    h("div", { class: "actions" }, save, link(`#/replay/${enc(name)}`, "Recordings and replay")), out);
}

/** A replay (or shadow) report: the summary, then each run with its diff. */
function reportView(r) {
  const s = r.Summary;
  const figure = (value, label) => h("div", { class: "figure" }, h("div", { class: "value" }, String(value)), h("div", { class: "name" }, label));
  const badge = { Same: "ok", Different: "warn", NowRejects: "bad", NowFails: "bad", NowSucceeds: "ok" };
  const words = { Same: "same", Different: "different", NowRejects: "now rejects", NowFails: "now fails", NowSucceeds: "now succeeds" };
  const state = (x) => (x ? `${x.Op} ${x.NewValue === null ? "null" : JSON.stringify(x.NewValue)}` : "(absent)");
  const rows = r.Invocations.map((i) => h("tr", {}, h("td", {}, i.RecordingId), h("td", {}, `v${i.RecordedVersion}: ${i.RecordedOutcome}`),
    h("td", {}, h("span", { class: `badge ${badge[i.Result]}` }, words[i.Result]), i.Error ? h("div", { class: "muted" }, `${i.Error.Name}: ${i.Error.Message}`) : null),
    h("td", {}, i.FuelDelta.toLocaleString("en")), h("td", { class: "hide-narrow" }, `${(i.WallMicrosDelta / 1000).toFixed(2)} ms`)));
  const diffs = r.Invocations.filter((i) => i.Diff).map((i) => h("div", { class: "diff" },
    h("h4", {}, `Recording ${i.RecordingId}`),
    table(["Key", "Recorded", "Replayed"], i.Diff.map((d) => h("tr", {}, h("td", { class: "mono" }, d.Key),
      h("td", { class: "mono" }, state(d.Recorded)), h("td", { class: "mono" }, state(d.Replayed)))), { label: `Records that differ in recording ${i.RecordingId}` })));
  return h("div", { id: "replay-report" },
    h("p", {}, `Candidate: ${r.Candidate}.`),
    h("div", { class: "figures" }, figure(s.Replayed, "Replayed"), figure(s.Same, "Same"), figure(s.Different, "Different"),
      figure(s.NowRejects, "Now reject"), figure(s.NowFails, "Now fail"), figure(s.NowSucceeds, "Now succeed"),
      figure(s.FuelDelta.toLocaleString("en"), "Fuel Δ")),
    s.Skipped ? h("p", { class: "muted" }, `${s.Skipped} not replayed: the replay's time ran out.`) : null,
    table(["Recording", "Recorded", "Now", "Fuel Δ", { title: "Time Δ", narrow: true }], rows, { label: "Replayed invocations", empty: "No recordings to replay." }),
    diffs.length ? h("h3", {}, "What differs") : null, ...diffs,
    s.DiffsNotShown ? h("p", { class: "muted" }, `${s.DiffsNotShown} more differ; the first 100 are shown.`) : null);
}

async function replayPage(name) {
  const token = navToken;
  const fbase = `/synctrig/functions/${enc(name)}`;
  let described, listed;
  try {
    [described, listed] = await Promise.all([sync("GET", fbase), sync("GET", `${fbase}/recordings?maxResults=20`)]);
  } catch (e) {
    if (token !== navToken) return;
    show(h("h1", {}, `Replay ${name}`), errorBox(e), h("p", {}, link(`#/functions/${enc(name)}`, "Back to the function")));
    return;
  }
  if (token !== navToken) return;
  const out = h("div", { "aria-live": "polite" });
  const candidate = h("select", { id: "replay-candidate" },
    described.Versions.map((v) => h("option", { value: v.Version }, `version ${v.Version}`)), h("option", { value: "script" }, "a script not yet deployed"));
  const script = h("textarea", { id: "replay-script", rows: 8, spellcheck: false, class: "mono" });
  const scriptBox = h("div", { hidden: true }, h("label", { for: "replay-script" }, "Script (index.handler)"), script);
  candidate.addEventListener("change", () => { scriptBox.hidden = candidate.value !== "script"; });
  const run = h("button", { class: "primary", type: "button", id: "replay-run" }, "Replay");
  run.addEventListener("click", () => busy(run, "Replaying the recordings in the sandbox…", async () => {
    const body = candidate.value === "script" ? { Script: script.value } : { Version: Number(candidate.value) };
    out.replaceChildren(reportView(await sync("POST", `${fbase}/replay`, body)));
  }, out));
  const shadowButton = h("button", { type: "button", id: "shadow-report" }, "Shadow report");
  shadowButton.addEventListener("click", () => busy(shadowButton, "Comparing the shadow's answers…", async () => {
    out.replaceChildren(reportView(await sync("GET", `${fbase}/shadow`)));
  }, out));
  const removeAll = h("button", { type: "button", id: "recordings-delete" }, "Delete all recordings");
  removeAll.addEventListener("click", () => busy(removeAll, "Deleting…", async () => {
    const done = await sync("DELETE", `${fbase}/recordings`);
    notice(`${done.Deleted} recordings deleted.`, true);
    route();
  }, out));
  const rows = listed.Recordings.map((r) => h("tr", {}, h("td", {}, r.Id), h("td", {}, when(r.At)),
    h("td", { class: "mono hide-narrow" }, r.IdentityId), h("td", {}, r.DatasetName), h("td", {}, `v${r.Version}: ${r.Outcome}`),
    h("td", { class: "hide-narrow" }, r.ShadowVersion ? `v${r.ShadowVersion}: ${r.ShadowOutcome}` : "–")));
  show(h("p", {}, link(`#/functions/${enc(name)}`, `← ${name}`)),
    h("h1", {}, `Replay ${name}`),
    h("section", { class: "card" }, h("h2", {}, "Run a candidate on the recordings"),
      h("p", { class: "muted" }, "Each recorded sync runs again with its own random seed and clock; nothing is written. The report says, per sync, whether the candidate answers the same, changes other records, or now rejects or fails."),
      h("label", { for: "replay-candidate" }, "Candidate"), candidate, scriptBox,
      h("div", { class: "actions" }, run, shadowButton), out),
    h("section", { class: "card" }, h("h2", {}, "Latest recordings"),
      table(["Id", "When", { title: "Identity", narrow: true }, "Dataset", "Ran", { title: "Shadow", narrow: true }], rows, { label: "Latest recordings", empty: "Nothing recorded: turn recording on on the function's page." }),
      h("div", { class: "actions" }, removeAll)));
}

// ---- invocations --------------------------------------------------------------------

const OUTCOME_COLOURS = { ok: "#037f0c" };
const PALETTE = ["#d91515", "#ec7211", "#8456ce", "#0972d3", "#b0084d", "#545b64"];

function colour(outcome, all) {
  return OUTCOME_COLOURS[outcome] || PALETTE[all.filter((o) => o !== "ok").indexOf(outcome) % PALETTE.length];
}

/** A legend's coloured dot (SVG attributes: the page's policy allows no inline styles). */
function dot(fill) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 10 10");
  svg.setAttribute("aria-hidden", "true");
  const c = document.createElementNS(ns, "circle");
  for (const [k, v] of Object.entries({ cx: 5, cy: 5, r: 5, fill })) c.setAttribute(k, String(v));
  svg.append(c);
  return svg;
}

/** The plot is drawn at the width it is shown at, so its labels keep their size on a phone. */
function plot(invocations, outcomes, width) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  };
  const W = Math.round(Math.min(Math.max(width || 720, 280), 1060)), H = 260, L = 56, R = 12, T = 12, B = 36;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "plot-title" });
  root.append(svg("title", { id: "plot-title" }, `Wall time of ${invocations.length} invocations over time, coloured by outcome`));
  if (!invocations.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#545b64" }, "No invocations yet"));
    return root;
  }
  const xs = invocations.map((i) => i.at), ys = invocations.map((i) => i.wallUs / 1000);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x1 === x0) { x0 -= 30; x1 += 30; }
  const y1 = Math.max(...ys) * 1.1 || 1;
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => H - B - (y / y1) * (H - T - B);
  root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#8c8c94" }));
  root.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#8c8c94" }));
  for (const f of [0, 0.5, 1]) {
    const y = y1 * f;
    root.append(svg("text", { x: L - 6, y: py(y) + 4, "text-anchor": "end", "font-size": 11, fill: "#545b64" }, y.toFixed(y1 < 10 ? 2 : 0)));
  }
  root.append(svg("text", { x: 14, y: (H - B) / 2, transform: `rotate(-90 14 ${(H - B) / 2})`, "text-anchor": "middle", "font-size": 11, fill: "#545b64" }, "wall time (ms)"));
  // Two full dates need about 400 units; a narrower plot names times only (the table has dates).
  const axisTime = (t) => (W >= 480 ? when(t) : `${new Date(t * 1000).toISOString().slice(11, 19)} UTC`);
  root.append(svg("text", { x: L, y: H - 10, "font-size": 11, fill: "#545b64" }, axisTime(x0)));
  root.append(svg("text", { x: W - R, y: H - 10, "text-anchor": "end", "font-size": 11, fill: "#545b64" }, axisTime(x1)));
  for (const i of invocations) {
    const c = svg("circle", { cx: px(i.at).toFixed(1), cy: py(i.wallUs / 1000).toFixed(1), r: 4, fill: colour(i.outcome, outcomes), "fill-opacity": 0.8 });
    c.append(svg("title", {}, `${when(i.at)} · ${i.outcome} · ${(i.wallUs / 1000).toFixed(2)} ms`));
    root.append(c);
  }
  return root;
}

async function invocationsPage(name, params) {
  const token = navToken;
  let fns;
  try {
    fns = await functionNames();
  } catch (e) {
    if (token !== navToken) return;
    show(h("h1", {}, "Invocations"), errorBox(e));
    return;
  }
  if (token !== navToken) return;
  if (!name && fns.length) name = fns[0].Name;
  const picker = h("select", { id: "invocations-function", onchange: (ev) => { location.hash = `#/invocations/${enc(ev.target.value)}`; } },
    fns.map((f) => h("option", { value: f.Name, selected: f.Name === name }, f.Name)));
  const outcomeFilter = h("select", { id: "outcome-filter" }, h("option", { value: "" }, "all outcomes"));
  const body = h("div", {}, h("p", { class: "muted" }, fns.length ? "Loading…" : "No functions yet."));
  show(h("h1", {}, "Invocations"),
    h("section", { class: "card" },
      h("div", { class: "grid2" },
        h("div", {}, h("label", { for: "invocations-function" }, "Function"), picker),
        h("div", {}, h("label", { for: "outcome-filter" }, "Outcome"), outcomeFilter))),
    body);
  if (!name) return;
  let invocations;
  try {
    ({ Invocations: invocations } = await sync("GET", `/synctrig/functions/${enc(name)}/invocations?maxResults=100`));
  } catch (e) {
    body.replaceChildren(errorBox(e));
    return;
  }
  const outcomes = [...new Set(invocations.map((i) => i.outcome))].sort();
  for (const o of outcomes) outcomeFilter.append(h("option", { value: o }, o));
  outcomeFilter.value = outcomes.includes(params.get("outcome")) ? params.get("outcome") : "";
  const render = () => {
    const chosen = invocations.filter((i) => !outcomeFilter.value || i.outcome === outcomeFilter.value);
    const rows = chosen.map((i) => h("tr", { "data-outcome": i.outcome },
      h("td", {}, when(i.at)), h("td", {}, i.version),
      h("td", {}, h("span", { class: `badge ${i.outcome === "ok" ? "ok" : "bad"}` }, i.outcome)),
      h("td", {}, `${(i.wallUs / 1000).toFixed(2)} ms`), h("td", { class: "hide-narrow" }, i.fuel.toLocaleString("en")),
      h("td", { class: "hide-narrow" }, bytes(i.peakMemoryBytes)),
      h("td", {}, i.log ? h("details", {}, h("summary", {}, "log"), scrollBox({ "aria-label": `Log of the invocation at ${when(i.at)}` }, i.log)) : h("span", { class: "muted" }, "—"))));
    body.replaceChildren(
      h("section", { class: "card plot" }, h("h2", {}, "Latency and outcomes over time"),
        h("figure", {}, plot(chosen, outcomes, main.clientWidth - 64),
          h("figcaption", { class: "legend" }, outcomes.map((o) => h("span", {}, dot(colour(o, outcomes)), o))))),
      h("section", { class: "card" }, h("h2", {}, `Recent invocations of ${name}`),
        table(["Time", "Version", "Outcome", "Wall time", { title: "Fuel", narrow: true }, { title: "Peak memory", narrow: true }, "Log"], rows, { label: "Invocations", empty: "No invocations." })));
  };
  outcomeFilter.addEventListener("change", () => {
    const q = outcomeFilter.value ? `?outcome=${enc(outcomeFilter.value)}` : "";
    history.replaceState(null, "", `#/invocations/${enc(name)}${q}`);
    render();
  });
  render();
  let drawnAt = main.clientWidth;
  onResize = () => {
    if (main.clientWidth === drawnAt) return;
    drawnAt = main.clientWidth;
    const focused = document.activeElement?.id;
    render();
    if (focused) document.getElementById(focused)?.focus();
  };
}

// ---- routing ------------------------------------------------------------------------

async function route() {
  // Only "#/…" is a route; "#main" (the skip link) is an anchor.
  if (location.hash && !location.hash.startsWith("#/")) return;
  navToken += 1;
  onResize = null;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  let parts;
  try {
    parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = [];
  }
  if (!session && parts[0] !== "signin") {
    try {
      signedIn(await call("GET", "/console/session"));
    } catch {
      location.hash = "#/signin";
      return;
    }
  }
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.section === parts[0]) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  main.focus({ preventScroll: true });
  const tenantOnly = (title) => show(h("h1", {}, title), h("section", { class: "card" },
    h("p", {}, "Functions and their invocations belong to a tenant. Sign in with the tenant's developer credentials (",
      h("code", {}, "synctrig-wasm admin create-tenant"), " prints them) to see and change them.")));
  switch (parts[0]) {
    case "signin": return session ? (location.hash = "#/pools") : signInPage();
    case "functions":
      if (session.Principal === "root") return tenantOnly("Functions");
      return parts[1] ? functionPage(parts[1]) : functionsPage();
    case "replay":
      if (session.Principal === "root") return tenantOnly("Replay");
      return replayPage(parts[1]);
    case "invocations":
      if (session.Principal === "root") return tenantOnly("Invocations");
      return invocationsPage(parts[1], params);
    case "pools": return parts[1] ? poolPage(parts[1], params) : poolsPage();
    default: location.hash = "#/pools";
  }
}

document.getElementById("signout").addEventListener("click", async () => {
  try { await call("DELETE", "/console/session"); } catch { /* signed out locally either way */ }
  statusArea.replaceChildren();
  tabs?.postMessage("signed-out");
  signedOut();
});
// Another tab signed out (the cookie is gone for every tab) or in: follow it at once.
tabs?.addEventListener("message", (ev) => {
  if (ev.data === "signed-out" && session) {
    statusArea.replaceChildren();
    signedOut();
  } else if (ev.data === "signed-in" && !session) {
    location.hash = "#/pools";
    route();
  }
});
window.addEventListener("hashchange", () => {
  // A notice outlives only the navigation that came with it.
  const shown = statusArea.querySelector(".success");
  if (!shown || Number(shown.dataset.until) <= navToken) statusArea.replaceChildren();
  route();
});
route();
