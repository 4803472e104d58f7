"""The Cognito Sync API through boto3 against the real server."""

import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from conftest import ROOT_KEY, ROOT_SECRET, Server, invocations, records, sync


def error_of(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def test_identity_flow_with_a_trigger_that_modifies_removes_and_adds(server):
    t = server.tenant("acme", trigger="sample_trigger")
    identity, user = t.identity()
    # Store SampleKey2 first with developer credentials (which skip the trigger).
    sync(t.dev, t.pool, identity, "game", [put("SampleKey2", "stored2")])
    out = sync(user, t.pool, identity, "game", [put("SampleKey1", "newValue1"), put("Other", "x")])
    got = {r["Key"]: (r.get("Value"), r["SyncCount"]) for r in out["Records"]}
    assert got == {
        "SampleKey1": ("ModifyValue1", 2),
        "SampleKey2": (None, 2),
        "SampleKey3": ("ModifyValue3", 2),
        "Other": ("x", 2),
    }
    now, listing = records(user, t.pool, identity, "game")
    assert now == got
    assert listing["DatasetSyncCount"] == 2 and listing["DatasetExists"] is True
    ds = user.describe_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["Dataset"]
    assert ds["NumRecords"] == 3
    assert ds["DataStorage"] == len("SampleKey1ModifyValue1SampleKey3ModifyValue3Otherx")
    # The developer can read the invocation log.
    logs = invocations(t, "trigger")
    assert logs[0]["outcome"] == "ok" and "SyncTrigger for" in logs[0]["log"] and logs[0]["fuel"] > 0
    # And with `admin invocations` (another process: the server writes the rows within 100 ms).
    deadline = time.monotonic() + 10
    while not (listed := server.admin("invocations", "--tenant", "acme", "--name", "trigger")["invocations"]):
        assert time.monotonic() < deadline, "the invocation row was never written"
        time.sleep(0.05)
    assert listed[0] == logs[0]


def test_developer_credentials_skip_the_trigger(server):
    t = server.tenant("acme", trigger="sample_trigger")
    identity, _ = t.identity()
    out = sync(t.dev, t.pool, identity, "game", [put("SampleKey1", "mine")])
    assert [(r["Key"], r["Value"]) for r in out["Records"]] == [("SampleKey1", "mine")]
    assert invocations(t, "trigger") == []


def test_a_stale_sync_count_is_always_a_409(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put("k", "v1")])
    with pytest.raises(ClientError) as e:
        sync(user, t.pool, identity, "game", [put("k", "v2", count=0)])
    assert error_of(e) == ("ResourceConflictException", 409, "Current SyncCount for: k is: 1 not: 0")
    # Even re-sending the stored value: a second writer must learn its base is stale.
    with pytest.raises(ClientError) as e:
        sync(user, t.pool, identity, "game", [put("k", "v1", count=0)])
    assert error_of(e) == ("ResourceConflictException", 409, "Current SyncCount for: k is: 1 not: 0")
    sync(user, t.pool, identity, "game", [put("k", "v2", count=1)])
    assert records(user, t.pool, identity, "game")[0] == {"k": ("v2", 2)}


def test_bad_signature_and_bad_credentials_are_403_and_touch_nothing(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put("k", "v")])
    bad = server.client("cognito-sync", t.key, "not-the-secret")
    with pytest.raises(ClientError) as e:
        sync(bad, t.pool, identity, "game", [put("k", "evil", 1)])
    code, status, message = error_of(e)
    assert (code, status) == ("NotAuthorizedException", 403) and "signature" in message
    unknown = server.client("cognito-sync", "AKIANOBODY", "x")
    with pytest.raises(ClientError) as e:
        unknown.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)
    # Temporary credentials without their session token.
    ident = server.client("cognito-identity", "u", "u")
    c = ident.get_credentials_for_identity(IdentityId=identity)["Credentials"]
    tokenless = server.client("cognito-sync", c["AccessKeyId"], c["SecretKey"])
    with pytest.raises(ClientError) as e:
        tokenless.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)
    assert records(user, t.pool, identity, "game")[0] == {"k": ("v", 1)}


def test_clock_skew_over_15_minutes_is_refused(server, monkeypatch):
    t = server.tenant("acme")
    import botocore.auth

    real = botocore.auth.datetime.datetime
    class Skewed(real):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) - __import__("datetime").timedelta(minutes=16)
        @classmethod
        def utcnow(cls):
            return real.utcnow() - __import__("datetime").timedelta(minutes=16)
    monkeypatch.setattr(botocore.auth.datetime, "datetime", Skewed)
    with pytest.raises(ClientError) as e:
        t.dev.list_identity_pool_usage()
    code, status, message = error_of(e)
    assert (code, status) == ("NotAuthorizedException", 403) and "15 minutes" in message


def test_tenant_a_cannot_reach_tenant_b(server):
    a = server.tenant("alpha")
    b = server.tenant("beta")
    b_identity, b_user = b.identity()
    sync(b_user, b.pool, b_identity, "secret", [put("k", "b's data")])
    a_identity, a_user = a.identity()
    for client in (a.dev, a_user):
        with pytest.raises(ClientError) as e:
            client.list_records(IdentityPoolId=b.pool, IdentityId=b_identity, DatasetName="secret")
        assert error_of(e)[:2] == ("NotAuthorizedException", 403)
        with pytest.raises(ClientError) as e:
            client.describe_identity_pool_usage(IdentityPoolId=b.pool)
        assert error_of(e)[:2] == ("NotAuthorizedException", 403)
    # An identity cannot read another identity of its own pool either.
    other_identity, _ = a.identity()
    with pytest.raises(ClientError) as e:
        a_user.list_records(IdentityPoolId=a.pool, IdentityId=other_identity, DatasetName="x")
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)
    assert [p["IdentityPoolId"] for p in a.dev.list_identity_pool_usage()["IdentityPoolUsages"]] == [a.pool]
    root = server.client("cognito-sync", ROOT_KEY, ROOT_SECRET)
    assert len(root.list_identity_pool_usage()["IdentityPoolUsages"]) == 2


def test_limits(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    with pytest.raises(ClientError) as e:
        user.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="bad/name")
    assert error_of(e)[:2] == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as e:
        sync(user, t.pool, identity, "game", [put("k" * 1025, "v")])
    assert error_of(e)[:2] == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as e:
        sync(user, t.pool, identity, "game", [put("k", "v" * 1_048_576)])
    assert error_of(e)[:2] == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as e:
        sync(user, t.pool, identity, "game", [put(f"k{i}", "v") for i in range(1025)])
    code, status, message = error_of(e)
    assert (code, status) == ("LimitExceededException", 400) and "1025 records" in message
    for i in range(20):
        sync(user, t.pool, identity, f"ds{i}", [put("k", "v")])
    with pytest.raises(ClientError) as e:
        sync(user, t.pool, identity, "ds20", [put("k", "v")])
    assert error_of(e)[:2] == ("LimitExceededException", 400)
    usage = user.describe_identity_usage(IdentityPoolId=t.pool, IdentityId=identity)["IdentityUsage"]
    assert usage["DatasetCount"] == 20 and usage["DataStorage"] == 40
    with pytest.raises(ClientError) as e:
        user.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="ds0", SyncSessionToken="forged.00", RecordPatches=[])
    assert error_of(e)[:2] == ("InvalidParameterException", 400)


def test_timing_out_trigger_leaves_the_dataset_unchanged(tmp_path):
    server = Server(tmp_path / "data", ["--deadline-ms", "300", "--no-fuel"]).start()
    try:
        t = server.tenant("acme", trigger="infinite_loop")
        identity, user = t.identity()
        sync(t.dev, t.pool, identity, "game", [put("k", "v")])
        before = records(user, t.pool, identity, "game")
        with pytest.raises(ClientError) as e:
            sync(user, t.pool, identity, "game", [put("k", "changed", 1), put("new", "x")])
        code, status, message = error_of(e)
        assert (code, status) == ("LambdaSocketTimeoutException", 400) and "300 ms" in message
        after = records(user, t.pool, identity, "game")
        assert after[0] == before[0] and after[1]["DatasetSyncCount"] == before[1]["DatasetSyncCount"]
        assert invocations(t, "trigger")[0]["outcome"] == "timeout"
    finally:
        server.stop(signal.SIGKILL)


@pytest.mark.parametrize("guest,code", [("tamper_identity", "InvalidLambdaFunctionOutputException"), ("too_many_records", "InvalidLambdaFunctionOutputException"), ("reject", "InvalidParameterException")])
def test_failing_triggers_change_nothing(server, guest, code):
    t = server.tenant("acme", trigger=guest)
    identity, user = t.identity()
    sync(t.dev, t.pool, identity, "game", [put("k", "v")])
    with pytest.raises(ClientError) as e:
        sync(user, t.pool, identity, "game", [put("k", "changed", 1)])
    assert error_of(e)[:2] == (code, 400)
    assert records(user, t.pool, identity, "game")[0] == {"k": ("v", 1)}


def test_data_survives_restart_and_kill_9(tmp_path):
    server = Server(tmp_path / "data").start()
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put("a", "1")])
    assert server.stop(signal.SIGTERM) == 0  # graceful
    server.start()
    user = server.client("cognito-sync", t.key, t.secret)
    assert records(user, t.pool, identity, "game")[0] == {"a": ("1", 1)}
    sync(user, t.pool, identity, "game", [put("b", "2")])  # acknowledged ...
    server.stop(signal.SIGKILL)  # ... then killed without warning
    server.start()
    user = server.client("cognito-sync", t.key, t.secret)
    assert records(user, t.pool, identity, "game")[0] == {"a": ("1", 1), "b": ("2", 2)}
    server.stop(signal.SIGKILL)


def test_tombstones_deletion_and_incremental_sync(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put("a", "1"), put("b", "2")])
    sync(user, t.pool, identity, "game", [{"Op": "remove", "Key": "a", "SyncCount": 1}])
    since_1, listing = records(user, t.pool, identity, "game", last=1)
    assert since_1 == {"a": (None, 2)} and listing["DatasetSyncCount"] == 2
    user.delete_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")
    gone, listing = records(user, t.pool, identity, "game", last=2)
    assert gone == {} and listing["DatasetExists"] is False and listing["DatasetDeletedAfterRequestedSyncCount"] is True
    with pytest.raises(ClientError) as e:
        user.describe_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)


def test_events_unsupported_operations_and_metrics(server):
    t = server.tenant("acme", trigger="sample_trigger", trigger_name="sample")
    assert t.dev.get_cognito_events(IdentityPoolId=t.pool)["Events"] == {"SyncTrigger": "sample"}
    arn = "arn:aws:lambda:us-east-1:123456789012:function:sample:1"
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": arn})
    assert t.dev.get_cognito_events(IdentityPoolId=t.pool)["Events"] == {"SyncTrigger": arn}
    with pytest.raises(ClientError) as e:
        t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "missing"})
    assert error_of(e)[:2] == ("InvalidParameterException", 400)
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": ""})
    assert t.dev.get_cognito_events(IdentityPoolId=t.pool)["Events"] == {}
    with pytest.raises(ClientError) as e:
        t.dev.bulk_publish(IdentityPoolId=t.pool)
    code, _, message = error_of(e)
    assert code == "InvalidParameterException" and "--nats" in message, message
    identity, user = t.identity()
    with pytest.raises(ClientError) as e:
        user.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": ""})
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)
    metrics = urllib.request.urlopen(server.url + "/metrics").read().decode()
    assert 'synctrig_requests_total{operation="GetCognitoEvents",status="200"} 3' in metrics
    assert "synctrig_trigger_fuel_total" in metrics


def test_malformed_bodies_are_invalid_parameter(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    token = user.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["SyncSessionToken"]
    user.meta.events.register("before-sign.cognito-sync.UpdateRecords", lambda request, **_: setattr(request, "data", b'{"RecordPatches": 5, "SyncSessionToken": "' + token.encode() + b'"}'))
    with pytest.raises(ClientError) as e:
        user.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game", SyncSessionToken=token)
    code, status, message = error_of(e)
    assert (code, status) == ("InvalidParameterException", 400)
    assert message == "1 validation error detected: Value 5 at 'RecordPatches' failed to satisfy constraint: Member must be a list"
    assert records(user, t.pool, identity, "game")[1]["DatasetExists"] is False


def test_concurrent_updates_either_succeed_or_conflict(server):
    t = server.tenant("acme")
    identity, _ = t.identity()
    clients = [server.client("cognito-sync", t.key, t.secret) for _ in range(8)]
    tokens = [c.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="race")["SyncSessionToken"] for c in clients]
    start = threading.Barrier(len(clients))
    outcomes = [None] * len(clients)

    def update(i):
        start.wait()
        try:
            clients[i].update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="race", SyncSessionToken=tokens[i], RecordPatches=[put(f"k{i}", str(i))])
            outcomes[i] = "ok"
        except ClientError as e:
            outcomes[i] = e.response["Error"]["Code"]

    threads = [threading.Thread(target=update, args=(i,)) for i in range(len(clients))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert set(outcomes) <= {"ok", "ResourceConflictException"}, outcomes
    stored, listing = records(clients[0], t.pool, identity, "race")
    winners = {f"k{i}" for i, o in enumerate(outcomes) if o == "ok"}
    assert set(stored) == winners, "every acknowledged update is stored, and nothing else"
    assert listing["DatasetSyncCount"] == len(winners)


def test_developer_reads_invocations_over_http(server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    t = server.tenant("acme", trigger="sample_trigger")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put("SampleKey1", "x")])

    def get(key, secret, function):
        request = AWSRequest(method="GET", url=f"{server.url}/synctrig/functions/{function}/invocations")
        SigV4Auth(Credentials(key, secret), "cognito-sync", "us-east-1").add_auth(request)
        try:
            with urllib.request.urlopen(urllib.request.Request(request.url, headers=dict(request.headers))) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    status, body = get(t.key, t.secret, "trigger")
    assert status == 200 and body["Invocations"][0]["outcome"] == "ok"
    assert "SyncTrigger for" in body["Invocations"][0]["log"]
    other = server.tenant("other")
    status, body = get(other.key, other.secret, "trigger")
    assert status == 200 and body["Invocations"] == [], "another tenant sees only its own functions"
    status, body = get(t.key, "wrong", "trigger")
    assert status == 403 and body["__type"] == "NotAuthorizedException"


def test_deploy_refuses_components_outside_the_sandbox_and_keeps_versions(server):
    t = server.tenant("acme")
    import subprocess
    from conftest import BIN, env_for, guest

    out = subprocess.run(
        [str(BIN), "admin", "--data-dir", str(server.data_dir), "deploy", "--tenant", "acme", "--name", "f", "--wasm", str(guest("open_file"))],
        capture_output=True,
        text=True,
        env=env_for(server.data_dir),
    )
    assert out.returncode != 0
    assert "wasi:filesystem/types@0.2.6 (triggers have no file system)" in json.loads(out.stdout)["error"]
    assert t.deploy("identity", "f")["version"] == 1
    assert t.deploy("sample_trigger", "f")["version"] == 2
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "f:1"})
    identity, user = t.identity()
    out = sync(user, t.pool, identity, "game", [put("SampleKey1", "kept")])
    assert [(r["Key"], r["Value"]) for r in out["Records"]] == [("SampleKey1", "kept")], "version 1 (identity) ran"


def test_oversized_bodies_and_pagination(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    with pytest.raises(ClientError) as e:
        sync(user, t.pool, identity, "game", [put(f"k{i}", "v" * 900_000) for i in range(5)])
    assert error_of(e)[:2] == ("LimitExceededException", 400)
    sync(user, t.pool, identity, "game", [put(f"k{i:02}", "v") for i in range(25)])
    seen, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = user.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game", MaxResults=10, **kwargs)
        seen += [r["Key"] for r in page["Records"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"k{i:02}" for i in range(25)]


def test_root_credentials_are_generated_once_and_printed(tmp_path):
    import subprocess
    from conftest import BIN, env_for

    env = {k: v for k, v in env_for(tmp_path / "d").items() if not k.startswith("SYNCTRIG_ROOT")}
    outputs = []
    for _ in range(2):
        proc = subprocess.Popen([str(BIN), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        assert proc.stdout.readline().startswith("synctrig-wasm listening on http://")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        outputs.append(err)
    assert "generated root credentials" in outputs[0] and "secret access key:" in outputs[0]
    assert "generated root credentials" not in outputs[1]
