"""Model-driven conformance (issue 21): every operation of the two API models, Cognito Sync
(rest-json) and Cognito Identity (JSON 1.1), checked against the botocore model files the
server is built from, with inputs generated from those same files.

Implemented operations get random valid inputs (seed SYNCTRIG_CONFORMANCE_SEED, default
20260), which must be answered with a success or an error the operation declares, and
inputs that break one constraint of the input shape each, which must be answered
InvalidParameterException. Unsupported operations must answer an error they declare. Every
answer is checked from the raw HTTP response, not botocore's forgiving parse: a success
against the output shape, an error against the operation's declared errors and the
protocol's status, headers and content type."""

import copy
import json
import os
import random
import re
import signal
import string
import unicodedata
from collections import Counter, defaultdict
from functools import lru_cache

import botocore.session
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from conftest import ROOT, Server
from test_identities import DEV_PROVIDER, OWN

SEED = int(os.environ.get("SYNCTRIG_CONFORMANCE_SEED", "20260"))
VALID_CASES = 20
MODELS = ROOT / "runtime" / "src" / "server" / "models"
SERVICES = {s: json.loads((MODELS / f"{s}-2014-06-30.json").read_text()) for s in ("cognito-sync", "cognito-identity")}
SYNC, IDENTITY = SERVICES
UNSUPPORTED = {
    "BulkPublish", "GetBulkPublishDetails", "SetIdentityPoolConfiguration", "RegisterDevice", "SubscribeToDataset",
    "UnsubscribeFromDataset", "GetIdentityPoolRoles", "SetIdentityPoolRoles", "GetPrincipalTagAttributeMap",
    "SetPrincipalTagAttributeMap", "ListTagsForResource", "TagResource", "UntagResource",
}  # fmt: skip
# Operations that delete or change what other cases of theirs name: each valid case gets a fresh pool.
DESTRUCTIVE = {
    "DeleteIdentityPool", "DeleteIdentities", "DeleteDataset", "UnlinkDeveloperIdentity", "UnlinkIdentity",
    "MergeDeveloperIdentities", "UpdateIdentityPool", "SetCognitoEvents", "GetOpenIdTokenForDeveloperIdentity",
}  # fmt: skip
CONFIG = Config(parameter_validation=False, retries={"total_max_attempts": 1})
# The unsigned identity calls are rate-limited per client address; this run is one address.
SERVE_ARGS = ["--identity-rate-per-client", "100000", "--identity-rate-per-pool", "100000"]
COUNTS = defaultdict(Counter)
SUCCEEDED = defaultdict(set)
OMIT, TOKEN, DELETE = object(), object(), object()  # a hint to leave a member out; a live SyncSessionToken; a break that removes
TEXT = string.ascii_letters + string.digits + " -_.:/@+=,!~" + "éß中€😀"
ASCII = string.ascii_letters + string.digits + " -_.:/@+=,!~"
WRONG = {"string": 12345, "integer": "12", "long": "12", "boolean": "true", "timestamp": "2020-01-01T00:00:00Z",
         "list": {"not": "a list"}, "map": ["not a map"], "structure": ["not a structure"], "double": "1.5", "blob": 7}  # fmt: skip


# ---- patterns: the model's regular expressions, read as Java reads them ---------------------

SAMPLES = {"w": string.ascii_letters + string.digits + "_", "d": string.digits, "s": " \t",
           "S": string.ascii_letters + string.digits + string.punctuation + "é中€😀", "L": "aZéßж中", "M": "\u0301\u0903",
           "S_": "$+<^|~€©", "N": "0189٣Ⅷ", "P": "!#%&*,./:;?@_-¿"}  # fmt: skip


@lru_cache
def category_ranges(prefix):
    """`\\p{X}` for Python's re, which lacks it: the code points of general category X as ranges."""
    out, start = [], None
    for cp in range(0x110001):
        inside = cp < 0x110000 and unicodedata.category(chr(cp)).startswith(prefix)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            out.append(f"\\U{start:08x}-\\U{cp - 1:08x}")
            start = None
    return "".join(out)


@lru_cache
def compiled(pattern):
    """A model pattern as a Python regex: `\\w`, `\\d`, `\\s` ASCII as in Java; `\\p{X}` (only
    inside a class in these models) Unicode categories spelled out."""
    if "\\p{" not in pattern:
        return re.compile(pattern, re.ASCII)
    return re.compile(re.sub(r"\\p\{(\w)\}", lambda m: category_ranges(m.group(1)), pattern))


def matches(pattern, value):
    return compiled(pattern).fullmatch(value) is not None


@lru_cache
def parse_pattern(pattern):
    """The pattern as a tree to generate from: ("alt", [branch]), ("seq", [node]),
    ("rep", node, lo, hi or None) and ("chars", the characters one position may take)."""
    pos = 0

    def peek():
        return pattern[pos] if pos < len(pattern) else ""

    def take():
        nonlocal pos
        pos += 1
        return pattern[pos - 1]

    def escape():
        c = take()
        if c == "p":
            name = pattern[pos + 1 : pattern.index("}", pos)]
            for _ in range(len(name) + 2):
                take()
            return SAMPLES["S_" if name == "S" else name]
        return SAMPLES.get(c, c)

    def alternation():
        branches = [sequence()]
        while peek() == "|":
            take()
            branches.append(sequence())
        return ("alt", branches)

    def sequence():
        items = []
        while peek() not in ("", "|", ")"):
            items.append(quantified(atom()))
        return ("seq", items)

    def atom():
        c = take()
        if c == "(":
            if pattern.startswith("?:", pos):
                take(), take()
            node = alternation()
            assert take() == ")", pattern
            return node
        if c == "[":
            assert peek() != "^", f"negated classes are not generated: {pattern}"
            chars = ""
            while (c := take()) != "]":
                if c == "\\":
                    chars += escape()
                elif peek() == "-" and pattern[pos + 1] != "]":
                    take()
                    end = take()
                    chars += "".join(map(chr, range(ord(c), ord(escape() if end == "\\" else end) + 1)))
                else:
                    chars += c
            return ("chars", chars)
        return ("chars", escape() if c == "\\" else SAMPLES["S"] + " " if c == "." else c)

    def quantified(node):
        c = peek()
        if c and c in "+*?":
            take()
            return ("rep", node, 0 if c != "+" else 1, 1 if c == "?" else None)
        if c == "{":
            end = pattern.index("}", pos)
            lo, comma, hi = pattern[pos + 1 : end].partition(",")
            for _ in range(end + 1 - pos):
                take()
            return ("rep", node, int(lo), int(hi) if hi else None if comma else int(lo))
        return node

    tree = alternation()
    assert pos == len(pattern), pattern
    return tree


def span(node):
    """The shortest and longest (None: unbounded) string a pattern node matches."""
    if node[0] == "chars":
        return 1, 1
    if node[0] == "rep":
        lo, hi = span(node[1])
        return lo * node[2], None if hi is None or node[3] is None else hi * node[3]
    spans = [span(n) for n in node[1]]
    most = None if any(h is None for _, h in spans) else (sum if node[0] == "seq" else max)(h for _, h in spans)
    return (sum if node[0] == "seq" else min)(lo for lo, _ in spans), most


def produce(node, want, rng):
    """A string matching the node, of length `want` where the node allows it."""
    if node[0] == "chars":
        return rng.choice(node[1])
    if node[0] == "alt":
        fit = [b for b in node[1] if span(b)[0] <= want and (span(b)[1] is None or want <= span(b)[1])]
        return produce(rng.choice(fit or node[1]), want, rng)
    if node[0] == "rep":
        child, lo, hi = node[1:]
        count = max(lo, want // max(1, span(child)[0]))
        parts = [child] * (count if hi is None else min(hi, count))
    else:
        parts = node[1]
    spans = [span(p) for p in parts]
    sizes, extra = [lo for lo, _ in spans], want - sum(lo for lo, _ in spans)
    room = [i for i, (lo, hi) in enumerate(spans) if hi is None or hi > lo]
    while extra > 0 and room:
        i = rng.choice(room)
        sizes[i], extra = sizes[i] + 1, extra - 1
        if spans[i][1] is not None and sizes[i] == spans[i][1]:
            room.remove(i)
    return "".join(produce(p, n, rng) for p, n in zip(parts, sizes))


def text(shape, length, rng, alphabet=TEXT):
    """A string of `length` code points matching the shape's pattern, or None if none can."""
    if "pattern" not in shape:
        chunk = "".join(rng.choice(alphabet) for _ in range(min(length, 4096)))
        return (chunk * (length // 4096 + 1))[:length]
    tree = parse_pattern(shape["pattern"])
    for _ in range(20):
        s = produce(tree, length, rng)
        if len(s) == length and matches(shape["pattern"], s):
            return s
    return None


# ---- generation: valid values, and values that break one constraint --------------------------


def valid(shapes, name, rng, optional=0.5, header=False):
    """A random value of the shape within all its constraints; optional members with
    probability `optional` (1: all, lists and maps not empty, to reach what is inside)."""
    s = shapes[name]
    t = s["type"]
    if t == "structure":
        return {m: valid(shapes, spec["shape"], rng, optional, spec.get("location") == "header")
                for m, spec in s["members"].items() if m in s.get("required", ()) or rng.random() < optional}  # fmt: skip
    if t in ("list", "map"):
        lo, hi = s.get("min", 0), s.get("max", 3)
        n = rng.randint(max(lo, optional == 1), max(lo, min(hi, 3))) if rng.random() < 0.8 else min(hi, 60)
        if t == "list":
            return [valid(shapes, s["member"]["shape"], rng, optional) for _ in range(n)]
        return keyed(shapes, s, n, rng, optional)
    if t == "string":
        if "enum" in s:
            return rng.choice(s["enum"])
        lo, hi = s.get("min", 0), s.get("max", 10**9)
        if "pattern" in s:
            plo, phi = span(parse_pattern(s["pattern"]))
            lo, hi = max(lo, plo), min(hi, phi or hi)
        r = rng.random()
        length = lo if r < 0.15 else hi if r < 0.3 and hi <= 2048 else rng.randint(lo, min(hi, lo + 40))
        return text(s, length, rng, ASCII if header else TEXT)
    if t in ("integer", "long"):
        bits = 31 if t == "integer" else 63
        lo, hi = s.get("min", -(2**bits)), s.get("max", 2**bits - 1)
        r = rng.random()
        return lo if r < 0.1 else hi if r < 0.2 else rng.randint(lo, hi) if r < 0.3 else rng.randint(max(lo, 0), min(hi, 100))
    if t == "boolean":
        return rng.random() < 0.5
    if t == "timestamp":
        return rng.randint(1_500_000_000, 1_900_000_000)
    return rng.random() * 100 if t in ("double", "float") else "AAAA"


def keyed(shapes, s, n, rng, optional=0.5):
    """A map of `n` entries (keys valid while the key shape has that many, then not)."""
    out = {}
    for _ in range(20 * n):
        if len(out) == n:
            break
        out[valid(shapes, s["key"]["shape"], rng, optional)] = valid(shapes, s["value"]["shape"], rng, optional)
    for i in range(n - len(out)):
        out[f"extra{i}"] = valid(shapes, s["value"]["shape"], rng, optional)
    return out


def breaks(shapes, name, value, path, where, rng):
    """(what, path, broken value, whether it goes on the wire) for each constraint of shape
    `name` that `value`, valid at `path` of the input, can be made to break alone. `where`
    is the location of the top-level member it is in (None for the input itself). A wrong
    JSON type goes on the wire: botocore would not serialize it, so the body is rewritten."""
    s = shapes[name]
    t = s["type"]
    if where == "body":
        yield f"wrong JSON type {json.dumps(WRONG[t])} for a {t}", path, WRONG[t], True
    elif where in ("querystring", "header") and t in ("integer", "long", "boolean"):
        yield f"{t} that is not one", path, "x1", False
    if t == "structure":
        for r in s.get("required", ()):
            yield f"required member {r} missing", path + [r], DELETE, False
        for m, spec in s["members"].items():
            if m in value:
                yield from breaks(shapes, spec["shape"], value[m], path + [m], where or spec.get("location", "body"), rng)
    elif t in ("list", "map"):
        make = (lambda n: [valid(shapes, s["member"]["shape"], rng) for _ in range(n)]) if t == "list" else (lambda n: keyed(shapes, s, n, rng))
        if s.get("min", 0) > 0:
            yield f"{s['min'] - 1} entries, under min {s['min']}", path, make(s["min"] - 1), False
        if "max" in s:
            yield f"{s['max'] + 1} entries, over max {s['max']}", path, make(s["max"] + 1), False
        if t == "list" and value:
            yield from breaks(shapes, s["member"]["shape"], value[0], path + [0], where, rng)
        elif value:
            key = next(iter(value))
            for what, _, bad, wire in breaks(shapes, s["key"]["shape"], key, path, None, rng):
                yield f"map key: {what}", path, {bad if k == key else k: v for k, v in value.items()}, wire
            yield from breaks(shapes, s["value"]["shape"], value[key], path + [key], where, rng)
    elif t == "string":
        lo, hi = s.get("min", 0), s.get("max")
        if lo > 0:
            yield f"length {lo - 1}, under min {lo}", path, text(s, lo - 1, rng) or "", False
        if hi is not None:
            yield f"length {hi + 1}, over max {hi}", path, text(s, hi + 1, rng) or text({}, hi + 1, rng, ASCII), False
        if "pattern" in s:
            for bad in rng.sample(" !#%é中~/,;A_0", 14):
                i = rng.randrange(len(value))
                if not matches(s["pattern"], broken := value[:i] + bad + value[i + 1 :]):
                    yield f"not matching {s['pattern']}", path, broken, False
                    break
        if "enum" in s:
            yield "not in the enum", path, "NOT_IN_THE_ENUM", False
    elif t in ("integer", "long"):
        if "min" in s:
            yield f"{s['min'] - 1}, under min {s['min']}", path, s["min"] - 1, False
        if "max" in s:
            yield f"{s['max'] + 1}, over max {s['max']}", path, s["max"] + 1, False


def put(doc, path, value):
    """`doc` with `value` at `path` (DELETE: without what is there)."""
    *parents, last = path
    for key in parents:
        doc = doc[key]
    if value is DELETE:
        del doc[last]
    else:
        doc[last] = value


def wire_path(shapes, name, path):
    """An input path as the JSON body names it (members by their locationName)."""
    out = []
    for key in path:
        s = shapes[name]
        if s["type"] == "structure":
            out.append(s["members"][key].get("locationName", key))
            name = s["members"][key]["shape"]
        else:
            out.append(key)
            name = s["member" if s["type"] == "list" else "value"]["shape"]
    return out


# ---- validation of raw answers ----------------------------------------------------------------


def conforms(shapes, name, value, path, out):
    """Appends to `out` each way `value` (parsed JSON) breaks shape `name`."""
    s, where = shapes[name], path or "the body"
    t = s["type"]
    kinds = {"structure": dict, "map": dict, "list": list, "string": str, "blob": str, "boolean": bool,
             "integer": int, "long": int, "timestamp": (int, float), "double": (int, float), "float": (int, float)}  # fmt: skip
    if not isinstance(value, kinds[t]) or (isinstance(value, bool) and t != "boolean"):
        return out.append(f"{where}: {json.dumps(value)[:80]} is not a JSON {t} ({name})")
    if t == "structure":
        members = {spec.get("locationName", m): spec for m, spec in s["members"].items() if "location" not in spec}
        for key, item in value.items():
            if key not in members:
                out.append(f"{where}: member {key!r} is not in {name}")
            else:
                conforms(shapes, members[key]["shape"], item, f"{path}.{key}".lstrip("."), out)
        out.extend(f"{where}: required member {r} missing ({name})" for r in s.get("required", ()) if r not in value)
    elif t in ("list", "map", "string"):
        if not s.get("min", 0) <= len(value) <= s.get("max", len(value)):
            out.append(f"{where}: length {len(value)} outside [{s.get('min', 0)}, {s.get('max', '')}] ({name})")
        if t == "list":
            for i, item in enumerate(value):
                conforms(shapes, s["member"]["shape"], item, f"{path}[{i}]", out)
        elif t == "map":
            for key, item in value.items():
                conforms(shapes, s["key"]["shape"], key, f"{path} key {key!r}", out)
                conforms(shapes, s["value"]["shape"], item, f"{path}[{key!r}]", out)
        elif "pattern" in s and not matches(s["pattern"], value):
            out.append(f"{where}: {value[:80]!r} does not match {s['pattern']} ({name})")
        elif "enum" in s and value not in s["enum"]:
            out.append(f"{where}: {value!r} is not one of {s['enum']} ({name})")
    elif t in ("integer", "long"):
        bits = 31 if t == "integer" else 63
        lo, hi = max(s.get("min", -(2**bits)), -(2**bits)), min(s.get("max", 2**bits - 1), 2**bits - 1)
        if not lo <= value <= hi:
            out.append(f"{where}: {value} outside [{lo}, {hi}] ({name})")


def check_answer(service, op, status, headers, body):
    """How a raw answer breaks the model: (problems, error name or None)."""
    model = SERVICES[service]
    shapes, spec, rest = model["shapes"], model["operations"][op], model["metadata"]["protocol"] == "rest-json"
    problems, content_type = [], headers.get("Content-Type", "").split(";")[0].strip()
    try:
        doc = json.loads(body) if body.strip() else None
    except ValueError:
        return [f"the body is not JSON: {body[:200]!r}"], None
    if status < 300:
        if status != (spec["http"].get("responseCode", 200) if rest else 200):
            problems.append(f"success status {status}, the model says {spec['http'].get('responseCode', 200)}")
        if "output" not in spec:
            if doc not in (None, {}):
                problems.append(f"{op} has no output, but the body is {body[:200]!r}")
            return problems, None
        out = shapes[spec["output"]["shape"]]
        if doc is None:
            doc = {}
        conforms(shapes, spec["output"]["shape"], doc, "", problems)
        for m, member in out["members"].items():
            if member.get("location") == "header" and member["locationName"] in headers:
                conforms(shapes, member["shape"], headers[member["locationName"]], f"header {member['locationName']}", problems)
            elif member.get("location") == "statusCode":
                conforms(shapes, member["shape"], status, "status", problems)
        return problems, None
    if not isinstance(doc, dict) or not isinstance(doc.get("__type"), str):
        return [f"an error without a __type: {body[:200]!r}"], None
    name = doc["__type"].rsplit("#", 1)[-1]
    if name not in [e["shape"] for e in spec.get("errors", ())]:
        problems.append(f"{name} is not an error {op} declares")
    if name in shapes and shapes[name].get("exception"):
        expected = shapes[name]["error"]["httpStatusCode"] if rest else 500 if shapes[name].get("fault") else 400
        if status != expected:
            problems.append(f"{name} with HTTP {status}, the model says {expected}")
        conforms(shapes, name, {k: v for k, v in doc.items() if k != "__type"}, "", problems)
    if headers.get("x-amzn-ErrorType", "").split(":")[0] != name:
        problems.append(f"x-amzn-ErrorType {headers.get('x-amzn-ErrorType')!r} is not {name}")
    if content_type != ("application/json" if rest else "application/x-amz-json-1.1"):
        problems.append(f"an error with Content-Type {headers.get('Content-Type')!r}")
    return problems, name


# ---- the server, its clients and what each operation acts on ----------------------------------


class Api:
    """A botocore client of our model files that keeps each call's raw HTTP answer, and can
    rewrite a member of the JSON body on its way out (a wrong type botocore would not send)."""

    def __init__(self, env, service, key, secret, token=None):
        self.client = env.session.create_client(
            service, endpoint_url=env.server.url, region_name="us-east-1", aws_access_key_id=key,
            aws_secret_access_key=secret, aws_session_token=token, config=CONFIG,
        )  # fmt: skip
        self.raw, self.patch = None, None
        self.client.meta.events.register("before-call", self.rewrite)
        self.client.meta.events.register("after-call", self.keep)

    def rewrite(self, params, **_):
        if self.patch:
            doc = json.loads(params["body"] or b"{}")
            put(doc, *self.patch)
            params["body"] = json.dumps(doc).encode()

    def keep(self, http_response, **_):
        self.raw = http_response

    def call(self, op, params, patch=None):
        """The raw answer, or None when botocore cannot send these params."""
        self.raw, self.patch = None, patch
        try:
            getattr(self.client, xform_name(op))(**params)
        except ClientError:
            pass
        except HTTPClientError:
            raise
        except Exception:  # noqa: BLE001 (botocore refusing to serialize; the answer, if any, is checked)
            pass
        return self.raw

    def ok(self, op, **params):
        raw = self.call(op, params)
        assert raw is not None and raw.status_code == 200, (op, params, raw and raw.content)
        return json.loads(raw.content or b"{}")


class Fixture:
    """What one operation's cases act on: a tenant of its own and a pool made through
    CreateIdentityPool (remade by refresh()) with developer users user-1 and user-2 and a
    guest, each with a dataset `profile` of two records."""

    def __init__(self, env, tenant):
        creds = env.server.admin("create-tenant", tenant)
        self.env, self.key, self.secret = env, creds["accessKeyId"], creds["secretAccessKey"]
        self.dev = {s: Api(env, s, self.key, self.secret) for s in SERVICES}
        self.refresh()

    def refresh(self):
        idp, self.own = self.dev[IDENTITY], {}
        self.pool = idp.ok("CreateIdentityPool", IdentityPoolName="conformance", AllowUnauthenticatedIdentities=True,
                           DeveloperProviderName=DEV_PROVIDER)["IdentityPoolId"]  # fmt: skip
        out = idp.ok("GetOpenIdTokenForDeveloperIdentity", IdentityPoolId=self.pool, Logins={DEV_PROVIDER: "user-1"})
        self.user, self.user_token = out["IdentityId"], out["Token"]
        self.other = idp.ok("GetOpenIdTokenForDeveloperIdentity", IdentityPoolId=self.pool, Logins={DEV_PROVIDER: "user-2"})["IdentityId"]
        self.guest = idp.ok("GetId", IdentityPoolId=self.pool)["IdentityId"]
        for identity in (self.user, self.guest):
            token = self.session_token({"IdentityPoolId": self.pool, "IdentityId": identity, "DatasetName": "profile"})
            patches = [{"Op": "replace", "Key": k, "Value": "v", "SyncCount": 0} for k in ("k1", "k2")]
            self.dev[SYNC].ok("UpdateRecords", IdentityPoolId=self.pool, IdentityId=identity, DatasetName="profile",
                              SyncSessionToken=token, RecordPatches=patches)  # fmt: skip

    def session_token(self, params):
        names = {k: params.get(k) for k in ("IdentityPoolId", "IdentityId", "DatasetName")}
        raw = self.dev[SYNC].call("ListRecords", names)
        return json.loads(raw.content)["SyncSessionToken"] if raw is not None and raw.status_code == 200 else "0.0.0.x"

    def identity_client(self, identity):
        """A cognito-sync client with the identity's own credentials."""
        if identity not in self.own:
            logins = {"Logins": {OWN: self.user_token}} if identity == self.user else {}
            c = self.dev[IDENTITY].ok("GetCredentialsForIdentity", IdentityId=identity, **logins)["Credentials"]
            self.own[identity] = Api(self.env, SYNC, c["AccessKeyId"], c["SecretKey"], c["SessionToken"])
        return self.own[identity]

    def hints(self, op, rng):
        """Real values for the members that name the fixture's resources (OMIT: leave out)."""
        identity = rng.choice([self.user, self.guest])
        return {
            "IdentityPoolId": self.pool, "IdentityId": OMIT if op == "GetOpenIdTokenForDeveloperIdentity" else identity,
            "DatasetName": "profile", "DeveloperProviderName": DEV_PROVIDER, "IdentityPoolName": "conformance",
            "DeveloperUserIdentifier": rng.choice(["user-1", "user-2"]), "AllowUnauthenticatedIdentities": True,
            "SourceUserIdentifier": "user-2", "DestinationUserIdentifier": "user-1",
            "IdentityIdsToDelete": [rng.choice([self.guest, self.other])], "LoginsToRemove": [DEV_PROVIDER],
            "Logins": {DEV_PROVIDER: rng.choice(["user-1", "user-2", "user-3"])} if op == "GetOpenIdTokenForDeveloperIdentity"
            else {OWN: self.user_token} if identity == self.user else OMIT,
            "MaxResults": rng.randint(1, 60), "NextToken": OMIT, "LastSyncCount": rng.randint(0, 3),
            "SyncSessionToken": TOKEN if op == "UpdateRecords" else OMIT, "Events": {"SyncTrigger": "trigger"},
            "RecordPatches": [{"Op": "replace", "Key": f"key-{rng.randrange(10**6)}", "Value": "v", "SyncCount": 0}],
            **dict.fromkeys(["OpenIdConnectProviderARNs", "SamlProviderARNs", "SupportedLoginProviders",
                             "CognitoIdentityProviders", "CustomRoleArn", "AccountId", "PrincipalTags"], OMIT),
        }  # fmt: skip

    def input(self, service, op, rng, hinted=0.8, optional=0.5):
        """An input of the operation: hinted members real with probability `hinted`."""
        shapes, name = SERVICES[service]["shapes"], SERVICES[service]["operations"][op]["input"]["shape"]
        s, hints, out = shapes[name], self.hints(op, rng), {}
        for m, spec in s["members"].items():
            required = m in s.get("required", ())
            if not (required or rng.random() < optional):
                continue
            hint = hints.get(m, OMIT)
            if rng.random() < hinted and not (hint is OMIT and (required or optional == 1)):
                if hint is not OMIT:
                    out[m] = self.session_token(out) if hint is TOKEN else copy.deepcopy(hint)
                continue
            out[m] = valid(shapes, spec["shape"], rng, optional, spec.get("location") == "header")
        return out


class Env:
    def __init__(self, server, session):
        self.server, self.session = server, session


class Summary:
    """The counts, printed at the end of the run (a plugin this module registers)."""

    def pytest_terminal_summary(self, terminalreporter):
        if not COUNTS:
            return
        terminalreporter.write_sep("-", f"model conformance, seed {SEED}")
        for service, counts in COUNTS.items():
            terminalreporter.write_line(f"{service}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            ops = SERVICES[service]["operations"]
            never = sorted(op for op in ops if op not in UNSUPPORTED and op not in SUCCEEDED[service])
            terminalreporter.write_line(f"  implemented operations that never succeeded: {', '.join(never) or 'none'}")


@pytest.fixture(scope="module")
def env(tmp_path_factory, request):
    models = tmp_path_factory.mktemp("models")
    for service, doc in SERVICES.items():
        (models / service / "2014-06-30").mkdir(parents=True)
        (models / service / "2014-06-30" / "service-2.json").write_text(json.dumps(doc))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(models))
    if not request.config.pluginmanager.has_plugin("conformance-summary"):
        request.config.pluginmanager.register(Summary(), "conformance-summary")
    server = Server(tmp_path_factory.mktemp("conformance") / "data", extra_args=SERVE_ARGS).start()
    yield Env(server, session)
    server.stop(signal.SIGKILL)


def shown(value):
    """A request's params for a report: long strings cut."""
    if isinstance(value, str) and len(value) > 60:
        return f"{value[:40]}…({len(value)} chars)"
    if isinstance(value, dict):
        return {shown(k): shown(v) for k, v in value.items()}
    return [shown(v) for v in value[:5]] + ([f"…({len(value)} items)"] if len(value) > 5 else []) if isinstance(value, list) else value


OPERATIONS = [(service, op) for service, model in SERVICES.items() for op in model["operations"]]


@pytest.mark.parametrize("service,op", OPERATIONS, ids=[f"{s.split('-')[1]}-{op}" for s, op in OPERATIONS])
def test_operation_conforms_to_the_model(env, service, op):
    rng = random.Random(f"{SEED}:{service}:{op}")
    shapes = SERVICES[service]["shapes"]
    input_shape = SERVICES[service]["operations"][op]["input"]["shape"]
    fx = Fixture(env, f"{service.split('-')[1]}-{xform_name(op, '-')}")
    counts, problems = COUNTS[service], []
    counts["operations"] += 1

    def send(kind, what, params, patch=None, api=None):
        raw = (api or fx.dev[service]).call(op, params, patch)
        if raw is None:
            counts["not sendable"] += 1
            return
        counts[f"{kind} sent"] += 1
        status, body = raw.status_code, raw.content
        issues, error = check_answer(service, op, status, raw.headers, body)
        counts["errors validated" if status >= 300 else "responses validated"] += 1
        if status < 300:
            SUCCEEDED[service].add(op)
        if kind == "broken" and error != "InvalidParameterException":
            issues.append(f"expected InvalidParameterException, got {error or f'a success ({status})'}")
        elif op in UNSUPPORTED and status < 300:
            issues.append("an unsupported operation answered a success")
        elif status >= 500 or error == "TooManyRequestsException":
            issues.append(f"{error} (HTTP {status}) for a valid input")
        for issue in issues:
            on_wire = f"\n    on the wire: {patch[0]} = {json.dumps(patch[1])}" if patch else ""
            problems.append(f"{op} [{kind}: {what}]: {issue}\n    input: {shown(params)}{on_wire}\n    -> HTTP {status} {body[:300]!r}")

    # Broken inputs first, on the fresh fixture: each breaks one constraint of a full valid input.
    base = fx.input(service, op, random.Random(rng.random()), hinted=1, optional=1)
    for what, path, bad, wire in breaks(shapes, input_shape, base, [], None, random.Random(rng.random())):
        if wire:
            send("broken", f"{'.'.join(map(str, path))}: {what}", base, (wire_path(shapes, input_shape, path), bad))
        else:
            params = copy.deepcopy(base)
            put(params, path, bad)
            send("broken", f"{'.'.join(map(str, path))}: {what}", params)
    # Valid inputs: the first only the required members, all real; the rest at random.
    for i in range(VALID_CASES if op not in UNSUPPORTED else 5):
        if op in DESTRUCTIVE:
            fx.refresh()
        params = fx.input(service, op, rng, hinted=1, optional=0) if i == 0 else fx.input(service, op, rng)
        own = service == SYNC and params.get("IdentityId") in (fx.user, fx.guest) and rng.random() < 0.3
        send("valid", f"case {i}", params, api=fx.identity_client(params["IdentityId"]) if own else None)
    assert not problems, f"{len(problems)} deviation(s) from the model (seed {SEED}):\n" + "\n".join(problems[:40])
