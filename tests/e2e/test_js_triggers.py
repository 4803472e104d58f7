"""The seed's Node.js sample as a pool's Sync Trigger, deployed from a .js file: boto3 gets
exactly the seed's result."""

from botocore.exceptions import ClientError
import pytest
from conftest import ROOT, records, sync

SAMPLE = ROOT / "examples" / "js" / "sample-trigger.js"


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def test_the_seeds_sample_deployed_from_javascript(server):
    t = server.tenant("acme")
    deployed = t.deploy_path(SAMPLE, "sample")
    assert deployed["version"] == 1 and deployed["log"] == "[info] Loading function\n"
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "sample"})
    identity, user = t.identity()
    sync(t.dev, t.pool, identity, "game", [put("SampleKey2", "stored2")])  # developers skip the trigger
    out = sync(user, t.pool, identity, "game", [put("SampleKey1", "newValue1", 0)])
    got = {r["Key"]: (r.get("Value"), r["SyncCount"]) for r in out["Records"]}
    assert got == {"SampleKey1": ("ModifyValue1", 2), "SampleKey2": (None, 2), "SampleKey3": ("ModifyValue3", 2)}
    assert records(user, t.pool, identity, "game")[0] == got
    log = server.admin("invocations", "--tenant", "acme", "--name", "sample")["invocations"][0]
    assert log["outcome"] == "ok" and '"eventType": "SyncTrigger"' in log["log"] and log["fuel"] < 1_000_000


def test_a_javascript_rejection_reaches_the_client(server, tmp_path):
    t = server.tenant("acme")
    script = tmp_path / "index.js"
    script.write_text("exports.handler = async (event) => {\n  throw new Error('level may not go down');\n};\n")
    t.deploy_path(script, "guard")
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "guard"})
    identity, user = t.identity()
    with pytest.raises(ClientError) as e:
        sync(user, t.pool, identity, "game", [put("level", "1")])
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidParameterException", 400)
    assert err["Error"]["Message"] == "update rejected by the sync trigger: level may not go down"
    assert records(user, t.pool, identity, "game")[1]["DatasetExists"] is False
