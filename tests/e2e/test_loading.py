"""Untrusted components cannot crash, stall or bloat the server: every bomb of the hostile
catalogue (tests/src/lib.rs `hostile`) is refused by `admin deploy` within the compile
limits, and `serve` survives each one planted straight in its database (as if an older
version had accepted it), with the artifact cache absent and present."""

import hashlib
import json
import resource
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest
from botocore.exceptions import ClientError
from conftest import BACKEND, BIN, ROOT, Server, env_for, guest, psql, sync

HOSTILE = ROOT / "target" / "debug" / "hostile-components"
COMPILE_WALL_LIMIT = 30  # limits::compile::MAX_WALL
COMPILE_MEMORY_LIMIT = 2 << 30  # limits::compile::MAX_MEMORY_BYTES


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    assert HOSTILE.exists(), f"{HOSTILE} is missing; run `cargo test --workspace` first"
    out = tmp_path_factory.mktemp("hostile")
    subprocess.run([str(HOSTILE), str(out)], check=True, timeout=120)
    entries = json.loads((out / "catalogue.json").read_text())
    for e in entries:
        e["path"] = out / e["file"]
    return entries


def resident_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) >> 10
    raise AssertionError("no VmRSS")


def test_deploy_refuses_every_bomb_within_the_compile_limits(server, catalogue):
    server.tenant("acme")
    for entry in catalogue:
        started = time.monotonic()
        out = subprocess.run(
            [str(BIN), "admin", "--data-dir", str(server.data_dir), "deploy", "--tenant", "acme", "--name", "bomb", "--wasm", str(entry["path"])],
            capture_output=True, text=True, timeout=COMPILE_WALL_LIMIT + 30, env=env_for(server.data_dir),
        )
        elapsed = time.monotonic() - started
        answer = json.loads(out.stdout)
        assert out.returncode == 1 and entry["refusal"] in answer["error"], (entry["name"], answer)
        assert answer["__type"] == "InvalidConfigurationException"
        assert elapsed < COMPILE_WALL_LIMIT + 10, (entry["name"], elapsed)
        # The largest process of the tree (deploy or its compile worker) stayed under the
        # worker's memory limit.
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        assert peak < COMPILE_MEMORY_LIMIT, (entry["name"], peak >> 20)
    assert not (server.data_dir / "artifacts").exists() or not list((server.data_dir / "artifacts").glob("*.cwasm"))


def plant(server, tenant, name, wasm):
    """Stores a component as a new version of a function, skipping deploy's checks."""
    if BACKEND == "postgres":
        version = psql(
            server.data_dir,
            f"INSERT INTO functions (tenant, name, version, digest, wasm, created) SELECT '{tenant}', '{name}', "
            f"COALESCE(MAX(version), 0) + 1, '{hashlib.sha256(wasm).hexdigest()}', decode('{wasm.hex()}', 'hex'), 0 "
            f"FROM functions WHERE tenant = '{tenant}' AND name = '{name}' RETURNING version",
        )
        return int(version.split()[0])
    db = sqlite3.connect(server.data_dir / "synctrig.db", timeout=10)
    with db:
        version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = ? AND name = ?", (tenant, name)).fetchone()[0]
        db.execute(
            "INSERT INTO functions (tenant, name, version, digest, wasm, created) VALUES (?, ?, ?, ?, ?, 0)",
            (tenant, name, version, hashlib.sha256(wasm).hexdigest(), wasm),
        )
    db.close()
    return version


def final_error(user, pool, identity, dataset, deadline=90):
    """Updates until the answer is not 'still compiling' (LambdaThrottledException)."""
    until = time.monotonic() + deadline
    while True:
        try:
            sync(user, pool, identity, dataset, [put("k", "v")])
            return None
        except ClientError as e:
            code = e.response["Error"]["Code"]
            if code == "LambdaThrottledException" and time.monotonic() < until:
                time.sleep(0.5)
                continue
            return code, e.response["Error"]["Message"]


def test_serve_survives_every_bomb_with_the_cache_absent_and_present(tmp_path, catalogue):
    server = Server(tmp_path / "data").start()
    try:
        good = server.tenant("good", trigger="sample_trigger")
        good_id, good_user = good.identity()
        evil = server.tenant("evil")
        evil_id, evil_user = evil.identity()
        rss_before = resident_mib(server.proc.pid)
        for n, entry in enumerate(catalogue):
            plant(server, "evil", entry["name"], entry["path"].read_bytes())
            evil.dev.set_cognito_events(IdentityPoolId=evil.pool, Events={"SyncTrigger": entry["name"]})
            code, message = final_error(evil_user, evil.pool, evil_id, f"d{n}")
            assert code == "InvalidConfigurationException" and entry["refusal"] in message, (entry["name"], code, message)
            # A normal tenant is served right after, and the server is not bloated.
            out = sync(good_user, good.pool, good_id, f"game{n}", [put("k", "x")])
            assert {r["Key"]: r.get("Value") for r in out["Records"]} == {"k": "x", "SampleKey3": "ModifyValue3"}
            assert server.proc.poll() is None
            assert resident_mib(server.proc.pid) < rss_before + 200, (entry["name"], resident_mib(server.proc.pid), rss_before)
        print(f"server RSS: {rss_before} MiB before the bombs, {resident_mib(server.proc.pid)} MiB after all of them")
        # A broken trigger costs one compile per minute, not one per request.
        started = time.monotonic()
        for _ in range(5):
            assert final_error(evil_user, evil.pool, evil_id, "again")[0] == "InvalidConfigurationException"
        assert time.monotonic() - started < 5

        # The artifact cache wiped (a new node, an upgrade): the good trigger is compiled at
        # start-up in the background, and the bombs still are refused.
        for cache_state in ("absent", "present"):
            assert server.stop() == 0
            if cache_state == "absent":
                shutil.rmtree(server.data_dir / "artifacts")
            server.start()
            ident = server.client("cognito-identity", "u", "u")
            users = {}
            for name, identity in (("good", good_id), ("evil", evil_id)):
                c = ident.get_credentials_for_identity(IdentityId=identity)["Credentials"]
                users[name] = server.client("cognito-sync", c["AccessKeyId"], c["SecretKey"], c["SessionToken"])
            assert final_error(users["good"], good.pool, good_id, f"after-{cache_state}") is None, cache_state
            code, message = final_error(users["evil"], evil.pool, evil_id, f"after-{cache_state}")
            assert code == "InvalidConfigurationException" and catalogue[-1]["refusal"] in message, message
    finally:
        server.stop(signal.SIGKILL)


def big_data_version(bytes_, n):
    """The big_data guest with one byte of its 30 MiB data segment changed: a distinct
    component of the same cost."""
    run = bytes([7]) * 4096
    at = bytes_.index(run) + 2048
    return bytes_[:at] + bytes([n]) + bytes_[at + 1:]


def test_loaded_triggers_stay_within_their_memory_budget(tmp_path):
    server = Server(tmp_path / "data", ["--trigger-memory-mib", "40"]).start()
    try:
        t = server.tenant("acme")
        identity, user = t.identity()
        base = guest("big_data").read_bytes()
        samples = []
        for n in range(4):
            path = tmp_path / f"big{n}.wasm"
            path.write_bytes(big_data_version(base, 100 + n))
            t.deploy_path(path, f"big{n}")
            t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": f"big{n}"})
            assert final_error(user, t.pool, identity, f"d{n}") is None
            samples.append(resident_mib(server.proc.pid))
        # Four 30 MiB triggers were loaded in turn; a budget of 40 MiB keeps one.
        print("server RSS (MiB) after each of four 30 MiB triggers:", samples)
        assert samples[-1] - samples[1] < 2 * 30, samples
    finally:
        server.stop(signal.SIGKILL)
