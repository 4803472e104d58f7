"""Differential SigV4 test: requests signed by three independent signers — botocore (boto3
and the AWS CLI), the JavaScript SDK v3 (@smithy/signature-v4) and the Rust SDK
(aws-sigv4) — with odd paths, queries and headers all verify against the real server, and a
change to any one byte of the method, path, query, a signed header or the body is refused.

Requests go over a raw socket, byte for byte as each signer's SDK would send them."""

import json
import subprocess
import urllib.parse

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence
from conftest import ROOT
from test_hardening import send

JS = ROOT / "tests" / "js"
RUST_SIGNER = ROOT / "target" / "debug" / "sigv4-sign"


def enc(s):
    return urllib.parse.quote(s, safe="")


def cases(server, t, identity, creds):
    """(case, expected status) pairs. Every expected status is what the operation answers
    a correctly signed request with; none is 403."""
    ds = f"/identitypools/{enc(t.pool)}/identities/{enc(identity)}/datasets"
    host = urllib.parse.urlsplit(server.url).netloc
    base = {"host": host, "region": "us-east-1", "service": "cognito-sync", "headers": [], "body": "", "query": []}
    base.update(creds)
    raw = [
        ({"id": "list-records", "method": "GET", "path": f"{ds}/game/records", "query": [["lastSyncCount", "0"], ["maxResults", "10"]]}, 200),
        ({"id": "raw-colons", "method": "GET", "path": f"/identitypools/{t.pool}/identities/{identity}/datasets/game/records"}, 200),
        ({"id": "percent-in-name", "method": "GET", "path": f"{ds}/{enc('a%b')}/records"}, 400),
        ({"id": "dot-dot", "method": "GET", "path": f"{ds}/../records"}, 200),
        # Verified, then refused: its signed path is also DescribeDataset("records")'s.
        ({"id": "dot", "method": "GET", "path": f"{ds}/./records"}, 400),
        ({"id": "duplicates", "method": "GET", "path": f"{ds}/game/records", "query": [["maxResults", "3"], ["maxResults", "1"]]}, 400),
        ({"id": "plus-and-escapes", "method": "GET", "path": f"{ds}/game/records", "query": [["syncSessionToken", "a+b/c d é%2B"]]}, 400),
        ({"id": "empty-value", "method": "GET", "path": f"{ds}/game/records", "query": [["nextToken", ""], ["lastSyncCount", "0"]]}, 400),
        ({"id": "header-case-and-space", "method": "GET", "path": f"{ds}/game", "headers": [["X-Amz-Meta-Odd", "  a   b  c "], ["X-UPPER", "Value"]]}, 404),
        ({"id": "post-unicode-body", "method": "POST", "path": f"{ds}/game", "headers": [["Content-Type", "application/json"]],
          "body": json.dumps({"SyncSessionToken": "forged", "RecordPatches": [{"Op": "replace", "Key": "ké", "Value": "vé ☃", "SyncCount": 0}]}, ensure_ascii=False)}, 400),
        ({"id": "delete", "method": "DELETE", "path": f"{ds}/absent"}, 404),
        ({"id": "pool-usage", "method": "GET", "path": "/identitypools", "query": [["maxResults", "5"]]}, 200),
    ]
    return [(dict(base, **case), status) for case, status in raw]


def sign_botocore(batch):
    out = []
    for case in batch:
        # As botocore's rest-json serializer does: the query is percent-encoded into the URL.
        query = percent_encode_sequence([tuple(p) for p in case["query"]])
        request = AWSRequest(
            method=case["method"],
            url=f"http://{case['host']}{case['path']}" + (f"?{query}" if query else ""),
            data=case["body"].encode(),
            headers=dict(case["headers"]),
        )
        creds = Credentials(case["accessKeyId"], case["secretAccessKey"], case["sessionToken"])
        SigV4Auth(creds, case["service"], case["region"]).add_auth(request)
        prepared = request.prepare()
        parts = urllib.parse.urlsplit(prepared.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        out.append({"id": case["id"], "method": case["method"], "target": target, "headers": list(prepared.headers.items()), "body": case["body"]})
    return out


def run_signer(command, batch):
    out = subprocess.run(command, input=json.dumps(batch), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def sign_js(batch):
    assert (JS / "node_modules").exists(), "run `npm ci --prefix tests/js` first (tests/run-all.sh does)"
    return run_signer(["node", str(JS / "sign.mjs")], batch)


def sign_rust(batch):
    assert RUST_SIGNER.exists(), f"{RUST_SIGNER} is missing; run `cargo test --workspace` first"
    return run_signer([str(RUST_SIGNER)], batch)


SIGNERS = {"botocore": sign_botocore, "js-sdk-v3": sign_js, "aws-sigv4": sign_rust}


def flip(text, at):
    """`text` with the character at `at` changed to another of the same class (a hex digit
    for a hex digit, a letter for a letter), so the request stays well-formed."""
    c = text[at]
    if c in "0123456789abcdefABCDEF":
        new = "0123456789abcdef0"["0123456789abcdef".index(c.lower()) + 1]
        new = new.upper() if c.isupper() else new
    elif c.isalpha() and c.isascii():
        new = "x" if c.lower() != "x" else "y"
        new = new.upper() if c.isupper() else new
    else:
        return None
    return text[:at] + new + text[at + 1:]


def cancelled(path):
    """Character positions of path segments that a following `..` removes: SigV4 signs the
    normalised path, so these are not signed (as with AWS itself)."""
    positions, at, segments = set(), 0, path.split("/")
    for i, segment in enumerate(segments):
        if i + 1 < len(segments) and segments[i + 1] == ".." and segment not in ("", ".", ".."):
            positions.update(range(at, at + len(segment)))
        at += len(segment) + 1
    return positions


def mutations(signed):
    """Every one-character change worth trying: (what, method, target, headers, body,
    expected status). All are refused, but for a segment that a `..` removes from what is
    signed: that one reaches no operation (404)."""
    method, target, headers, body = signed["method"], signed["target"], signed["headers"], signed["body"]
    other = {"GET": "DELETE", "DELETE": "GET", "POST": "GET"}[method]
    yield "method", other, target, headers, body, 403
    path, _, query = target.partition("?")
    unsigned = cancelled(path)
    for at in range(1, len(path)):
        changed = flip(path, at)
        if changed:
            expected = 404 if at in unsigned else 403
            yield f"path[{at}]", method, changed + (f"?{query}" if query else ""), headers, body, expected
    for at in range(len(query)):
        changed = flip(query, at)
        if changed:
            yield f"query[{at}]", method, f"{path}?{changed}", headers, body, 403
    signed_names = next(v for k, v in headers if k.lower() == "authorization").split("SignedHeaders=")[1].split(",")[0].split(";")
    for i, (name, value) in enumerate(headers):
        # (Content-Length is sent as the body's length whatever is signed.)
        if name.lower() not in signed_names or name.lower() in ("host", "authorization", "x-amz-content-sha256", "content-length"):
            continue
        for at in range(len(value)):
            changed = flip(value, at)
            if changed:
                yield f"{name}[{at}]", method, target, headers[:i] + [(name, changed)] + headers[i + 1:], body, 403
                break
    for at in range(len(body)):
        changed = flip(body, at)
        if changed:
            yield f"body[{at}]", method, target, headers, changed, 403
            break


@pytest.fixture
def setup(server):
    t = server.tenant("acme")
    identity, _ = t.identity()
    ident = server.client("cognito-identity", "u", "u")
    c = ident.get_credentials_for_identity(IdentityId=identity)["Credentials"]
    return server, t, identity, {
        "developer": {"accessKeyId": t.key, "secretAccessKey": t.secret, "sessionToken": None},
        "identity": {"accessKeyId": c["AccessKeyId"], "secretAccessKey": c["SecretKey"], "sessionToken": c["SessionToken"]},
    }


@pytest.mark.parametrize("signer", sorted(SIGNERS))
@pytest.mark.parametrize("kind", ["developer", "identity"])
def test_every_signer_verifies_and_every_mutation_is_refused(setup, signer, kind):
    server, t, identity, creds = setup
    batch = cases(server, t, identity, creds[kind])
    if kind == "identity":
        batch = [(c, s) for c, s in batch if c["id"] != "pool-usage"]  # a developer operation
    signed = SIGNERS[signer]([c for c, _ in batch])
    tried = 0
    for (case, expected), request in zip(batch, signed):
        status, _, body = send(server, request["method"], request["target"], request["headers"], request["body"].encode())
        assert status == expected, (signer, case["id"], request["target"], body)
        for what, method, target, headers, req_body, refused in mutations(request):
            status, _, body = send(server, method, target, headers, req_body.encode())
            name = {403: "NotAuthorizedException", 404: "UnknownOperationException"}[refused]
            malformed = status == 400 and "not valid percent-encoded UTF-8" in body["message"]
            assert (status, body["__type"]) == (refused, name) or malformed, (signer, case["id"], what, target, body)
            tried += 1
    assert tried > 500
