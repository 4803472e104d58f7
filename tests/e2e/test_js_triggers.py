"""The seed's Node.js sample as a pool's Sync Trigger, deployed from a .js file: boto3 gets
exactly the seed's result."""

from botocore.exceptions import ClientError
import subprocess
import pytest
from conftest import BIN, ROOT, env_for, invocations, records, sync

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
    log = invocations(t, "sample")[0]
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


def test_a_versions_environment_variables_are_its_process_env(server, tmp_path):
    t = server.tenant("acme")
    script = tmp_path / "index.js"
    script.write_text(
        "const table = process.env.TABLE;\n"
        "exports.handler = async (event) => {\n"
        "  console.log(`env ${table} ${process.env.GREETING} ${process.env.AWS_REGION} ${process.env.AWS_LAMBDA_FUNCTION_VERSION}`);\n"
        "  return event;\n};\n"
    )
    deployed = server.admin("deploy", "--tenant", "acme", "--name", "envy", "--js", str(script),
                            "--env", "TABLE=scores", "--env", "GREETING=a=b é")
    assert deployed["version"] == 1
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "envy"})
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put("level", "1")])
    log = invocations(t, "envy")[0]["log"]
    assert log == "[info] env scores a=b é us-east-1 1\n", log
    # Lambda's rules: a reserved name or a malformed one is refused, and nothing is deployed.
    for bad, why in [("AWS_REGION=x", "AWS_REGION is reserved"), ("1X=y", "must match"), ("AB=" + "v" * 4095, "over the limit of 4096")]:
        out = subprocess.run([str(BIN), "admin", "--data-dir", str(server.data_dir), "deploy", "--tenant", "acme", "--name", "envy",
                              "--js", str(script), "--env", bad], capture_output=True, text=True, env=env_for(server.data_dir))
        assert out.returncode != 0 and why in out.stdout + out.stderr, (bad, out.stdout, out.stderr)
    assert server.admin("deploy", "--tenant", "acme", "--name", "envy", "--js", str(script))["version"] == 2
