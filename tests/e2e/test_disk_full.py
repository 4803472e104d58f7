"""A full disk under the embedded database (SQLite): `serve` still starts, serves reads, and
refuses writes with a clear, retryable error until space returns; no acknowledged write is
lost. The data dir is on a small tmpfs this test mounts (it needs root, as CI runs)."""

import os
import signal
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import BACKEND, Server, records, sync

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="the embedded database's disk; PostgreSQL's is its server's")

STORAGE_FULL = "storage is full"


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk, name="filler"):
    """Fills the file system to its last byte; the filler's path."""
    filler = disk / name
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0")
        except OSError:
            pass
    st = os.statvfs(disk)
    assert st.f_bavail == 0, "the disk is full"
    return filler


def retrying(server, key, secret, token):
    """A client as apps configure it: the SDK's standard retries."""
    return boto3.client(
        "cognito-sync", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
        aws_session_token=token, config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def test_a_full_disk_refuses_writes_serves_reads_and_recovers(small_disk):
    server = Server(small_disk / "data").start()
    try:
        t = server.tenant("acme")
        identity, user = t.identity()
        sync(user, t.pool, identity, "game", [put("k", "v")])
        creds = user._request_signer._credentials
        device = retrying(server, creds.access_key, creds.secret_key, creds.token)

        # The disk fills while the server runs.
        filler = fill(small_disk)
        token = device.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game")["SyncSessionToken"]
        with pytest.raises(ClientError) as e:
            device.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="game", SyncSessionToken=token, RecordPatches=[put("k", "lost", 1)])
        err = e.value.response
        assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("InternalErrorException", 500)
        assert STORAGE_FULL in err["Error"]["Message"] and "nothing was changed" in err["Error"]["Message"]
        assert err["ResponseMetadata"]["RetryAttempts"] == 2, "the SDK takes it as retryable"
        assert records(device, t.pool, identity, "game")[0] == {"k": ("v", 1)}

        # Stopped and started again while the disk is full: it starts and serves reads.
        port = int(server.url.rsplit(":", 1)[1])
        assert server.stop() == 0
        server.start(port)
        # The stop emptied the database's log (a checkpoint), which gave its space back:
        # the disk is filled again.
        refill = fill(small_disk, "filler-2")
        assert records(device, t.pool, identity, "game")[0] == {"k": ("v", 1)}
        assert [d["DatasetName"] for d in t.dev.list_datasets(IdentityPoolId=t.pool, IdentityId=identity)["Datasets"]] == ["game"]
        # What must write is refused with the same words: an update, a new identity's credentials.
        with pytest.raises(ClientError) as e:
            sync(device, t.pool, identity, "game", [put("k2", "v2")])
        assert STORAGE_FULL in e.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as e:
            t.identity()
        assert STORAGE_FULL in e.value.response["Error"]["Message"]

        # Space returns: writes work again without a restart, and nothing was lost.
        filler.unlink()
        refill.unlink()
        out = sync(device, t.pool, identity, "game", [put("k", "after", 1), put("k2", "v2")])
        assert sorted((r["Key"], r["Value"], r["SyncCount"]) for r in out["Records"]) == [("k", "after", 2), ("k2", "v2", 2)]
        assert t.identity()[0]
        assert server.stop(signal.SIGKILL) is not None
        server.start(port)
        assert records(device, t.pool, identity, "game")[0] == {"k": ("after", 2), "k2": ("v2", 2)}
    finally:
        server.stop(signal.SIGKILL)
