"""Three `serve` nodes on one PostgreSQL database, clients spread over them, one node
killed with SIGKILL mid-load and restarted: nothing acknowledged is lost, no two
acknowledged updates share a base SyncCount, credentials and session tokens cross
nodes, and a SetCognitoEvents made on one node is used by the others."""

import signal
import threading
import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from conftest import Server, new_database, records, share_database, sync

pytestmark = pytest.mark.multinode

LOST = (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectionError)


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def until_compiled(f, deadline=120):
    """Calls f until a node has compiled the trigger (LambdaThrottledException until then)."""
    end = time.monotonic() + deadline
    while True:
        try:
            return f()
        except ClientError as e:
            if e.response["Error"]["Code"] != "LambdaThrottledException" or time.monotonic() > end:
                raise
            time.sleep(0.5)


def test_three_nodes_on_one_database_survive_a_killed_node(tmp_path):
    dirs = [tmp_path / f"node{i}" for i in range(3)]
    share_database(new_database(), *dirs)
    nodes = [Server(d).start() for d in dirs]
    a, b, c = nodes
    try:
        # Tenant, pool and trigger through node A's admin commands: the database is shared.
        t = a.tenant("acme")
        t.deploy("sample_trigger", "sample")
        ident = a.client("cognito-identity", "unused", "unused")
        identity = ident.get_id(IdentityPoolId=t.pool)["IdentityId"]
        creds = ident.get_credentials_for_identity(IdentityId=identity)["Credentials"]

        def user(node):
            return node.client("cognito-sync", creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])

        # Credentials minted on A work on B and C; no trigger yet.
        sync(user(b), t.pool, identity, "before", [put("SampleKey1", "newValue1")])
        assert records(user(c), t.pool, identity, "before")[0] == {"SampleKey1": ("newValue1", 1)}

        # SetCognitoEvents on B is in force on A and C at their next request.
        dev_b = b.client("cognito-sync", t.key, t.secret)
        dev_b.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "sample"})
        for node, dataset in ((a, "probe-a"), (c, "probe-c")):
            out = until_compiled(lambda: sync(user(node), t.pool, identity, dataset, [put("SampleKey1", "newValue1")]))
            got = {r["Key"]: r.get("Value") for r in out["Records"]}
            assert got["SampleKey1"] == "ModifyValue1" and got["SampleKey3"] == "ModifyValue3", (node.url, got)

        # Load: workers update one shared dataset, each listing on one node and updating
        # on the next, so every SyncSessionToken crosses nodes.
        acknowledged, lock, stop = [], threading.Lock(), threading.Event()
        errors = []

        def worker(w):
            clients = [user(n) for n in nodes]
            n = 0
            while not stop.is_set():
                lister, updater = clients[(w + n) % 3], clients[(w + n + 1) % 3]
                key, value = f"w{w}-{n}", f"value {w} {n}"
                try:
                    listing = lister.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="shared")
                    base = listing["DatasetSyncCount"]
                    out = updater.update_records(
                        IdentityPoolId=t.pool,
                        IdentityId=identity,
                        DatasetName="shared",
                        SyncSessionToken=listing["SyncSessionToken"],
                        RecordPatches=[put(key, value)],
                    )
                except ClientError as e:
                    code = e.response["Error"]["Code"]
                    if code not in ("ResourceConflictException", "LambdaThrottledException", "TooManyRequestsException"):
                        errors.append((code, e.response["Error"]["Message"]))
                    continue
                except LOST:
                    # The node went away mid-request: the outcome is unknown, not acknowledged.
                    time.sleep(0.1)
                    continue
                written = {r["Key"]: r for r in out["Records"]}
                with lock:
                    acknowledged.append((key, value, base, written[key]["SyncCount"]))
                n += 1

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
        for th in threads:
            th.start()
        time.sleep(4)
        port = int(b.url.rsplit(":", 1)[1])
        b.stop(signal.SIGKILL)
        time.sleep(2)
        b.start(port=port)
        time.sleep(4)
        stop.set()
        for th in threads:
            th.join(timeout=60)

        assert not errors, errors[:5]
        assert len(acknowledged) >= 20, len(acknowledged)
        bases = [base for _, _, base, _ in acknowledged]
        assert len(bases) == len(set(bases)), "two acknowledged updates share a base SyncCount"
        assert all(count == base + 1 for _, _, base, count in acknowledged)
        # Every acknowledged write is there, read through each node (B restarted).
        for node in nodes:
            stored, listing = records(user(node), t.pool, identity, "shared")
            for key, value, _, count in acknowledged:
                assert stored.get(key) == (value, count), (node.url, key)
            assert listing["DatasetSyncCount"] >= max(bases) + 1
    finally:
        for node in nodes:
            node.stop(signal.SIGKILL)
