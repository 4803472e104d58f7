"""Model-driven conformance (issue 21): every operation of the two API models, Cognito Sync
(rest-json) and Cognito Identity (JSON 1.1), checked against the botocore model files the
server is built from, with inputs generated from those same files.

Implemented operations get random valid inputs (seed SYNCTRIG_CONFORMANCE_SEED, default
20260), which must be answered with a success or an error the operation declares, and
inputs that break one constraint of the input shape each, which must be answered
InvalidParameterException (and, where the same input unbroken is refused too, by the
model's check). Unsupported operations must answer an error they declare. Every answer is
checked from the raw HTTP response, not botocore's forgiving parse: a success against the
output shape, an error against the operation's declared errors and the protocol's status,
headers and content type. The counts are printed at the end of the run."""

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
from types import SimpleNamespace

import botocore.session
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import HTTPClientError
from conftest import ROOT, Broker, Server
from test_identities import DEV_PROVIDER, OWN

SEED = int(os.environ.get("SYNCTRIG_CONFORMANCE_SEED", "20260"))
VALID_CASES = 20
MODELS = ROOT / "server" / "src" / "models"
SERVICES = {s: json.loads((MODELS / f"{s}-2014-06-30.json").read_text()) for s in ("cognito-sync", "cognito-identity")}
SYNC, IDENTITY = SERVICES
UNSUPPORTED = {
    "GetIdentityPoolRoles", "SetIdentityPoolRoles", "GetPrincipalTagAttributeMap",
    "SetPrincipalTagAttributeMap", "ListTagsForResource", "TagResource", "UntagResource",
}
# Operations that delete or change what their other cases name: those get a fresh pool each.
DESTRUCTIVE = {
    "DeleteIdentityPool", "DeleteIdentities", "DeleteDataset", "UnlinkDeveloperIdentity", "UnlinkIdentity",
    "MergeDeveloperIdentities", "UpdateIdentityPool", "SetCognitoEvents", "GetOpenIdTokenForDeveloperIdentity",
}
CONFIG = Config(parameter_validation=False, retries={"total_max_attempts": 1})
# The unsigned identity calls are rate-limited per client address; this run is one address.
SERVE_ARGS = ["--identity-rate-per-client", "100000", "--identity-rate-per-pool", "100000"]
COUNTS = defaultdict(Counter)
SUCCEEDED = defaultdict(set)
# Hints: leave the member out; a live SyncSessionToken. A break: remove the member.
OMIT, TOKEN, DELETE = object(), object(), object()
ASCII = string.ascii_letters + string.digits + " -_.:/@+=,!~"  # for headers
TEXT = ASCII + "éß中€😀"  # code points of one to four UTF-8 bytes, one outside the BMP
MISFITS = " !#%é中~/,;A_0"  # characters to put in a value to make it miss a pattern
WRONG = {"string": 12345, "integer": "12", "long": "12", "boolean": "true", "timestamp": "2020-01-01T00:00:00Z",
         "list": {"not": "a list"}, "map": ["not a map"], "structure": ["not a structure"], "double": "1.5", "blob": 7}


# ---- patterns: the model's regular expressions, read as Java reads them ---------------------

# What one position of a pattern may take, for generating: escapes and \p{..} properties.
ESCAPES = {"w": string.ascii_letters + string.digits + "_", "d": string.digits, "s": " \t",
           "S": string.ascii_letters + string.digits + string.punctuation + "é中€😀"}
PROPERTIES = {"L": "aZéßж中", "M": "\u0301\u0903", "S": "$+<^|~€©", "N": "0189٣Ⅷ", "P": "!#%&*,./:;?@_-¿"}


@lru_cache
def categories():
    """`\\p{X}` for Python's re, which lacks it: each major Unicode category as class ranges."""
    ranges, last = defaultdict(list), None
    for cp in range(0x110000):
        cat = unicodedata.category(chr(cp))[0]
        if cat == last:
            ranges[cat][-1][1] = cp
        else:
            ranges[cat].append([cp, cp])
        last = cat
    return {cat: "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in spans) for cat, spans in ranges.items()}


@lru_cache
def compiled(pattern):
    """A model pattern as a Python regex: `\\w`, `\\d`, `\\s` ASCII as in Java; `\\p{X}` (only
    inside a class in these models) matched in Unicode, as Java does."""
    if "\\p{" not in pattern:
        return re.compile(pattern, re.ASCII)
    return re.compile(re.sub(r"\\p\{(\w)\}", lambda m: categories()[m.group(1)], pattern))


def matches(pattern, value):
    return compiled(pattern).fullmatch(value) is not None


@lru_cache
def parse_pattern(pattern):
    """The pattern as a tree to generate from: ("alt", [branch]), ("seq", [node]),
    ("rep", node, lo, hi or None) and ("chars", the characters one position may take)."""
    tokens = re.findall(r"\\p\{\w\}|\\.|\{\d+,?\d*\}|\(\?:|.", pattern)[::-1]  # popped from the end

    def chars(token, in_class=False):
        if token.startswith("\\p"):
            return PROPERTIES[token[3]]
        if token.startswith("\\"):
            return ESCAPES.get(token[1], token[1])
        return ESCAPES["S"] + " " if token == "." and not in_class else token

    def alternation():
        branches = [sequence()]
        while tokens and tokens[-1] == "|":
            tokens.pop()
            branches.append(sequence())
        return ("alt", branches)

    def sequence():
        items = []
        while tokens and tokens[-1] not in ("|", ")"):
            items.append(quantified(atom()))
        return ("seq", items)

    def atom():
        token = tokens.pop()
        if token in ("(", "(?:"):
            node = alternation()
            assert tokens.pop() == ")", pattern
            return node
        if token != "[":
            return ("chars", chars(token))
        assert tokens[-1] != "^", f"negated classes are not generated: {pattern}"
        out = ""
        while (token := tokens.pop()) != "]":
            if len(token) == 1 and tokens[-1] == "-" and tokens[-2] != "]":  # a range
                tokens.pop()
                out += "".join(map(chr, range(ord(token), ord(chars(tokens.pop(), True)) + 1)))
            else:
                out += chars(token, True)
        return ("chars", out)

    def quantified(node):
        token = tokens[-1] if tokens else ""
        if token in ("+", "*", "?"):
            tokens.pop()
            return ("rep", node, int(token == "+"), 1 if token == "?" else None)
        if token.startswith("{"):
            lo, comma, hi = tokens.pop()[1:-1].partition(",")
            return ("rep", node, int(lo), int(hi) if hi else None if comma else int(lo))
        return node

    tree = alternation()
    assert not tokens, pattern
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
                for m, spec in s["members"].items() if m in s.get("required", ()) or rng.random() < optional}
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
        for _ in range(10):  # a pattern may skip lengths: (un)?authenticated has no 14
            if (value := text(s, length, rng, ASCII if header else TEXT)) is not None:
                return value
            length = rng.randint(lo, min(hi, lo + 40))
        raise AssertionError(f"cannot generate {name}")
    if t in ("integer", "long"):
        bits = 31 if t == "integer" else 63
        lo, hi = s.get("min", -(2**bits)), s.get("max", 2**bits - 1)
        r = rng.random()
        small = rng.randint(max(lo, 0), min(hi, 100))
        return lo if r < 0.1 else hi if r < 0.2 else rng.randint(lo, hi) if r < 0.3 else small
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
    is the location of the top-level member it is in (None: a map key). A wrong JSON type
    goes on the wire: botocore would not serialize it, so the body is rewritten."""
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
                yield from breaks(shapes, spec["shape"], value[m], path + [m], where, rng)
    elif t in ("list", "map"):
        def make(n):
            return [valid(shapes, s["member"]["shape"], rng) for _ in range(n)] if t == "list" else keyed(shapes, s, n, rng)

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
            for bad in rng.sample(MISFITS, len(MISFITS)):
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
        member = s["members"][key] if s["type"] == "structure" else s["member" if s["type"] == "list" else "value"]
        out.append(member.get("locationName", key) if s["type"] == "structure" else key)
        name = member["shape"]
    return out


# ---- validation of raw answers ----------------------------------------------------------------


def conforms(shapes, name, value, path, out):
    """Appends to `out` each way `value` (parsed JSON) breaks shape `name`."""
    s, where = shapes[name], path or "the body"
    t = s["type"]
    kinds = {"structure": dict, "map": dict, "list": list, "string": str, "blob": str, "boolean": bool,
             "integer": int, "long": int, "timestamp": (int, float), "double": (int, float), "float": (int, float)}
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
    """How a raw answer breaks the model and its protocol: (problems, error name or None)."""
    model = SERVICES[service]
    shapes, spec, rest = model["shapes"], model["operations"][op], model["metadata"]["protocol"] == "rest-json"
    problems = []
    if headers.get("Content-Type", "").split(";")[0].strip() != ("application/json" if rest else "application/x-amz-json-1.1"):
        problems.append(f"Content-Type {headers.get('Content-Type')!r}")
    try:
        doc = json.loads(body) if body.strip() else None
    except ValueError:
        return problems + [f"the body is not JSON: {body[:200]!r}"], None
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
        return problems + [f"an error without a __type: {body[:200]!r}"], None
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
    return problems, name


# ---- the server, its clients and what each operation acts on ----------------------------------


class Api:
    """A botocore client of our model files that keeps each call's raw HTTP answer, and can
    rewrite a member of the JSON body on its way out (a wrong type botocore would not send)."""

    def __init__(self, env, service, key, secret, token=None):
        self.client = env.session.create_client(
            service, endpoint_url=env.server.url, region_name="us-east-1", aws_access_key_id=key,
            aws_secret_access_key=secret, aws_session_token=token, config=CONFIG,
        )
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
        except HTTPClientError:  # no answer: the server dropped the connection
            raise
        except Exception:  # an error answer, or botocore refusing to serialize or parse: what came back is checked
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
        self.tenant = tenant
        self.refresh()

    def refresh(self):
        idp, self.own = self.dev[IDENTITY], {}
        self.pool = idp.ok("CreateIdentityPool", IdentityPoolName="conformance", AllowUnauthenticatedIdentities=True,
                           DeveloperProviderName=DEV_PROVIDER)["IdentityPoolId"]
        out = idp.ok("GetOpenIdTokenForDeveloperIdentity", IdentityPoolId=self.pool, Logins={DEV_PROVIDER: "user-1"})
        self.user, self.user_token = out["IdentityId"], out["Token"]
        out = idp.ok("GetOpenIdTokenForDeveloperIdentity", IdentityPoolId=self.pool, Logins={DEV_PROVIDER: "user-2"})
        self.other = out["IdentityId"]
        self.guest = idp.ok("GetId", IdentityPoolId=self.pool)["IdentityId"]
        for identity in (self.user, self.guest):
            token = self.session_token({"IdentityPoolId": self.pool, "IdentityId": identity, "DatasetName": "profile"})
            patches = [{"Op": "replace", "Key": k, "Value": "v", "SyncCount": 0} for k in ("k1", "k2")]
            self.dev[SYNC].ok("UpdateRecords", IdentityPoolId=self.pool, IdentityId=identity, DatasetName="profile",
                              SyncSessionToken=token, RecordPatches=patches)
        # Streams and push sync on (a stream name belongs to one tenant), a device per identity.
        self.dev[SYNC].ok("SetIdentityPoolConfiguration", IdentityPoolId=self.pool,
                          CognitoStreams={"StreamName": f"conformance-{self.tenant}", "StreamingStatus": "ENABLED"},
                          PushSync={"ApplicationArns": ["arn:aws:sns:us-east-1:123456789012:app/GCM/conformance"]})
        self.devices = {identity: self.dev[SYNC].ok("RegisterDevice", IdentityPoolId=self.pool, IdentityId=identity,
                                                    Platform="GCM", Token=f"token-{identity}")["DeviceId"]
                        for identity in (self.user, self.guest)}

    def session_token(self, params):
        names = {k: params[k] for k in ("IdentityPoolId", "IdentityId", "DatasetName") if k in params}
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
            "SyncSessionToken": TOKEN, "Events": {"SyncTrigger": "trigger"},
            "SupportedLoginProviders": {"accounts.google.com": "app.apps.googleusercontent.com"},
            "CognitoIdentityProviders": [{"ProviderName": f"cognito-idp.us-east-1.amazonaws.com/us-east-1_{op}", "ClientId": "app"}],
            "RecordPatches": [{"Op": "replace", "Key": f"key-{rng.randrange(10**6)}", "Value": "v", "SyncCount": 0}],
            "DeviceId": self.devices[identity], "Platform": "GCM", "Token": f"token-{rng.randrange(10**6)}",
            **dict.fromkeys(["OpenIdConnectProviderARNs", "SamlProviderARNs", "CustomRoleArn", "AccountId", "PrincipalTags"], OMIT),
        }

    def input(self, service, op, rng, hinted=0.8, optional=0.5):
        """An input of the operation, and which of its members are the fixture's real values
        (each with probability `hinted`)."""
        shapes, name = SERVICES[service]["shapes"], SERVICES[service]["operations"][op]["input"]["shape"]
        s, hints, out, real = shapes[name], self.hints(op, rng), {}, set()
        for m, spec in s["members"].items():
            required = m in s.get("required", ())
            if not (required or rng.random() < optional):
                continue
            if m in hints and rng.random() < hinted:
                if hints[m] is TOKEN:
                    out[m] = self.session_token(out)
                    continue
                if hints[m] is not OMIT:
                    out[m] = copy.deepcopy(hints[m])
                    real.add(m)
                    continue
                if not (required or optional == 1):
                    continue
            out[m] = valid(shapes, spec["shape"], rng, optional, spec.get("location") == "header")
        return out, real


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
    # With a broker, so that the streams and push operations can succeed.
    broker = Broker(tmp_path_factory.mktemp("nats")).start()
    server = Server(tmp_path_factory.mktemp("conformance") / "data", extra_args=SERVE_ARGS + ["--nats", broker.url]).start()
    yield SimpleNamespace(server=server, session=session)
    server.stop(signal.SIGKILL)
    broker.stop(signal.SIGKILL)


def shown(value):
    """A request's params for a report: long strings cut."""
    if isinstance(value, str) and len(value) > 60:
        return f"{value[:40]}…({len(value)} chars)"
    if isinstance(value, dict):
        return {shown(k): shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value[:5]] + ([f"…({len(value)} items)"] if len(value) > 5 else [])
    return value


OPERATIONS = [(service, op) for service, model in SERVICES.items() for op in model["operations"]]


@pytest.mark.parametrize("service,op", OPERATIONS, ids=[f"{s.split('-')[1]}-{op}" for s, op in OPERATIONS])
def test_operation_conforms_to_the_model(env, service, op):
    rng = random.Random(f"{SEED}:{service}:{op}")
    shapes = SERVICES[service]["shapes"]
    input_name = SERVICES[service]["operations"][op]["input"]["shape"]
    input_shape = shapes[input_name]
    fx = Fixture(env, f"{service.split('-')[1]}-{xform_name(op, '-')}")
    counts, problems = COUNTS[service], []
    counts["operations"] += 1

    def send(kind, what, params, patch=None, api=None):
        """Sends one case and checks its answer: (error name or None, its message, the case as
        a report shows it) or None if botocore cannot send it."""
        raw = (api or fx.dev[service]).call(op, params, patch)
        if raw is None:
            counts["not sendable"] += 1
            return None
        counts[f"{kind} sent"] += 1
        status, body = raw.status_code, raw.content
        issues, error = check_answer(service, op, status, raw.headers, body)
        counts["errors validated" if status >= 300 else "responses validated"] += 1
        if status < 300:
            SUCCEEDED[service].add(op)
        if kind == "broken" and error != "InvalidParameterException":
            issues.append(f"expected InvalidParameterException, got {error or ('a success' if status < 300 else 'no error')}")
        elif kind == "valid" and op in UNSUPPORTED and status < 300:
            issues.append("an unsupported operation answered a success")
        elif kind == "valid" and (status >= 500 or error == "TooManyRequestsException"):
            issues.append(f"{error} (HTTP {status}) for a valid input")
        message = json.loads(body).get("message", "") if error else ""
        if kind == "valid" and "failed to satisfy constraint" in message:
            issues.append("the server's check of the model refused a valid input")
        on_wire = f"\n    on the wire: {patch[0]} = {json.dumps(patch[1])}" if patch else ""

        def case(issue):
            return f"{op} [{kind}: {what}]: {issue}\n    input: {shown(params)}{on_wire}\n    -> HTTP {status} {body[:300]!r}"

        problems.extend(map(case, issues))
        return error, message, case

    # Broken inputs, member by member: each case breaks one constraint in a member of an input
    # of that member, the required ones and those that name the fixture's resources.
    # That input is then sent unbroken: if it is refused as well, an InvalidParameterException
    # for a broken one shows nothing unless its message says it is the model's check.
    full, required = None, input_shape.get("required", ())
    for m, spec in input_shape["members"].items():
        if full is None or op in DESTRUCTIVE:
            if full is not None:
                fx.refresh()
            full, real = fx.input(service, op, random.Random(f"{SEED}:{op}:base"), hinted=1, optional=1)
        base = {k: v for k, v in full.items() if k in required or k in real or k == m}
        cases = [(f"required member {m} missing", [m], DELETE, False)] if m in required else []
        cases += breaks(shapes, spec["shape"], full[m], [m], spec.get("location", "body"), random.Random(f"{SEED}:{op}:{m}"))
        answers = []  # of the cases whose path stays routable (an empty URI label may not)
        for what, path, bad, wire in cases:
            what = f"{'.'.join(map(str, path))}: {what}"
            if wire:
                answer = send("broken", what, base, (wire_path(shapes, input_name, path), bad))
            else:
                params = copy.deepcopy(base)
                put(params, path, bad)
                answer = send("broken", what, params)
            if answer and not (spec.get("location") == "uri" and bad in ("", DELETE)):
                answers.append(answer)
        unbroken = send("valid", f"the input {m} was broken in", base)
        if unbroken and unbroken[0] == "InvalidParameterException" and op not in UNSUPPORTED:
            counts["broken sent whose unbroken input is refused too"] += len(answers)
            for error, message, case in answers:
                if error == "InvalidParameterException" and "failed to satisfy constraint" not in message:
                    problems.append(case("InvalidParameterException, but not the model's check (the unbroken input is refused too)"))
    # Valid inputs: the first only the required members, all real; the rest at random.
    for i in range(VALID_CASES if op not in UNSUPPORTED else 5):
        if op in DESTRUCTIVE:
            fx.refresh()
        params = fx.input(service, op, rng, hinted=1, optional=0)[0] if i == 0 else fx.input(service, op, rng)[0]
        own = service == SYNC and params.get("IdentityId") in (fx.user, fx.guest) and rng.random() < 0.3
        send("valid", f"case {i}", params, api=fx.identity_client(params["IdentityId"]) if own else None)
    assert not problems, f"{len(problems)} deviation(s) from the model (seed {SEED}):\n" + "\n".join(problems[:40])
