"""Cognito Streams and push sync on a real NATS JetStream server (Debian's nats-server,
started here on a temp store and a free port): configuration through boto3 and the AWS
CLI, every acknowledged update in the stream exactly once and in SyncCount order per
dataset through a killed serve node, a broker restart and a broker down for 10 s, a full
outbox disabling streaming, BulkPublish of 1,000 datasets (resumed after a kill), and
push messages reaching the subscribed devices only."""

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from conftest import Server, api, new_database, share_database

LOST = (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectionError)


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def code(e):
    return e.response["Error"]["Code"]


def streaming(t, name, **extra):
    return t.dev.set_identity_pool_configuration(
        IdentityPoolId=t.pool, CognitoStreams={"StreamName": name, "StreamingStatus": "ENABLED", **extra}
    )


def wait_for(predicate, timeout=60, what="the condition"):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.2)


def metric(server, name):
    text = urllib.request.urlopen(f"{server.url}/metrics").read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def user_client(node, creds):
    return node.client("cognito-sync", creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])


def new_user(node, pool):
    ident = node.client("cognito-identity", "unused", "unused")
    identity = ident.get_id(IdentityPoolId=pool)["IdentityId"]
    return identity, ident.get_credentials_for_identity(IdentityId=identity)["Credentials"]


def check_stream(messages, acknowledged, final):
    """The stream holds each acknowledged update once, each dataset's changes in SyncCount
    order, and folding a dataset's changes gives what it holds now."""
    ids = [m[1] for m in messages]
    assert len(ids) == len(set(ids)), "a message was stored twice"
    per_dataset = {}
    for subject, _, record in messages:
        assert record["payloadType"] == "Inline" and subject.endswith(record["identityPoolId"])
        per_dataset.setdefault((record["identityId"], record["dataSetName"]), []).append(record)
    for (identity, dataset), count, values in acknowledged:
        got = [r for r in per_dataset.get((identity, dataset), []) if r["syncCount"] == count]
        assert len(got) == 1, f"{identity}/{dataset}@{count}: {len(got)} records"
        written = {r["key"]: r.get("value") for r in got[0]["kinesisSyncRecords"]}
        assert written == values
    for key, records in per_dataset.items():
        counts = [r["syncCount"] for r in records]
        assert counts == sorted(counts) and len(counts) == len(set(counts)), (key, counts)
        folded = {}
        for r in records:
            for s in r["kinesisSyncRecords"]:
                folded[s["key"]] = s.get("value")
        assert {k: v for k, v in folded.items() if v is not None} == final[key], key


def test_configuration_through_boto3_and_the_aws_cli_and_without_a_broker_a_clear_error(tmp_path, broker):
    plain = Server(tmp_path / "plain").start()
    try:
        t = plain.tenant("acme")
        with pytest.raises(ClientError) as e:
            streaming(t, "game")
        assert code(e.value) == "InvalidParameterException" and "--nats" in e.value.response["Error"]["Message"]
        assert "CognitoStreams" not in t.dev.get_identity_pool_configuration(IdentityPoolId=t.pool)
        with pytest.raises(ClientError) as e:
            t.dev.bulk_publish(IdentityPoolId=t.pool)
        assert code(e.value) == "InvalidParameterException"
    finally:
        plain.stop(signal.SIGKILL)

    s = Server(tmp_path / "data", ["--nats", broker.url]).start()
    try:
        t = s.tenant("acme")
        out = streaming(t, "game", RoleArn="arn:aws:iam::123456789012:role/cognito-streams")
        assert out["CognitoStreams"] == {
            "StreamName": "game",
            "RoleArn": "arn:aws:iam::123456789012:role/cognito-streams",
            "StreamingStatus": "ENABLED",
        }
        arn = "arn:aws:sns:us-east-1:123456789012:app/GCM/game"
        t.dev.set_identity_pool_configuration(IdentityPoolId=t.pool, PushSync={"ApplicationArns": [arn]})
        got = t.dev.get_identity_pool_configuration(IdentityPoolId=t.pool)
        assert got["CognitoStreams"]["StreamName"] == "game" and got["PushSync"]["ApplicationArns"] == [arn]
        # The AWS CLI, with its shorthand syntax.
        env = dict(os.environ, AWS_ACCESS_KEY_ID=t.key, AWS_SECRET_ACCESS_KEY=t.secret, AWS_DEFAULT_REGION="us-east-1")
        cli = ["aws", "--endpoint-url", s.url, "cognito-sync"]
        run = subprocess.run(
            [*cli, "set-identity-pool-configuration", "--identity-pool-id", t.pool,
             "--cognito-streams", "StreamName=game2,StreamingStatus=DISABLED"],
            capture_output=True, text=True, env=env,
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["CognitoStreams"] == {"StreamName": "game2", "StreamingStatus": "DISABLED",
                                                             "RoleArn": "arn:aws:iam::123456789012:role/cognito-streams"}
        run = subprocess.run([*cli, "get-identity-pool-configuration", "--identity-pool-id", t.pool],
                             capture_output=True, text=True, env=env)
        assert json.loads(run.stdout)["CognitoStreams"]["StreamName"] == "game2"
        # Bad input changes nothing: a name JetStream cannot take, a RoleArn off the model's
        # pattern, a status outside its enum, another tenant's stream name.
        for bad in ({"StreamName": "a.b"}, {"StreamName": "x", "RoleArn": "not-an-arn-at-all-here"},
                    {"StreamName": "x", "StreamingStatus": "ON"}, {"StreamName": "SYNCTRIG_PUSH"}):
            with pytest.raises(ClientError) as e:
                t.dev.set_identity_pool_configuration(IdentityPoolId=t.pool, CognitoStreams=bad)
            assert code(e.value) == "InvalidParameterException", bad
        assert t.dev.get_identity_pool_configuration(IdentityPoolId=t.pool)["CognitoStreams"]["StreamName"] == "game2"
        other = s.tenant("other")
        with pytest.raises(ClientError) as e:
            streaming(other, "game2")
        assert code(e.value) == "InvalidParameterException" and "another tenant" in e.value.response["Error"]["Message"]
        # Another tenant's developer cannot read or change this pool's configuration.
        with pytest.raises(ClientError) as e:
            other.dev.get_identity_pool_configuration(IdentityPoolId=t.pool)
        assert code(e.value) == "NotAuthorizedException"
        assert t.dev.get_bulk_publish_details(IdentityPoolId=t.pool)["BulkPublishStatus"] == "NOT_STARTED"
    finally:
        s.stop(signal.SIGKILL)


def load(nodes, pool, users, datasets, acknowledged, stop):
    """Clients syncing at once, spread over the nodes; each acknowledged update is kept:
    ((identity, dataset), SyncCount, values written)."""

    def client(n, identity, creds):
        i = 0
        while not stop.is_set():
            node = nodes[(n + i) % len(nodes)]
            dataset = datasets[i % len(datasets)]
            i += 1
            try:
                c = user_client(node, creds)
                token = c.list_records(IdentityPoolId=pool, IdentityId=identity, DatasetName=dataset)
                values = {f"k{i % 3}": f"v{n}-{i}", f"n{n}": str(i)}
                patches = [put(k, v, token["DatasetSyncCount"]) for k, v in values.items()]
                out = c.update_records(IdentityPoolId=pool, IdentityId=identity, DatasetName=dataset,
                                       SyncSessionToken=token["SyncSessionToken"], RecordPatches=patches)
                count = max(r["SyncCount"] for r in out["Records"])
                acknowledged.append(((identity, dataset), count, values))
            except ClientError as e:
                assert code(e) in ("ResourceConflictException", "InternalErrorException", "TooManyRequestsException"), e
            except LOST:
                time.sleep(0.1)

    threads = [threading.Thread(target=client, args=(n, *u)) for n, u in enumerate(users)]
    for th in threads:
        th.start()
    return threads


def final_state(node, pool, users, datasets):
    out = {}
    for identity, creds in users:
        c = user_client(node, creds)
        for d in datasets:
            recs = c.list_records(IdentityPoolId=pool, IdentityId=identity, DatasetName=d)["Records"]
            if recs:
                out[(identity, d)] = {r["Key"]: r["Value"] for r in recs if "Value" in r}
    return out


def run_through_failures(nodes, broker, t, stream):
    """Load on the nodes while one is killed with SIGKILL and restarted, and while the
    broker restarts; then the stream holds exactly what was acknowledged."""
    streaming(t, stream)
    users = [new_user(nodes[0], t.pool) for _ in range(4)]
    datasets = ["a", "b"]
    acknowledged, stop = [], threading.Event()
    threads = load(nodes, t.pool, users, datasets, acknowledged, stop)
    time.sleep(2)
    nodes[-1].stop(signal.SIGKILL)
    time.sleep(1)
    nodes[-1].start(port=int(nodes[-1].url.rsplit(":", 1)[1]))
    time.sleep(1)
    broker.stop()
    time.sleep(2)
    broker.start()
    time.sleep(2)
    stop.set()
    for th in threads:
        th.join()
    assert len(acknowledged) > 20
    final = final_state(nodes[0], t.pool, users, datasets)
    wait_for(lambda: metric(nodes[0], "synctrig_stream_outbox_depth") == 0 and len(broker.messages(stream)) > 0,
             what="the outbox to drain")
    time.sleep(1)
    check_stream(broker.messages(stream), acknowledged, final)
    return acknowledged


def test_every_acknowledged_update_is_in_the_stream_once_in_order_through_a_kill_and_a_broker_restart(tmp_path, broker):
    s = Server(tmp_path / "data", ["--nats", broker.url]).start()
    try:
        t = s.tenant("acme")
        run_through_failures([s], broker, t, "game")
    finally:
        s.stop(signal.SIGKILL)


@pytest.mark.multinode
def test_two_nodes_publish_every_update_once_through_a_killed_node(tmp_path, broker):
    dirs = [tmp_path / "node0", tmp_path / "node1"]
    share_database(new_database(), *dirs)
    nodes = [Server(d, ["--nats", broker.url]).start() for d in dirs]
    try:
        t = nodes[0].tenant("acme")
        run_through_failures(nodes, broker, t, "game")
    finally:
        for n in nodes:
            n.stop(signal.SIGKILL)


def test_a_broker_down_for_10_seconds_loses_nothing_and_a_full_outbox_disables_streaming(tmp_path, broker):
    s = Server(tmp_path / "data", ["--nats", broker.url, "--stream-outbox-max", "1200"]).start()
    try:
        t = s.tenant("acme")
        streaming(t, "game")
        identity, creds = new_user(s, t.pool)
        c = user_client(s, creds)
        broker.stop()
        acknowledged = []
        started = time.monotonic()
        count = 0
        while time.monotonic() - started < 10:
            values = {"score": str(count)}
            out = c.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d",
                                   SyncSessionToken=c.list_records(IdentityPoolId=t.pool, IdentityId=identity,
                                                                   DatasetName="d")["SyncSessionToken"],
                                   RecordPatches=[put("score", str(count), count)])
            count = out["Records"][0]["SyncCount"]
            acknowledged.append(((identity, "d"), count, values))
            time.sleep(0.1)
        assert metric(s, "synctrig_stream_outbox_depth") > 0
        assert metric(s, "synctrig_stream_publish_failures_total") > 0
        assert metric(s, "synctrig_stream_broker_connected") == 0
        broker.start()
        wait_for(lambda: metric(s, "synctrig_stream_outbox_depth") == 0, what="the outbox to drain")
        check_stream(broker.messages("game"), acknowledged, {(identity, "d"): {"score": str(count - 1)}})
        assert metric(s, "synctrig_stream_broker_connected") == 1

        # The outbox's bound (1,200 for the pool: 150 per slot of 8, and one identity's
        # changes count in one slot): with the broker down, streaming turns off, with the
        # reason; updates go on.
        broker.stop()
        for _ in range(160):
            token = c.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d")
            c.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d",
                             SyncSessionToken=token["SyncSessionToken"],
                             RecordPatches=[put("score", "x", token["DatasetSyncCount"])])
        # DisabledReason is not in the model (boto3 drops it): read on the wire.
        status, answer = api(t, "GET", f"/identitypools/{t.pool}/configuration")
        config = answer["CognitoStreams"]
        assert status == 200 and config["StreamingStatus"] == "DISABLED" and "outbox" in config["DisabledReason"], config
        broker.start()
        wait_for(lambda: metric(s, "synctrig_stream_outbox_depth") == 0, what="the outbox to drain")
        streaming(t, "game")
        config = api(t, "GET", f"/identitypools/{t.pool}/configuration")[1]["CognitoStreams"]
        assert config["StreamingStatus"] == "ENABLED" and "DisabledReason" not in config
    finally:
        s.stop(signal.SIGKILL)


def test_bulk_publish_of_1000_datasets_resumes_after_a_kill(tmp_path, broker):
    s = Server(tmp_path / "data", ["--nats", broker.url]).start()
    try:
        t = s.tenant("acme")
        users = [new_user(s, t.pool) for _ in range(50)]

        def write(user):
            identity, creds = user
            c = user_client(s, creds)
            for d in range(20):
                token = c.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName=f"d{d}")
                c.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName=f"d{d}",
                                 SyncSessionToken=token["SyncSessionToken"], RecordPatches=[put("k", f"{d}")])

        threads = [threading.Thread(target=write, args=(u,)) for u in users]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        streaming(t, "bulk")
        before = t.dev.get_bulk_publish_details(IdentityPoolId=t.pool)
        assert before["BulkPublishStatus"] == "NOT_STARTED"
        assert t.dev.bulk_publish(IdentityPoolId=t.pool)["IdentityPoolId"] == t.pool
        with pytest.raises(ClientError) as e:
            t.dev.bulk_publish(IdentityPoolId=t.pool)
        assert code(e.value) == "DuplicateRequestException"
        # Killed once some of it is out, and started again: it goes on from where it was.
        end = time.monotonic() + 60
        while broker.count("bulk") == 0 and time.monotonic() < end:
            time.sleep(0.01)
        status = t.dev.get_bulk_publish_details(IdentityPoolId=t.pool)["BulkPublishStatus"]
        assert status in ("IN_PROGRESS", "SUCCEEDED")
        s.stop(signal.SIGKILL)
        s.start(port=int(s.url.rsplit(":", 1)[1]))
        details = wait_for(
            lambda: (d := t.dev.get_bulk_publish_details(IdentityPoolId=t.pool))["BulkPublishStatus"] == "SUCCEEDED" and d,
            what="the bulk publish",
        )
        assert details["BulkPublishCompleteTime"] >= details["BulkPublishStartTime"]
        bulk = [r for _, _, r in broker.messages("bulk") if r["change"] == "bulk"]
        keys = {(r["identityId"], r["dataSetName"]) for r in bulk}
        assert len(bulk) == len(keys) == 1000
        assert all(r["kinesisSyncRecords"][0]["value"] == r["dataSetName"][1:] for r in bulk)
        with pytest.raises(ClientError) as e:
            t.dev.bulk_publish(IdentityPoolId=t.pool)
        assert code(e.value) == "AlreadyStreamedException"
    finally:
        s.stop(signal.SIGKILL)


def test_push_messages_reach_the_subscribed_devices_but_the_writer_only(tmp_path, broker):
    s = Server(tmp_path / "data", ["--nats", broker.url]).start()
    try:
        t = s.tenant("acme")
        identity, creds = new_user(s, t.pool)
        c = user_client(s, creds)
        with pytest.raises(ClientError) as e:
            c.register_device(IdentityPoolId=t.pool, IdentityId=identity, Platform="GCM", Token="tok-a")
        assert code(e.value) == "InvalidConfigurationException"
        arn = "arn:aws:sns:us-east-1:123456789012:app/GCM/game"
        t.dev.set_identity_pool_configuration(IdentityPoolId=t.pool, PushSync={"ApplicationArns": [arn]})
        a = c.register_device(IdentityPoolId=t.pool, IdentityId=identity, Platform="GCM", Token="tok-a")["DeviceId"]
        b = c.register_device(IdentityPoolId=t.pool, IdentityId=identity, Platform="GCM", Token="tok-b")["DeviceId"]
        apns = c.register_device(IdentityPoolId=t.pool, IdentityId=identity, Platform="APNS", Token="tok-c")["DeviceId"]
        assert c.register_device(IdentityPoolId=t.pool, IdentityId=identity, Platform="GCM", Token="tok-a")["DeviceId"] == a
        for device in (a, b):
            c.subscribe_to_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d", DeviceId=device)
        c.subscribe_to_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="other", DeviceId=apns)
        # Another identity cannot use these devices.
        other, other_creds = new_user(s, t.pool)
        with pytest.raises(ClientError) as e:
            user_client(s, other_creds).subscribe_to_dataset(IdentityPoolId=t.pool, IdentityId=other, DatasetName="d",
                                                             DeviceId=a)
        assert code(e.value) == "ResourceNotFoundException"

        def update(device=None):
            token = c.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d")
            extra = {"DeviceId": device} if device else {}
            c.update_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d",
                             SyncSessionToken=token["SyncSessionToken"],
                             RecordPatches=[put("k", "v", token["DatasetSyncCount"])], **extra)

        update(device=a)  # SyncCount 1: only b is told
        update()  # 2: a and b
        # Devices are those subscribed when the change is published.
        wait_for(lambda: len(broker.messages("SYNCTRIG_PUSH")) >= 3, what="pushes")
        c.unsubscribe_from_dataset(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d", DeviceId=b)
        update(device=b)  # 3: a (b unsubscribed)
        wait_for(lambda: len(broker.messages("SYNCTRIG_PUSH")) >= 4, what="pushes")
        time.sleep(1)
        messages = broker.messages("SYNCTRIG_PUSH")
        told = sorted((m["data"]["syncCount"], m["deviceId"]) for _, _, m in messages)
        assert told == sorted([(1, b), (2, a), (2, b), (3, a)])
        subject, _, first = messages[0]
        assert subject == f"synctrig.push.{t.pool}.GCM"
        assert first["data"] == {"source": "cognito-sync", "type": "SyncTrigger", "identityPoolId": t.pool,
                                 "identityId": identity, "datasetName": "d", "syncCount": first["data"]["syncCount"]}
        assert first["applicationArn"] == arn and first["token"] in ("tok-a", "tok-b")
    finally:
        s.stop(signal.SIGKILL)
