"""Real JavaScript clients against the real server: the AWS SDK for JavaScript v3
(@aws-sdk/client-cognito-identity, @aws-sdk/client-cognito-sync), the Cognito Sync Manager
(amazon-cognito-js 1.1.0 on aws-sdk v2), and the v3 SDK's SigV4 signer (tests/js/sign.mjs).

Needs Node.js and `npm ci --prefix tests/js` (exact versions in tests/js/package-lock.json)."""

import http.client
import json
import os
import shutil
import subprocess
import urllib.parse

import pytest
from conftest import ROOT, records

JS = ROOT / "tests" / "js"


def node(script, *args, stdin=None):
    """Run a tests/js script; its stdout."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed; the JavaScript client tests need Node.js >= 18")
    if not (JS / "node_modules").is_dir():
        pytest.fail(f"{JS / 'node_modules'} is missing: run `npm ci --prefix tests/js`")
    # No AWS_* variable of the environment (profile, region, credentials) can reach the clients.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE"] = "1"
    out = subprocess.run(
        ["node", str(JS / script), *args], input=stdin, capture_output=True, text=True, timeout=60, env=env, cwd=JS
    )
    assert out.returncode == 0, f"node {script} {' '.join(args)} failed ({out.returncode}):\n{out.stderr}"
    return out.stdout


def scenario(server, name, pool):
    lines = node("clients.mjs", name, "--url", server.url, "--pool", pool).splitlines()
    results = [json.loads(line) for line in lines if line.strip()]
    assert [r["scenario"] for r in results] == [name]
    return results[0]


def request_ids(value):
    """Every requestId in a result, wherever it is."""
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == "requestId"] + [i for v in value.values() for i in request_ids(v)]
    if isinstance(value, list):
        return [i for v in value for i in request_ids(v)]
    return []


def listing(records_, sync_count, exists=True):
    return {"records": records_, "datasetSyncCount": sync_count, "datasetExists": exists}


def view(result):
    """The part of a listing that the server decides (records sorted by key)."""
    return {"records": sorted(result["records"]), "datasetSyncCount": result["datasetSyncCount"], "datasetExists": result["datasetExists"]}


def test_sdk_v3_identity_and_sync_calls(server):
    t = server.tenant("acme")
    r = scenario(server, "sdk-v3", t.pool)
    identity = r["identityId"]
    assert identity.startswith("us-east-1:") and r["credentials"]["identityId"] == identity
    creds = r["credentials"]
    assert creds["hasAccessKeyId"] and creds["hasSecretKey"] and creds["hasSessionToken"]
    assert creds["expirationIsDate"] and creds["expiresInSeconds"] > 0

    # The server sends x-amzn-RequestId on every answer, success or error, and the SDK reads it.
    assert r["requestIdHeader"]["header"] and r["requestIdHeader"]["header"] == r["requestIdHeader"]["metadata"]
    ids = request_ids(r) + [r["getIdRequestId"]]
    assert all(isinstance(i, str) and i for i in ids), ids
    assert len(set(ids)) == len(ids), "request ids are unique"

    assert view(r["list0"]) == listing([], 0, exists=False)
    assert r["list0"]["count"] == 0 and r["list0"]["hasToken"] and r["list0"]["deletedAfter"] is False
    assert sorted(r["update1"]["records"]) == [["a", "1", 1], ["b", "2", 1], ["c", "3", 1]]
    assert view(r["list1"]) == listing([["a", "1", 1], ["b", "2", 1], ["c", "3", 1]], 1)
    assert sorted(r["update2"]["records"]) == [["a", "10", 2], ["b", None, 2]]
    assert view(r["listSince1"]) == listing([["a", "10", 2], ["b", None, 2]], 2)
    assert r["listSince1"]["count"] == 2

    stale = r["staleSyncCount"]
    assert (stale["name"], stale["fault"], stale["status"], stale["message"]) == (
        "ResourceConflictException",
        "client",
        409,
        "Current SyncCount for: c is: 1 not: 0",
    )
    old_token = r["staleToken"]
    assert (old_token["name"], old_token["fault"], old_token["status"]) == ("ResourceConflictException", "client", 409)
    assert old_token["message"]

    d = r["describeDataset"]
    assert (d["datasetName"], d["identityId"], d["numRecords"], d["dataStorage"]) == ("game", identity, 2, len("a10c3"))
    assert d["creationDateIsDate"] and d["lastModifiedDateIsDate"]

    # ".." is a dataset name of its own, not a path segment.
    dot = r["dotDatasets"][".."]
    assert view(dot["first"]) == listing([], 0, exists=False)
    assert dot["update"] == [["k", "dotdot", 1]]
    assert view(dot["after"]) == listing([["k", "dotdot", 1]], 1)
    # ListRecords of "." is signed as DescribeDataset of "records" would be: refused.
    assert (r["dotListing"]["error"], r["dotListing"]["status"]) == ("InvalidParameterException", 400)
    assert "cannot be told apart" in r["dotListing"]["message"]
    assert view(r["gameAfterDots"]) == listing([["a", "10", 2], ["b", None, 2], ["c", "3", 1]], 2)
    assert [len(p) for p in r["pages"]] == [2, 1]
    assert sorted(rec for page in r["pages"] for rec in page) == [["a", "10", 2], ["b", None, 2], ["c", "3", 1]]

    assert r["listDatasets"]["datasets"] == [["..", 1, len("kdotdot")], ["game", 2, len("a10c3")]]
    assert r["listDatasets"]["count"] == 2
    u = r["identityUsage"]
    assert (u["identityId"], u["identityPoolId"], u["datasetCount"], u["dataStorage"]) == (identity, t.pool, 2, 12)
    assert u["lastModifiedDateIsDate"]

    # boto3, as the developer, sees the same three datasets under those exact names.
    names = [x["DatasetName"] for x in t.dev.list_datasets(IdentityPoolId=t.pool, IdentityId=identity)["Datasets"]]
    assert sorted(names) == ["..", "game"]
    assert records(t.dev, t.pool, identity, "game")[0] == {"a": ("10", 2), "b": (None, 2), "c": ("3", 1)}


def http_of(result, device, phase):
    return [(op, status, code) for ph, op, status, code, _ in result["http"][device] if ph == phase]


def test_sync_manager_two_devices_conflicts_and_merges(server):
    t = server.tenant("acme")
    r = scenario(server, "sync-manager", t.pool)
    identity = r["identityIds"]["A"]
    assert r["identityIds"]["B"] == identity and identity.startswith("us-east-1:")
    assert r["distinctCredentials"], "each device signs with its own GetCredentialsForIdentity credentials"
    phases = r["phases"]
    ok = {"A": "success", "B": "success"}

    first = phases["first"]
    assert first["outcomes"] == ok
    assert first["A"] == first["B"] == {"k1": "v1"}
    assert first["lastSyncCount"] == {"A": 1, "B": 1}

    # Different keys: A pushes first; B's push (with a token from before A's push) is a 409, after
    # which the library pulls A's record and pushes its own again.
    diff = phases["differentKeys"]
    assert diff["outcomes"] == ok and diff["settle"] == ok
    assert diff["A"] == diff["B"] == {"k1": "v1", "kA": "fromA", "kB": "fromB"}
    assert diff["lastSyncCount"] == {"A": 3, "B": 3}
    assert http_of(r, "A", "2-race") == [("listRecords", 200, None), ("updateRecords", 200, None)]
    assert http_of(r, "B", "2-race") == [
        ("listRecords", 200, None),
        ("updateRecords", 409, "ResourceConflictException"),
        ("listRecords", 200, None),
        ("listRecords", 200, None),
        ("updateRecords", 200, None),
    ]

    # The same key: B's push is a 409, then B pulls, gets onConflict and keeps the remote record.
    same = phases["sameKey"]
    assert same["outcomes"] == ok and same["settle"] == ok
    assert same["A"] == same["B"] == {"k1": "sameFromA", "kA": "fromA", "kB": "fromB"}
    assert same["lastSyncCount"] == {"A": 4, "B": 4}
    assert http_of(r, "B", "3-race")[:3] == [
        ("listRecords", 200, None),
        ("updateRecords", 409, "ResourceConflictException"),
        ("listRecords", 200, None),
    ]
    assert ["3-race", "onConflict", [["k1", "sameFromB", "sameFromA", 4]]] in r["events"]["B"]

    # A remove reaches the other device. amazon-cognito-js 1.1.0 itself turns a removed record's
    # null value into "" (Record: `this.value = data.Value || ''`), even before any sync, so its
    # getAll() shows removed keys as "": the server stores a tombstone (checked below).
    rm = phases["remove"]
    assert rm["outcomes"] == ok
    assert rm["A"] == rm["B"] == {"k1": "sameFromA", "kA": "", "kB": "fromB"}
    assert rm["lastSyncCount"] == {"A": 5, "B": 5}

    assert r["server"] == {"datasetSyncCount": 5, "records": [["k1", "sameFromA", 4], ["kA", None, 5], ["kB", "fromB", 3]]}
    assert records(t.dev, t.pool, identity, "settings")[0] == {"k1": ("sameFromA", 4), "kA": (None, 5), "kB": ("fromB", 3)}

    # Only onSuccess and the one onConflict fired; every call carried a request id.
    for device in ("A", "B"):
        fired = [name for _, name, _ in r["events"][device]]
        expected = ["onSuccess"] * 6 if device == "A" else ["onSuccess"] * 3 + ["onConflict"] + ["onSuccess"] * 3
        assert fired == expected, r["events"][device]
        assert all(rid for *_, rid in r["http"][device])


def signed(cases):
    return {c["id"]: c for c in json.loads(node("sign.mjs", stdin=json.dumps(cases)))}


def send(server, req, target=None, headers=None):
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(server.url).netloc, timeout=30)
    try:
        body = req["body"].encode()
        conn.request(req["method"], target or req["target"], body=body or None, headers=dict(headers or req["headers"]))
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_sigv4_as_the_v3_sdk_signs_it_is_accepted_and_a_tampered_request_is_not(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    ident = server.client("cognito-identity", "unused", "unused")
    c = ident.get_credentials_for_identity(IdentityId=identity)["Credentials"]
    token = user.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["SyncSessionToken"]
    host = urllib.parse.urlsplit(server.url).netloc
    q = urllib.parse.quote
    base = f"/identitypools/{q(t.pool, safe='')}/identities/{q(identity, safe='')}"
    temporary = {"accessKeyId": c["AccessKeyId"], "secretAccessKey": c["SecretKey"], "sessionToken": c["SessionToken"]}
    developer = {"accessKeyId": t.key, "secretAccessKey": t.secret, "sessionToken": None}
    common = {"host": host, "region": "us-east-1", "service": "cognito-sync", "headers": [], "query": [], "body": ""}
    odd_query = [
        ["lastSyncCount", "0"],
        ["maxResults", "10"],
        ["zz", "a+b c/d é"],  # duplicate names, sent in this order, signed sorted by value
        ["zz", "A"],
        ["zz", ""],
        ["ZZ", "upper"],
        ["weird key*(!)", "v~_-.☃"],
    ]
    odd_headers = [["X-Custom-Thing", "  a   b \t c  "], ["x-amz-meta-Mixed", "one  two"]]
    patch = {"Op": "replace", "Key": "k", "Value": "héllo ☃ \"quoted\"", "SyncCount": 0}
    cases = [
        dict(common, **temporary, id="list-odd-query", method="GET", path=f"{base}/datasets/game/records", query=odd_query, headers=odd_headers),
        dict(common, **developer, id="list-developer", method="GET", path=f"{base}/datasets/game/records", query=odd_query),
        dict(common, **temporary, id="list-dotdot", method="GET", path=f"{base}/datasets/../records"),
        dict(common, **temporary, id="list-dot", method="GET", path=f"{base}/datasets/./records"),
        dict(common, **temporary, id="usage", method="GET", path=base, headers=odd_headers),
        dict(
            common,
            **temporary,
            id="update",
            method="POST",
            path=f"{base}/datasets/game",
            headers=[["Content-Type", "application/json"], ["X-Amz-Client-Context", "  ctx  "]],
            body=json.dumps({"SyncSessionToken": token, "RecordPatches": [patch]}, ensure_ascii=False),
        ),
    ]
    out = signed(cases)
    assert set(out) == {c["id"] for c in cases}
    for case_id in ("list-odd-query", "list-developer", "list-dotdot", "usage"):
        status, body = send(server, out[case_id])
        assert status == 200, (case_id, out[case_id]["target"], body)
    status, body = send(server, out["list-dot"])
    assert (status, body["__type"]) == (400, "InvalidParameterException"), "verified, then refused as ambiguous"
    assert "?ZZ=upper&lastSyncCount=0&maxResults=10&weird%20key%2A%28%21%29=v~_-.%E2%98%83&zz=a%2Bb%20c%2Fd%20%C3%A9&zz=A&zz=" in out["list-odd-query"]["target"]
    status, body = send(server, out["update"])
    assert status == 200, body
    assert [(r["Key"], r["Value"], r["SyncCount"]) for r in body["Records"]] == [("k", patch["Value"], 1)]

    # The same signed requests, changed after signing: refused.
    lst = out["list-odd-query"]
    status, body = send(server, lst, target=lst["target"].replace("zz=A", "zz=B"))
    assert (status, body["__type"]) == (403, "NotAuthorizedException"), body
    status, body = send(server, lst, target=lst["target"].replace("&zz=A&zz=", "&zz=&zz=A"))
    assert status == 200, "the order of repeated parameters is not signed"
    headers = [[k, "a b c" if k == "X-Custom-Thing" else v] for k, v in lst["headers"]]
    status, body = send(server, lst, headers=headers)
    assert status == 200, "header values are signed with runs of whitespace collapsed"
    headers = [[k, "a b d" if k == "X-Custom-Thing" else v] for k, v in lst["headers"]]
    status, body = send(server, lst, headers=headers)
    assert (status, body["__type"]) == (403, "NotAuthorizedException"), body
    dotdot = out["list-dotdot"]
    status, body = send(server, dotdot, target=dotdot["target"].replace("/../", "/.../"))
    assert (status, body["__type"]) == (403, "NotAuthorizedException"), body
    assert records(user, t.pool, identity, "game")[0] == {"k": (patch["Value"], 1)}
