"""Safe trigger releases through the functions API (the console's) and boto3: aliases that
move at the next sync, a split that keeps each dataset on one version, and a canary that
rolls itself back."""

import time

import pytest
from botocore.exceptions import ClientError
from conftest import Server, api, new_database, records, share_database, sync

# Each version says which version served the sync; `failing` rejects the datasets whose
# number is a multiple of five (a fifth of them).
SERVED_BY = """exports.handler = async (event) => {{
  {failing}
  event.datasetRecords.servedBy = {{ newValue: process.env.AWS_LAMBDA_FUNCTION_VERSION, op: 'replace' }};
  return event;
}};
"""
FAILING = "if (Number(event.datasetName.split('-')[1]) % 5 === 0) throw new Error('canary bug');"


def deploy(t, tmp_path, function, failing=False):
    script = tmp_path / f"{function}-{time.monotonic_ns()}.js"
    script.write_text(SERVED_BY.format(failing=FAILING if failing else ""))
    return t.deploy_path(script, function)["version"]


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def served_by(user, t, identity, dataset):
    """Syncs one change of `dataset` and answers the version that served it."""
    got, _ = records(user, t.pool, identity, dataset)
    count = got.get("n", (None, 0))[1]
    sync(user, t.pool, identity, dataset, [put("n", str(count + 1), count)])
    # What the version wrote (an answer lists only what changed: the same version again
    # changes nothing).
    return records(user, t.pool, identity, dataset)[0]["servedBy"][0]


def identities(t, n):
    return [t.identity() for _ in range(n)]


def test_an_alias_moves_at_the_next_sync_and_guards_its_use(server, tmp_path):
    t = server.tenant("acme")
    assert [deploy(t, tmp_path, "f") for _ in range(2)] == [1, 2]
    status, alias = api(t, "POST", "/synctrig/functions/f/aliases", {"Name": "live", "FunctionVersion": "1"})
    assert status == 200 and (alias["FunctionVersion"], alias["RevisionId"]) == ("1", "1"), alias
    with pytest.raises(ClientError) as e:
        t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "f:beta"})
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "f:live"})
    identity, user = t.identity()
    assert served_by(user, t, identity, "ds-1") == "1"
    status, alias = api(t, "PUT", "/synctrig/functions/f/aliases/live", {"FunctionVersion": "2", "RevisionId": "1"})
    assert status == 200 and alias["RevisionId"] == "2", alias
    assert served_by(user, t, identity, "ds-1") == "2"
    # A stale revision, a missing version, a duplicate, a bad name: each its own error.
    cases = [
        ("PUT", "/synctrig/functions/f/aliases/live", {"FunctionVersion": "1", "RevisionId": "1"}, 409, "ResourceConflictException"),
        ("PUT", "/synctrig/functions/f/aliases/live", {"FunctionVersion": "7"}, 404, "ResourceNotFoundException"),
        ("POST", "/synctrig/functions/f/aliases", {"Name": "live", "FunctionVersion": "1"}, 409, "ResourceConflictException"),
        ("POST", "/synctrig/functions/f/aliases", {"Name": "123", "FunctionVersion": "1"}, 400, "InvalidParameterException"),
        ("PUT", "/synctrig/functions/f/aliases/live",
         {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.6}}}, 400, "InvalidParameterException"),
        ("DELETE", "/synctrig/functions/f/aliases/live", None, 409, "ResourceConflictException"),
    ]
    for method, path, body, status, name in cases:
        got = api(t, method, path, body)
        assert (got[0], got[1].get("__type")) == (status, name), (method, path, body, got)
    assert served_by(user, t, identity, "ds-1") == "2", "refused changes changed nothing"
    other = server.tenant("other")
    assert api(other, "GET", "/synctrig/functions/f/aliases/live")[0] == 404
    assert api(other, "GET", "/synctrig/functions/f/aliases") == (200, {"Aliases": []})
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "f:1"})
    assert api(t, "DELETE", "/synctrig/functions/f/aliases/live", None) == (200, {})
    assert served_by(user, t, identity, "ds-1") == "1"


def test_a_split_is_near_its_weight_and_keeps_each_dataset_on_one_version(server, tmp_path):
    t = server.tenant("acme")
    deploy(t, tmp_path, "f"), deploy(t, tmp_path, "f")
    body = {"Name": "live", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.2}}}
    assert api(t, "POST", "/synctrig/functions/f/aliases", body)[0] == 200
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "f:live"})
    first = {}
    for identity, user in identities(t, 10):
        for i in range(20):
            first[(identity, i)] = (user, served_by(user, t, identity, f"ds-{i}"))
    share = sum(v == "2" for _, v in first.values()) / len(first)
    # 200 datasets at 20%: three standard deviations either side.
    assert 0.115 <= share <= 0.285, share
    for (identity, i), (user, version) in list(first.items())[::4]:
        assert served_by(user, t, identity, f"ds-{i}") == version, "a dataset stays with its version"
    # Figures reach the store once a second.
    deadline = time.monotonic() + 10
    while True:
        status, alias = api(t, "GET", "/synctrig/functions/f/aliases/live")
        figures = {f["Version"]: f for f in alias["Figures"]}
        if sum(f["Invocations"] for f in figures.values()) == 250 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert figures[1]["Invocations"] + figures[2]["Invocations"] == 250, figures
    assert figures[2]["Ok"] == figures[2]["Invocations"] and figures[2]["WallMicrosP50"] > 0, figures


def canary_rolls_back(tenants, tmp_path, function):
    """Version 2 of `function` rejects a fifth of the datasets; a rollout at half the
    traffic must roll it back by itself, after which version 1 serves everything. Syncs
    go to each of `tenants` (the same tenant on several nodes) in turn."""
    t = tenants[0]
    deploy(t, tmp_path, function), deploy(t, tmp_path, function, failing=True)
    body = {
        "Name": "live",
        "FunctionVersion": "1",
        "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}},
        "Rollout": {"PromoteAfterInvocations": 1000, "MinInvocations": 20, "MaxRejectRateIncrease": 0.05},
    }
    assert api(t, "POST", f"/synctrig/functions/{function}/aliases", body)[0] == 200
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": f"{function}:live"})
    users = [(node, *node.identity()) for n in range(10) for node in [tenants[n % len(tenants)]]]
    rejected = 0
    deadline = time.monotonic() + 60
    decided = False
    while not decided:
        assert time.monotonic() < deadline, ("no decision", alias)
        for node, identity, user in users:
            for i in range(20):
                try:
                    served_by(user, node, identity, f"ds-{i}")
                except ClientError as e:
                    assert e.response["Error"]["Message"].endswith("canary bug"), e.response
                    rejected += 1
            status, alias = api(t, "GET", f"/synctrig/functions/{function}/aliases/live")
            if "RoutingConfig" not in alias:
                decided = True
                break
    assert rejected > 0 and alias["FunctionVersion"] == "1" and "Rollout" not in alias, alias
    status, listed = api(t, "GET", f"/synctrig/functions/{function}/decisions")
    [decision] = listed["Decisions"]
    assert (decision["Decision"], decision["PrimaryVersion"], decision["CandidateVersion"]) == ("rolled back", "1", "2")
    assert decision["Figures"]["candidate"]["Rejected"] > 0 and "rejections" in decision["Reason"], decision
    # The primary serves all traffic again, on every node.
    for node, identity, user in users:
        for i in range(0, 20, 5):
            assert served_by(user, node, identity, f"ds-{i}") == "1"
    time.sleep(2.5)  # every node has judged again since: still one decision
    assert len(api(t, "GET", f"/synctrig/functions/{function}/decisions")[1]["Decisions"]) == 1


def test_a_canary_that_fails_rolls_back_by_itself(server, tmp_path):
    canary_rolls_back([server.tenant("acme")], tmp_path, "f")


@pytest.mark.multinode
def test_two_nodes_share_aliases_and_rollouts(tmp_path):
    url = new_database()
    share_database(url, tmp_path / "a", tmp_path / "b")
    a, b = Server(tmp_path / "a").start(), Server(tmp_path / "b").start()
    try:
        t = a.tenant("acme")
        on_b = type(t)(b, t.name, t.key, t.secret, t.pool)
        deploy(t, tmp_path, "f"), deploy(t, tmp_path, "f")
        assert api(t, "POST", "/synctrig/functions/f/aliases", {"Name": "live", "FunctionVersion": "1"})[0] == 200
        t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "f:live"})
        identity, user_b = on_b.identity()
        assert served_by(user_b, on_b, identity, "ds-1") == "1"
        assert api(t, "PUT", "/synctrig/functions/f/aliases/live", {"FunctionVersion": "2"})[0] == 200
        assert served_by(user_b, on_b, identity, "ds-1") == "2", "the move is seen by the other node's next sync"
        canary_rolls_back([t, on_b], tmp_path, "g")
    finally:
        a.stop(), b.stop()
