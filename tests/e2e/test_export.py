"""`admin export` and `admin import`: an installation moves to a new data dir without losing a
record, and keeps working there; one pool moves to another tenant; a damaged stream changes
nothing."""

import json
import signal
import subprocess

from conftest import BIN, Server, env_for, records, sync


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def admin(data_dir, *args, stdin=None):
    return subprocess.run([str(BIN), "admin", "--data-dir", str(data_dir), *args], capture_output=True, input=stdin, env=env_for(data_dir))


def test_an_installation_moves_to_a_new_data_dir(tmp_path):
    old = Server(tmp_path / "old").start()
    try:
        t = old.tenant("acme", trigger="sample_trigger")
        identity, user = t.identity()
        sync(user, t.pool, identity, "game", [put("SampleKey1", "x"), put("level", "3")])
        user.delete_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")
        sync(user, t.pool, identity, "game", [put("after", "delete")])
        sync(user, t.pool, identity, "profile", [put("name", "Ada\né"), {"Op": "remove", "Key": "gone", "SyncCount": 0}])
        before = {name: records(t.dev, t.pool, identity, name) for name in ("game", "profile")}
        # Exported while serving.
        out = admin(old.data_dir, "export", "-o", str(tmp_path / "dump.jsonl"))
        assert out.returncode == 0, out
    finally:
        old.stop(signal.SIGKILL)
    stream = (tmp_path / "dump.jsonl").read_bytes()
    lines = [json.loads(line) for line in stream.splitlines()]
    assert lines[0]["format"] == "synctrig-export" and lines[-1] == {"type": "end", "rows": len(lines) - 2}
    assert any(line.get("type") == "functions" for line in lines)
    imported = admin(tmp_path / "new", "import", str(tmp_path / "dump.jsonl"))
    assert imported.returncode == 0, imported
    # The same bytes come out of the new store.
    again = admin(tmp_path / "new", "export")
    assert again.returncode == 0 and again.stdout == stream
    # And it serves: the tenant's keys, the pool, the trigger and every record came along.
    new = Server(tmp_path / "new").start()
    try:
        moved = new.client("cognito-sync", t.key, t.secret)
        for name, (got, listing) in before.items():
            now, now_listing = records(moved, t.pool, identity, name)
            assert now == got
            assert now_listing["DatasetSyncCount"] == listing["DatasetSyncCount"]
        ident = new.client("cognito-identity", "unused", "unused")
        c = ident.get_credentials_for_identity(IdentityId=identity)["Credentials"]
        device = new.client("cognito-sync", c["AccessKeyId"], c["SecretKey"], c["SessionToken"])
        out = sync(device, t.pool, identity, "fresh", [put("SampleKey1", "y")])
        assert {r["Key"]: r.get("Value") for r in out["Records"]}["SampleKey1"] == "ModifyValue1"
    finally:
        new.stop(signal.SIGKILL)
    # Not into a store that is in use.
    twice = admin(tmp_path / "new", "import", "-", stdin=stream)
    assert twice.returncode != 0 and b"empty store" in twice.stdout


def test_a_pool_moves_to_another_tenant_and_a_damaged_stream_changes_nothing(tmp_path, server):
    t = server.tenant("acme")
    identity, user = t.identity()
    sync(user, t.pool, identity, "d", [put("k", "v")])
    out = admin(server.data_dir, "export", "--pool", t.pool)
    assert out.returncode == 0, out
    stream = out.stdout
    target = Server(tmp_path / "target").start()
    try:
        creds = target.admin("create-tenant", "other")
        # Truncated, then with a row of an unknown table: refused, nothing written.
        for damaged in (stream[: len(stream) // 2], stream.replace(b'"type":"records"', b'"type":"sqlite_master"')):
            bad = admin(target.data_dir, "import", "-", "--tenant", "other", stdin=damaged)
            assert bad.returncode != 0, bad
        assert target.client("cognito-sync", creds["accessKeyId"], creds["secretAccessKey"]).list_identity_pool_usage()["IdentityPoolUsages"] == []
        good = admin(target.data_dir, "import", "-", "--tenant", "other", stdin=stream)
        assert good.returncode == 0, good
        assert json.loads(good.stdout)["imported"]["records"] == 1
        other = target.client("cognito-sync", creds["accessKeyId"], creds["secretAccessKey"])
        assert records(other, t.pool, identity, "d")[0] == {"k": ("v", 1)}
    finally:
        target.stop(signal.SIGKILL)


def test_a_tenant_exports_its_own_pool_with_its_developer_credentials(tmp_path, server):
    import urllib.parse
    from urllib.request import Request, urlopen

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from urllib.error import HTTPError

    t = server.tenant("acme")
    other = server.tenant("other")
    identity, user = t.identity()
    sync(user, t.pool, identity, "d", [put("k", "v")])

    def get(creds):
        path = f"/synctrig/identitypools/{urllib.parse.quote(t.pool, safe='')}/export"
        request = AWSRequest(method="GET", url=server.url + path)
        SigV4Auth(Credentials(*creds), "cognito-sync", "us-east-1").add_auth(request)
        try:
            with urlopen(Request(server.url + path, headers=dict(request.prepare().headers))) as response:
                return response.status, response.read()
        except HTTPError as e:
            return e.code, e.read()

    status, stream = get((t.key, t.secret, None))
    assert status == 200
    # The same stream the operator's `admin export --pool` writes.
    assert stream == admin(server.data_dir, "export", "--pool", t.pool).stdout
    assert json.loads(stream.splitlines()[-1])["type"] == "end"
    # Another tenant's developer cannot.
    status, body = get((other.key, other.secret, None))
    assert status == 403 and json.loads(body)["__type"] == "NotAuthorizedException"
