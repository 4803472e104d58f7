"""End-to-end fixtures: the real `synctrig-wasm serve` binary on 127.0.0.1:0, driven by
boto3's cognito-identity and cognito-sync clients with only endpoint_url changed.

`cargo test --workspace` must have run first: it builds target/debug/synctrig-wasm and
the guest components under target/wasm-guests."""

import json
import os
import signal
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SYNCTRIG_BIN", ROOT / "target" / "debug" / "synctrig-wasm"))
GUESTS = ROOT / "target" / "wasm-guests" / "wasm32-wasip2" / "release"
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})
ROOT_KEY, ROOT_SECRET = "AKIAROOTTEST", "root-secret-for-tests"


def guest(name):
    for path in (GUESTS / f"{name}.wasm", GUESTS / "examples" / f"{name}.wasm"):
        if path.exists():
            return path
    raise FileNotFoundError(f"no guest {name}; run `cargo test --workspace` first")


class Server:
    """One server process over one data dir; can be stopped, killed and restarted."""

    def __init__(self, data_dir, extra_args=()):
        assert BIN.exists(), f"{BIN} is missing; run `cargo test --workspace` first"
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.proc = None
        self.url = None

    def start(self, port=0):
        env = dict(os.environ, SYNCTRIG_ROOT_ACCESS_KEY_ID=ROOT_KEY, SYNCTRIG_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET)
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(self.data_dir), *self.extra_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert line.startswith("synctrig-wasm listening on http://"), (line, self.proc.stderr.read())
        self.url = line.split()[-1]
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        return self.proc.returncode

    def admin(self, *args):
        out = subprocess.run([str(BIN), "admin", "--data-dir", str(self.data_dir), *args], capture_output=True, text=True)
        result = json.loads(out.stdout)
        assert out.returncode == 0, result
        return result

    def tenant(self, name, trigger=None, trigger_name="trigger"):
        """A tenant with one pool (and optionally a trigger attached): a Tenant."""
        creds = self.admin("create-tenant", name)
        pool = self.admin("create-pool", "--tenant", name, "--name", f"{name}-pool")["identityPoolId"]
        t = Tenant(self, name, creds["accessKeyId"], creds["secretAccessKey"], pool)
        if trigger:
            t.deploy(trigger, trigger_name)
            t.dev.set_cognito_events(IdentityPoolId=pool, Events={"SyncTrigger": trigger_name})
        return t

    def client(self, service, key, secret, token=None, **kwargs):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=NO_RETRY,
            **kwargs,
        )


class Tenant:
    def __init__(self, server, name, key, secret, pool):
        self.server, self.name, self.key, self.secret, self.pool = server, name, key, secret, pool
        self.dev = server.client("cognito-sync", key, secret)

    def deploy(self, guest_name, function):
        return self.deploy_path(guest(guest_name), function)

    def deploy_path(self, path, function):
        return self.server.admin("deploy", "--tenant", self.name, "--name", function, "--wasm", str(path))

    def identity(self):
        """A new identity of this pool with its credentials: (identity id, cognito-sync client)."""
        ident = self.server.client("cognito-identity", "unused", "unused")
        identity_id = ident.get_id(IdentityPoolId=self.pool)["IdentityId"]
        c = ident.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
        return identity_id, self.server.client("cognito-sync", c["AccessKeyId"], c["SecretKey"], c["SessionToken"])


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop(signal.SIGKILL)


def sync(client, pool, identity, dataset, patches):
    """ListRecords for a session token, then UpdateRecords with `patches`."""
    token = client.list_records(IdentityPoolId=pool, IdentityId=identity, DatasetName=dataset)["SyncSessionToken"]
    return client.update_records(
        IdentityPoolId=pool, IdentityId=identity, DatasetName=dataset, SyncSessionToken=token, RecordPatches=patches
    )


def records(client, pool, identity, dataset, last=0):
    out = client.list_records(IdentityPoolId=pool, IdentityId=identity, DatasetName=dataset, LastSyncCount=last)
    return {r["Key"]: (r.get("Value"), r["SyncCount"]) for r in out["Records"]}, out
