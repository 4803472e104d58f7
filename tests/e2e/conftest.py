"""End-to-end fixtures: the real `synctrig-wasm serve` binary on 127.0.0.1:0, driven by
boto3's cognito-identity and cognito-sync clients with only endpoint_url changed.

`cargo test --workspace` must have run first: it builds target/debug/synctrig-wasm and
the guest components under target/wasm-guests.

SYNCTRIG_E2E_BACKEND=postgres runs every server (and admin command) on its own fresh
database of the PostgreSQL server at SYNCTRIG_TEST_DATABASE_URL instead of SQLite in its
data dir; tests/run-all.sh runs the suite both ways."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import urllib.error
import urllib.request

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SYNCTRIG_BIN", ROOT / "target" / "debug" / "synctrig-wasm"))
GUESTS = ROOT / "target" / "wasm-guests" / "wasm32-wasip2" / "release"
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})
ROOT_KEY, ROOT_SECRET = "AKIAROOTTEST", "root-secret-for-tests"


BACKEND = os.environ.get("SYNCTRIG_E2E_BACKEND", "sqlite")
assert BACKEND in ("sqlite", "postgres"), BACKEND
_databases = {}


def new_database():
    """A fresh database on the test PostgreSQL server: its URL."""
    url = os.environ.get("SYNCTRIG_TEST_DATABASE_URL")
    assert url, "PostgreSQL tests need SYNCTRIG_TEST_DATABASE_URL (tests/run-all.sh starts a throwaway cluster)"
    name = "synctrig_e2e_" + secrets.token_hex(6)
    subprocess.run(["psql", url, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")


def share_database(url, *data_dirs):
    """Servers over these data dirs use the PostgreSQL database at `url` (several nodes)."""
    for d in data_dirs:
        _databases[str(d)] = url


def database_for(data_dir):
    """The PostgreSQL database of a data dir (made on first use on the postgres backend),
    or None for SQLite in the data dir."""
    key = str(data_dir)
    if key not in _databases and BACKEND == "postgres":
        _databases[key] = new_database()
    return _databases.get(key)


def env_for(data_dir, **extra):
    """The environment of a serve or admin process over `data_dir`."""
    env = dict(os.environ, **extra)
    env.pop("SYNCTRIG_DATABASE_URL", None)
    if (url := database_for(data_dir)) is not None:
        env["SYNCTRIG_DATABASE_URL"] = url
    return env


def psql(data_dir, sql):
    """Runs SQL on a data dir's PostgreSQL database."""
    # On stdin: a component's bytes in a statement pass the limit of a command line.
    return subprocess.run(
        ["psql", database_for(data_dir), "-qAt", "-v", "ON_ERROR_STOP=1"], input=sql, check=True, capture_output=True, text=True
    ).stdout


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
        env = env_for(self.data_dir, SYNCTRIG_ROOT_ACCESS_KEY_ID=ROOT_KEY, SYNCTRIG_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET)
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
        out = subprocess.run(
            [str(BIN), "admin", "--data-dir", str(self.data_dir), *args], capture_output=True, text=True, env=env_for(self.data_dir)
        )
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


class Broker:
    """A throwaway NATS server with JetStream (Debian's nats-server): its store in a temp
    dir, on a free port; can be stopped, killed and started again on the same port and store."""

    def __init__(self, directory):
        assert shutil.which("nats-server"), "the streams tests need nats-server (tests/install-system-packages.sh)"
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["nats-server", "-js", "-sd", str(self.dir / "store"), "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "server.log", "a"),
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                    if c.recv(4).startswith(b"INFO"):
                        return self
            except OSError:
                pass
            assert time.monotonic() < deadline and self.proc.poll() is None, (self.dir / "server.log").read_text()
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def count(self, stream):
        """How many messages the JetStream stream holds (0 when it does not exist)."""
        import asyncio

        import nats
        from nats.js.errors import NotFoundError

        async def read():
            nc = await nats.connect(self.url)
            try:
                return (await nc.jetstream().stream_info(stream)).state.messages
            except NotFoundError:
                return 0
            finally:
                await nc.close()

        return asyncio.run(read())

    def messages(self, stream):
        """Every message the JetStream stream holds, in its order: (subject, Nats-Msg-Id, JSON)."""
        import asyncio

        import nats
        from nats.js.errors import NotFoundError

        async def read():
            nc = await nats.connect(self.url)
            try:
                js = nc.jetstream()
                try:
                    info = await js.stream_info(stream)
                except NotFoundError:
                    return []
                out = []
                # A stream made but not yet written to reports sequences 0 to 0, and there is
                # no message 0 (asking for it is a bad request): polled at that moment, the
                # stream is empty.
                if info.state.messages == 0:
                    return out
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    m = await js.get_msg(stream, seq)
                    out.append((m.subject, (m.headers or {}).get("Nats-Msg-Id"), json.loads(m.data)))
                return out
            finally:
                await nc.close()

        return asyncio.run(read())


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "nats").start()
    yield b
    b.stop(signal.SIGKILL)


def pytest_configure(config):
    config.addinivalue_line("markers", "multinode: several nodes on one PostgreSQL database (run once, not per backend)")


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


def invocations(t, name):
    """A function's recent invocations, newest first, through the functions API (which
    writes the rows still waiting first; `admin invocations`, another process, sees them
    within 100 ms)."""
    status, body = api(t, "GET", f"/synctrig/functions/{name}/invocations")
    assert status == 200, body
    return body["Invocations"]


def api(t, method, path, body=None, credentials=None):
    """A signed call of the functions API, as the tenant's developer unless other
    credentials are given: (status, JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = AWSRequest(method=method, url=f"{t.server.url}{path}", data=data, headers=headers)
    SigV4Auth(credentials or Credentials(t.key, t.secret), "cognito-sync", "us-east-1").add_auth(request)
    req = urllib.request.Request(request.url, data=data, headers=dict(request.headers), method=method)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
