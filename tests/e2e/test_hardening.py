"""The hardening contract: what a signature covers, what one client can hold, and the sync
semantics the real clients rely on. Each test names the item of the contract it checks."""

import hashlib
import http.client
import json
import os
import resource
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from conftest import BACKEND, BIN, ROOT_KEY, ROOT_SECRET, Server, env_for, records, sync


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def error_of(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]


def enc(s):
    return urllib.parse.quote(s, safe="")


def dataset_path(pool, identity, name):
    return f"/identitypools/{enc(pool)}/identities/{enc(identity)}/datasets/{enc(name)}"


def sign(server, method, path, params=(), body=b"", creds=(ROOT_KEY, ROOT_SECRET, None), region="us-east-1"):
    """A request signed by botocore exactly as boto3 would sign it: (target, headers, body)."""
    request = AWSRequest(method=method, url=server.url + path, params=list(params), data=body)
    SigV4Auth(Credentials(*creds), "cognito-sync", region).add_auth(request)
    prepared = request.prepare()
    parts = urllib.parse.urlsplit(prepared.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = [(k, v) for k, v in prepared.headers.items()]
    return target, headers, body


def send(server, method, target, headers, body=b""):
    """Sends exactly these bytes; returns (status, headers, parsed JSON body)."""
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    for k, v in headers:
        conn.putheader(k, v)
    if "host" not in {k.lower() for k, _ in headers}:
        conn.putheader("Host", f"{host}:{port}")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), json.loads(data) if data else None


def replace_header(headers, name, value):
    kept = [(k, v) for k, v in headers if k.lower() != name.lower()]
    return kept + ([(name, value)] if value is not None else [])


def dev_creds(t):
    return (t.key, t.secret, None)


# 1. The signature covers the body.
def test_a_captured_request_cannot_carry_another_body(server):
    t = server.tenant("acme", trigger="sample_trigger", trigger_name="sample")
    identity, _ = t.identity()
    token = t.dev.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["SyncSessionToken"]
    good = json.dumps({"SyncSessionToken": token, "RecordPatches": [put("k", "good")]}).encode()
    evil = json.dumps({"SyncSessionToken": token, "RecordPatches": [put("k", "evil")]}).encode()
    target, headers, _ = sign(server, "POST", dataset_path(t.pool, identity, "game"), body=good, creds=dev_creds(t))
    declared = replace_header(headers, "X-Amz-Content-SHA256", hashlib.sha256(good).hexdigest())
    status, _, body = send(server, "POST", target, declared, evil)
    assert (status, body["__type"]) == (403, "NotAuthorizedException")
    assert "x-amz-content-sha256 does not match" in body["message"]
    status, _, body = send(server, "POST", target, replace_header(headers, "X-Amz-Content-SHA256", None), evil)
    assert (status, body["__type"]) == (403, "NotAuthorizedException") and "signature" in body["message"]
    for declared in ("UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"):
        status, _, body = send(server, "POST", target, replace_header(headers, "X-Amz-Content-SHA256", declared), good)
        assert status == 403 and declared in body["message"]
    assert records(t.dev, t.pool, identity, "game")[0] == {}
    status, _, body = send(server, "POST", target, headers, good)
    assert status == 200 and body["Records"][0]["Value"] == "good"

    # A captured SetCognitoEvents cannot be turned into one that unmaps the trigger.
    mapping = json.dumps({"Events": {"SyncTrigger": "sample"}}).encode()
    target, headers, _ = sign(server, "POST", f"/identitypools/{enc(t.pool)}/events", body=mapping, creds=dev_creds(t))
    unmap = json.dumps({"Events": {"SyncTrigger": ""}}).encode()
    declared = replace_header(headers, "X-Amz-Content-SHA256", hashlib.sha256(mapping).hexdigest())
    assert send(server, "POST", target, declared, unmap)[0] == 403
    assert t.dev.get_cognito_events(IdentityPoolId=t.pool)["Events"] == {"SyncTrigger": "sample"}


# 2. The credential scope names this server's region and the request's date.
def test_the_scope_must_name_this_servers_region(server):
    t = server.tenant("acme")
    elsewhere = server.client("cognito-sync", t.key, t.secret)
    elsewhere = __import__("boto3").client(
        "cognito-sync", endpoint_url=server.url, region_name="eu-west-3", aws_access_key_id=t.key,
        aws_secret_access_key=t.secret, config=elsewhere.meta.config,
    )
    with pytest.raises(ClientError) as e:
        elsewhere.list_identity_pool_usage()
    code, status, message = error_of(e)
    assert (code, status) == ("NotAuthorizedException", 403) and 'region "eu-west-3"' in message
    target, headers, _ = sign(server, "GET", "/identitypools", creds=dev_creds(t))
    auth = dict(headers)["Authorization"]
    date = auth.split("Credential=")[1].split("/")[1]
    for scope_date in ("", date[:4]):
        forged = replace_header(headers, "Authorization", auth.replace(f"/{date}/", f"/{scope_date}/"))
        status, _, body = send(server, "GET", target, forged)
        assert status == 403 and "credential scope date" in body["message"], body


# 3. The handler reads the query the signature covers.
def test_a_signed_query_cannot_be_edited(server):
    t = server.tenant("acme")
    identity, _ = t.identity()
    sync(t.dev, t.pool, identity, "game", [put(f"k{i}", "v") for i in range(5)])
    path = dataset_path(t.pool, identity, "game") + "/records"
    target, headers, _ = sign(server, "GET", path, [("maxResults", "3")], creds=dev_creds(t))
    status, _, body = send(server, "GET", target, headers)
    assert status == 200 and body["Count"] == 3
    for edited in ("maxResults=1", "maxResults=3&maxResults=1", "maxResults=1&maxResults=3", "maxResults=3+"):
        status, _, body = send(server, "GET", target.split("?")[0] + "?" + edited, headers)
        assert (status, body["__type"]) == (403, "NotAuthorizedException"), edited
    # Signed duplicates verify, and the handler refuses to pick one.
    target, headers, _ = sign(server, "GET", path, [("maxResults", "3"), ("maxResults", "1")], creds=dev_creds(t))
    status, _, body = send(server, "GET", target, headers)
    assert status == 400 and body["__type"] == "InvalidParameterException" and "more than once" in body["message"]


# 5. One client cannot lock every tenant out.
def test_slow_clients_do_not_stop_a_normal_client(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    # Timeouts long enough that none passes while the 1,520 connections below are opened on a
    # busy machine (a slowloris connection closed early frees a place under the cap, and the
    # refusals counted at the end would fall short), short enough to wait for.
    server = Server(tmp_path / "data", ["--header-timeout-secs", "8", "--body-timeout-secs", "8"]).start()
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    held = []
    try:
        t = server.tenant("acme")
        # A slowloris from one address: 1,000 connections that never finish their headers.
        for _ in range(1000):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect((host, int(port)))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(s)
        # 520 slow bodies from eight addresses, each under the per-address cap: they used
        # to hold every request slot (512).
        for i in range(520):
            s = socket.socket()
            s.bind((f"127.0.0.{3 + i % 8}", 0))
            s.connect((host, int(port)))
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AWSCognitoIdentityService.GetId\r\nContent-Length: 1000\r\n\r\n{")
            held.append(s)
        started = time.monotonic()
        identity, user = t.identity()
        sync(user, t.pool, identity, "game", [put("k", "v")])
        assert records(user, t.pool, identity, "game")[0] == {"k": ("v", 1)}
        assert time.monotonic() - started < 10
        # Every held connection is closed by the server once its timeout passes.
        deadline = time.monotonic() + 30
        open_ = list(held)
        while open_ and time.monotonic() < deadline:
            still = []
            for s in open_:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    while s.recv(4096):
                        pass
                except (TimeoutError, socket.timeout):
                    still.append(s)
                except OSError:
                    pass
            open_ = still
        assert not open_, f"{len(open_)} slow connections still open after their timeouts"
        metrics = urllib.request.urlopen(server.url + "/metrics").read().decode()
        refused = int(metrics.split("\nsynctrig_refused_connections_total ")[1].split()[0])
        assert refused >= 1000 - 128, "connections past the per-address cap are closed at once"
    finally:
        for s in held:
            s.close()
        server.stop()


def test_large_bodies_are_bounded_per_address(server):
    """Eight 4 MiB bodies from one address may be in flight; a ninth is refused at once,
    while another address and small requests go on."""
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    held = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.bind(("127.0.0.5", 0))
            s.connect((host, int(port)))
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AWSCognitoIdentityService.GetId\r\nContent-Length: 4194304\r\n\r\n{")
            held.append(s)
        time.sleep(0.5)
        s = socket.socket()
        s.bind(("127.0.0.5", 0))
        s.connect((host, int(port)))
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AWSCognitoIdentityService.GetId\r\nContent-Length: 4194304\r\n\r\n{")
        answer = s.recv(4096).decode()
        s.close()
        # A Cognito Identity call, so in its protocol: 400, the error's name in the header
        # and body (the SDKs retry it by that name), and JSON 1.1's content type.
        assert answer.startswith("HTTP/1.1 400") and "this address" in answer, answer
        assert "x-amzn-errortype: TooManyRequestsException" in answer and "application/x-amz-json-1.1" in answer, answer
        t = server.tenant("acme")
        identity, user = t.identity()
        sync(user, t.pool, identity, "game", [put("k", "v")])
    finally:
        for s in held:
            s.close()


def test_a_large_body_needs_a_content_length(server):
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    s = socket.create_connection((host, int(port)))
    chunk = b"x" * (20 << 10)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AWSCognitoIdentityService.GetId\r\nTransfer-Encoding: chunked\r\n\r\n"
              + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n")
    answer = s.recv(4096).decode()
    s.close()
    assert answer.startswith("HTTP/1.1 400") and "needs a Content-Length" in answer, answer


# 6. Credential minting is rate-limited per client address and per pool.
def test_credential_minting_is_rate_limited(tmp_path):
    server = Server(tmp_path / "data", ["--identity-rate-per-client", "20", "--identity-rate-per-pool", "1000"]).start()
    try:
        t = server.tenant("acme")
        ident = server.client("cognito-identity", "u", "u")
        outcomes, started = [], time.monotonic()
        for _ in range(300):
            try:
                ident.get_id(IdentityPoolId=t.pool)
                outcomes.append("ok")
            except ClientError as e:
                outcomes.append(e.response["Error"]["Code"])
        assert set(outcomes) == {"ok", "TooManyRequestsException"}
        # A burst of five seconds' worth, then 20 a second.
        allowed = 100 + 20 * (time.monotonic() - started) + 1
        assert outcomes[:100] == ["ok"] * 100 and outcomes.count("ok") <= allowed, outcomes.count("ok")
    finally:
        server.stop()
    server = Server(tmp_path / "data2", ["--identity-rate-per-client", "1000", "--identity-rate-per-pool", "2"]).start()
    try:
        t = server.tenant("acme")
        ident = server.client("cognito-identity", "u", "u")
        with pytest.raises(ClientError) as e:
            for _ in range(50):
                ident.get_id(IdentityPoolId=t.pool)
        code, status, message = error_of(e)
        assert (code, status) == ("TooManyRequestsException", 400) and "identity pool" in message
    finally:
        server.stop()


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(tmp_path):
    server = Server(tmp_path / "data", ["--trusted-proxy", "127.0.0.1", "--identity-rate-per-client", "1"]).start()
    try:
        t = server.tenant("acme")
        body = json.dumps({"IdentityPoolId": t.pool}).encode()

        def get_id(forwarded):
            headers = [("X-Amz-Target", "AWSCognitoIdentityService.GetId"), ("Content-Type", "application/x-amz-json-1.1"),
                       ("X-Forwarded-For", forwarded)]
            return send(server, "POST", "/", headers, body)[0]

        # A burst of 5 for the first client (the last address is the one the proxy added) ...
        assert [get_id("6.6.6.6, 10.0.0.1") for _ in range(6)] == [200] * 5 + [400]  # TooManyRequestsException
        # ... and another client behind the same proxy has its own allowance.
        assert get_id("10.0.0.2") == 200
    finally:
        server.stop()


# 7. Secrets on disk are private.
def test_the_data_dir_and_database_are_private(server):
    server.tenant("acme")
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(server.data_dir) == 0o700
    # On PostgreSQL the secrets are the database's to keep; the data dir holds the cache.
    if BACKEND == "sqlite":
        for name in ("synctrig.db", "synctrig.db-wal"):
            assert mode(server.data_dir / name) == 0o600, name


# 8. Bad input that used to be accepted.
def test_device_dates_are_range_checked_and_keep_milliseconds(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    token = t.dev.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["SyncSessionToken"]
    patch = dict(put("k", "v"), DeviceLastModifiedDate=1e300)
    body = json.dumps({"SyncSessionToken": token, "RecordPatches": [patch]}).encode()
    target, headers, _ = sign(server, "POST", dataset_path(t.pool, identity, "game"), body=body, creds=dev_creds(t))
    status, _, answer = send(server, "POST", target, headers, body)
    assert status == 400 and answer["__type"] == "InvalidParameterException" and "DeviceLastModifiedDate" in answer["message"]
    patch["DeviceLastModifiedDate"] = 1795810224.455
    body = json.dumps({"SyncSessionToken": token, "RecordPatches": [patch]}).encode()
    target, headers, _ = sign(server, "POST", dataset_path(t.pool, identity, "game"), body=body, creds=dev_creds(t))
    status, _, answer = send(server, "POST", target, headers, body)
    assert status == 200 and answer["Records"][0]["DeviceLastModifiedDate"] == 1795810224.455
    listed = t.dev.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["Records"][0]
    assert listed["DeviceLastModifiedDate"].timestamp() == pytest.approx(1795810224.455, abs=1e-6)


def test_nul_in_a_record_is_refused_and_changes_nothing(server):
    # PostgreSQL's text cannot hold U+0000: refused on either backend, so that every
    # dataset can move between them.
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put("k", "v")])
    for patch in (put("k", "a\u0000b", 1), put("k\u0000", "v")):
        with pytest.raises(ClientError) as e:
            sync(user, t.pool, identity, "game", [patch])
        code, status, message = error_of(e)
        assert (code, status) == ("InvalidParameterException", 400) and "U+0000" in message, message
    assert records(user, t.pool, identity, "game")[0] == {"k": ("v", 1)}


def test_a_pool_with_a_bad_region_is_refused(server):
    out = subprocess.run(
        [str(BIN), "admin", "--data-dir", str(server.data_dir), "create-pool", "--tenant", "x", "--name", "p", "--region", "bad/region"],
        capture_output=True, text=True, env=env_for(server.data_dir),
    )
    assert out.returncode == 2 and "bad/region" in out.stderr and "region name" in out.stderr


# 9. The per-identity dataset limit holds under concurrent creators.
def test_concurrent_creators_cannot_pass_the_dataset_limit(server):
    t = server.tenant("acme")
    identity, _ = t.identity()
    for i in range(18):
        sync(t.dev, t.pool, identity, f"ds{i}", [put("k", "v")])
    clients = [server.client("cognito-sync", t.key, t.secret) for _ in range(6)]
    tokens = [c.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName=f"new{i}")["SyncSessionToken"] for i, c in enumerate(clients)]
    barrier = threading.Barrier(len(clients))
    outcomes = [None] * len(clients)

    def create(i):
        barrier.wait()
        try:
            clients[i].update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName=f"new{i}", SyncSessionToken=tokens[i], RecordPatches=[put("k", "v")])
            outcomes[i] = "ok"
        except ClientError as e:
            outcomes[i] = e.response["Error"]["Code"]

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(clients))]
    [th.start() for th in threads]
    [th.join() for th in threads]
    assert sorted(outcomes) == ["LimitExceededException"] * 4 + ["ok"] * 2, outcomes
    usage = t.dev.describe_identity_usage(IdentityPoolId=t.pool, IdentityId=identity)["IdentityUsage"]
    assert usage["DatasetCount"] == 20


# 10. A paged listing plus the next incremental sync returns every record as stored.
def test_paging_never_skips_a_record(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put(f"k{i:02}", "v") for i in range(30)])
    seen, token, listing = {}, None, None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = user.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game", MaxResults=10, **kwargs)
        assert page["DatasetSyncCount"] == 1 and page["SyncSessionToken"]
        seen.update({r["Key"]: (r["Value"], r["SyncCount"]) for r in page["Records"]})
        if token is None:
            # Another device changes k00 (already returned) between pages.
            sync(t.dev, t.pool, identity, "game", [put("k00", "changed", 1)])
        token, listing = page.get("NextToken"), page
        if not token:
            break
    assert set(seen) == {f"k{i:02}" for i in range(30)}, "no record skipped"
    since, _ = records(user, t.pool, identity, "game", last=listing["DatasetSyncCount"])
    assert since == {"k00": ("changed", 2)}


# 11. ListRecords is one snapshot.
def test_a_listing_never_shows_a_record_past_its_dataset_sync_count(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put(f"k{i}", "0") for i in range(20)])
    stop = threading.Event()

    def writer():
        writer_client = server.client("cognito-sync", t.key, t.secret)
        n = 1
        while not stop.is_set():
            listing = writer_client.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")
            counts = {r["Key"]: r["SyncCount"] for r in listing["Records"]}
            writer_client.update_records(
                IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game", SyncSessionToken=listing["SyncSessionToken"],
                RecordPatches=[put(f"k{i}", str(n), counts[f"k{i}"]) for i in range(20)],
            )
            n += 1

    th = threading.Thread(target=writer)
    th.start()
    try:
        for _ in range(600):
            listing = user.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")
            assert max(r["SyncCount"] for r in listing["Records"]) <= listing["DatasetSyncCount"]
            assert len({r["Value"] for r in listing["Records"]}) == 1, "one update's records, all or none"
    finally:
        stop.set()
        th.join()


# 12 and 13. Deletion is reported to exactly the devices that synced before it.
def test_deletion_is_reported_only_to_devices_that_synced_before_it(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put("a", "1")])  # device D synced at 1
    user.delete_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")  # 2
    fresh, listing = records(user, t.pool, identity, "game", last=0)
    assert (fresh, listing["DatasetDeletedAfterRequestedSyncCount"], listing["DatasetExists"]) == ({}, False, False)
    # A fresh device can recreate the dataset.
    sync(user, t.pool, identity, "game", [put("b", "2")])  # 3
    stale, listing = records(user, t.pool, identity, "game", last=1)
    assert listing["DatasetDeletedAfterRequestedSyncCount"] is True, "D is told even after recreation"
    assert stale == {"b": ("2", 3)} and listing["DatasetExists"] is True
    current, listing = records(user, t.pool, identity, "game", last=3)
    assert (current, listing["DatasetDeletedAfterRequestedSyncCount"]) == ({}, False)
    assert records(user, t.pool, identity, "game", last=0)[1]["DatasetDeletedAfterRequestedSyncCount"] is False


# 14. A push on a stale session is refused; no increment is lost; retries are safe.
def test_a_push_on_a_stale_session_is_a_409(server):
    t = server.tenant("acme")
    identity, d = t.identity()
    c = server.client("cognito-sync", t.key, t.secret)
    sync(d, t.pool, identity, "game", [put("n", "5")])  # 1
    d_token = d.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["SyncSessionToken"]
    sync(c, t.pool, identity, "game", [put("x", "from C")])  # 2
    with pytest.raises(ClientError) as e:
        d.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game", SyncSessionToken=d_token, RecordPatches=[put("y", "from D")])
    code, status, message = error_of(e)
    assert (code, status) == ("ResourceConflictException", 409) and "ListRecords" in message
    # Two clients read n=5 at SyncCount 1 and both write 6: one increment, one 409.
    tokens = [cl.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["SyncSessionToken"] for cl in (c, d)]
    c.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game", SyncSessionToken=tokens[0], RecordPatches=[put("n", "6", 1)])
    with pytest.raises(ClientError) as e:
        d.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game", SyncSessionToken=tokens[1], RecordPatches=[put("n", "6", 1)])
    assert error_of(e)[:2] == ("ResourceConflictException", 409)


def test_a_retried_update_gets_the_first_answer_and_writes_nothing(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    token = user.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["SyncSessionToken"]
    request = dict(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game", SyncSessionToken=token, RecordPatches=[put("n", "1")])
    first = user.update_records(**request)["Records"]
    again = user.update_records(**request)["Records"]
    assert again == first and first[0]["SyncCount"] == 1
    assert records(user, t.pool, identity, "game")[1]["DatasetSyncCount"] == 1
    with pytest.raises(ClientError) as e:
        user.update_records(**dict(request, RecordPatches=[put("n", "2")]))
    assert error_of(e)[:2] == ("ResourceConflictException", 409), "the same token with other patches"


# 16. Every answer carries a request id.
def test_every_answer_has_a_request_id(server):
    t = server.tenant("acme")
    ok = t.dev.list_identity_pool_usage()["ResponseMetadata"]["RequestId"]
    with pytest.raises(ClientError) as e:
        t.dev.describe_identity_pool_usage(IdentityPoolId="us-east-1:00000000-0000-0000-0000-000000000000")
    failed = e.value.response["ResponseMetadata"]["RequestId"]
    ident = server.client("cognito-identity", "u", "u").get_id(IdentityPoolId=t.pool)["ResponseMetadata"]["RequestId"]
    assert len({ok, failed, ident}) == 3 and all(len(i) == 36 for i in (ok, failed, ident))


# 17. CORS for configured origins only.
def test_cors_preflights_for_configured_origins(tmp_path):
    server = Server(tmp_path / "data", ["--cors-origin", "https://app.example"]).start()
    try:
        preflight = [("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"),
                     ("Access-Control-Request-Headers", "authorization,x-amz-date,x-amz-security-token,content-type")]
        status, headers, _ = send(server, "OPTIONS", "/identitypools/x/identities/y/datasets/z", preflight)
        headers = {k.lower(): v for k, v in headers.items()}
        assert status == 200 and headers["access-control-allow-origin"] == "https://app.example"
        assert len(headers["x-amzn-requestid"]) == 36, "the preflight has a request id too"
        assert "x-amz-security-token" in headers["access-control-allow-headers"]
        assert "POST" in headers["access-control-allow-methods"]
        status, headers, _ = send(server, "GET", "/identitypools", [("Origin", "https://app.example")])
        headers = {k.lower(): v for k, v in headers.items()}
        assert status == 403 and headers["access-control-allow-origin"] == "https://app.example"
        assert "x-amzn-requestid" in headers["access-control-expose-headers"].lower()
        status, headers, _ = send(server, "GET", "/identitypools", [("Origin", "https://evil.example")])
        assert "access-control-allow-origin" not in {k.lower() for k in headers}
    finally:
        server.stop()


def test_no_cors_by_default(server):
    status, headers, _ = send(server, "GET", "/identitypools", [("Origin", "https://app.example")])
    assert "access-control-allow-origin" not in {k.lower() for k in headers}


# 18. Dataset names `.` and `..` (valid in the model) with the SDKs' path normalisation.
def test_dot_segment_dataset_names(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    out = sync(user, t.pool, identity, "..", [put("k", "dotdot")])
    assert out["Records"][0]["Value"] == "dotdot"
    assert records(user, t.pool, identity, "..")[0] == {"k": ("dotdot", 1)}
    user.delete_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="..")
    # Where the path SigV4 signs (dot segments removed) would name another operation or
    # dataset, the request is refused rather than guessed: ListRecords of "." is signed as
    # DescribeDataset of "records", DescribeDataset of ".." as DescribeIdentityUsage.
    for call in (
        lambda: user.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="."),
        lambda: user.describe_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName=".."),
        lambda: user.describe_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="."),
    ):
        with pytest.raises(ClientError) as e:
            call()
        code, status, message = error_of(e)
        assert (code, status) == ("InvalidParameterException", 400) and "cannot be told apart" in message


def test_a_signature_cannot_be_moved_by_dot_segments(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(t.dev, t.pool, identity, "records", [put("meta", "only")])
    base = f"/identitypools/{enc(t.pool)}/identities/{enc(identity)}/datasets"
    target, headers, _ = sign(server, "GET", f"{base}/records", creds=dev_creds(t))
    status, _, body = send(server, "GET", target, headers)
    assert status == 200 and body["Dataset"]["DatasetName"] == "records"
    # The same signature on ListRecords of ".": verified (same canonical path), refused.
    status, _, body = send(server, "GET", f"{base}/./records", headers)
    assert (status, body["__type"]) == (400, "InvalidParameterException") and "cannot be told apart" in body["message"]


def test_dot_segment_dataset_names_with_the_aws_cli(server):
    t = server.tenant("acme")
    identity, _ = t.identity()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=t.key, AWS_SECRET_ACCESS_KEY=t.secret, AWS_DEFAULT_REGION="us-east-1")
    env.pop("AWS_SESSION_TOKEN", None)
    cli = [sys.executable, "-m", "awscli", "cognito-sync", "--endpoint-url", server.url, "--output", "json"]
    ids = ["--identity-pool-id", t.pool, "--identity-id", identity, "--dataset-name", ".."]
    listed = subprocess.run(cli + ["list-records", *ids], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    token = json.loads(listed.stdout)["SyncSessionToken"]
    patches = json.dumps([put("k", "..")])
    updated = subprocess.run(cli + ["update-records", *ids, "--sync-session-token", token, "--record-patches", patches], capture_output=True, text=True, env=env)
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["Records"][0]["Value"] == ".."


# 19. A patched key that ends up absent is answered as a tombstone, as ListRecords shows it.
def test_a_patched_key_removed_by_the_trigger_is_answered_as_a_tombstone(server):
    t = server.tenant("acme", trigger="sample_trigger")
    identity, user = t.identity()
    out = sync(user, t.pool, identity, "game", [put("SampleKey2", "never stored")])
    answered = {r["Key"]: r for r in out["Records"]}
    tomb = answered["SampleKey2"]
    assert "Value" not in tomb and tomb["SyncCount"] == 1 and tomb["LastModifiedDate"] and tomb["LastModifiedBy"] == identity
    listed = {r["Key"]: r for r in user.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["Records"]}
    assert listed["SampleKey2"] == tomb
    assert answered["SampleKey3"]["Value"] == "ModifyValue3"


# 20. Absent members are omitted; every operation answers under its own name.
def test_absent_members_are_omitted_and_errors_name_their_operation(server):
    t = server.tenant("acme")
    identity, _ = t.identity()
    target, headers, _ = sign(server, "GET", f"/identitypools/{enc(t.pool)}", creds=dev_creds(t))
    status, _, body = send(server, "GET", target, headers)
    assert status == 200 and "LastModifiedDate" not in body["IdentityPoolUsage"], body
    target, headers, _ = sign(server, "GET", f"/identitypools/{enc(t.pool)}/identities/{enc(identity)}", creds=dev_creds(t))
    status, _, body = send(server, "GET", target, headers)
    assert status == 200 and "LastModifiedDate" not in body["IdentityUsage"], body
    # Without a broker: push sync is not configured; nothing was bulk published.
    calls = {
        "SubscribeToDataset": lambda: t.dev.subscribe_to_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d", DeviceId="dev"),
        "UnsubscribeFromDataset": lambda: t.dev.unsubscribe_from_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d", DeviceId="dev"),
        "RegisterDevice": lambda: t.dev.register_device(IdentityPoolId=t.pool, IdentityId=identity, Platform="GCM", Token="x"),
    }
    for name, call in calls.items():
        with pytest.raises(ClientError) as e:
            call()
        code, status, message = error_of(e)
        assert (code, status) == ("InvalidConfigurationException", 400), (name, code, status, message)
        assert "push sync is not configured" in message, (name, message)
    details = t.dev.get_bulk_publish_details(IdentityPoolId=t.pool)
    assert details["BulkPublishStatus"] == "NOT_STARTED" and "BulkPublishStartTime" not in details, details
    config = t.dev.get_identity_pool_configuration(IdentityPoolId=t.pool)
    assert config["IdentityPoolId"] == t.pool and "PushSync" not in config
    ident = server.client("cognito-identity", "u", "u")
    with pytest.raises(ClientError) as e:
        ident.get_identity_pool_roles(IdentityPoolId=t.pool)
    code, status, message = error_of(e)
    assert (code, status) == ("InvalidParameterException", 400) and message.startswith("GetIdentityPoolRoles is not supported")
    status, _, body = send(server, "POST", "/", [("X-Amz-Target", "AWSCognitoIdentityService.Nope"), ("Content-Type", "application/x-amz-json-1.1")], b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
