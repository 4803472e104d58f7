"""Recording, replay and shadow runs through the functions API (the console's), `admin
replay` and boto3 devices: a recorded invocation replays bit for bit (a JavaScript
trigger's Math.random and Date.now included) and a changed candidate shows exactly what it
would have changed; a shadow version never writes; recordings are their tenant's only."""

import base64
import json
import time

from botocore.credentials import Credentials
from conftest import api, guest, records, sync

# Draws from Math.random and reads the clock: only the recorded entropy makes it repeat.
LUCKY = """exports.handler = async (event) => {
  event.datasetRecords.lucky = { newValue: String(Math.random()), op: 'replace' };
  event.datasetRecords.at = { newValue: String(Date.now()), op: 'replace' };
  return event;
};
"""
# The same draw, shown as a whole number of thousandths, and one more record.
LUCKY_V2 = """exports.handler = async (event) => {
  event.datasetRecords.lucky = { newValue: String(Math.floor(Math.random() * 1000)), op: 'replace' };
  event.datasetRecords.at = { newValue: String(Date.now()), op: 'replace' };
  event.datasetRecords.v2 = { newValue: 'yes', op: 'replace' };
  return event;
};
"""
THROWS = "exports.handler = async (event) => { throw new Error('not today'); };\n"
ANSWERS_NONSENSE = "exports.handler = async (event) => 42;\n"


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def deploy_script(t, tmp_path, function, source):
    path = tmp_path / f"{function}-{time.monotonic_ns()}.js"
    path.write_text(source)
    return t.deploy_path(path, function)["version"]


def recorded(t, function, want):
    """The function's recordings once `want` are written (they are written off the sync's path)."""
    for _ in range(200):
        status, page = api(t, "GET", f"/synctrig/functions/{function}/recordings")
        assert status == 200, page
        if len(page["Recordings"]) >= want:
            return page["Recordings"]
        time.sleep(0.05)
    raise AssertionError(f"{want} recordings never appeared")


def replay(t, function, **body):
    status, report = api(t, "POST", f"/synctrig/functions/{function}/replay", body)
    assert status == 200, report
    return report


def response_records(t, function, recording_id):
    status, r = api(t, "GET", f"/synctrig/functions/{function}/recordings/{recording_id}")
    assert status == 200, r
    return json.loads(r["Response"])["datasetRecords"]


def test_a_javascript_trigger_replays_bit_for_bit_and_a_changed_one_shows_its_exact_diffs(server, tmp_path):
    t = server.tenant("acme")
    assert deploy_script(t, tmp_path, "lucky", LUCKY) == 1
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "lucky"})
    status, config = api(t, "GET", "/synctrig/functions/lucky/recording")
    assert (status, config) == (200, {"FunctionName": "lucky", "Enabled": False}), config
    status, config = api(t, "PUT", "/synctrig/functions/lucky/recording", {"Enabled": True})
    assert status == 200 and (config["MaxCount"], config["MaxAgeSeconds"]) == (1000, 7 * 86400), config

    stored = {}
    for n in range(4):
        identity, user = t.identity()
        sync(user, t.pool, identity, f"ds-{n}", [put("n", str(n))])
        got, _ = records(user, t.pool, identity, f"ds-{n}")
        stored[(identity, f"ds-{n}")] = {k: v for k, (v, _) in got.items()}
    listed = recorded(t, "lucky", 4)
    assert {(r["IdentityId"], r["DatasetName"]) for r in listed} == set(stored)
    assert all(r["Outcome"] == "ok" and r["Version"] == 1 for r in listed)
    # What a recording says the trigger answered is what the devices got.
    for r in listed:
        answered = response_records(t, "lucky", r["Id"])
        assert {k: v["newValue"] for k, v in answered.items()} == stored[(r["IdentityId"], r["DatasetName"])]

    # Its own version on its own entropy: the same, to the last fuel unit.
    report = replay(t, "lucky", Version=1)
    assert report["Candidate"] == "version 1"
    assert report["Summary"]["Replayed"] == report["Summary"]["Same"] == 4, report["Summary"]
    assert report["Summary"]["FuelDelta"] == 0
    assert all(i["Result"] == "Same" and i["FuelDelta"] == 0 and "Diff" not in i for i in report["Invocations"])

    # A changed version, deployed or not: exactly the records it changes, from the same draw.
    assert deploy_script(t, tmp_path, "lucky", LUCKY_V2) == 2
    for candidate in ({"Version": 2}, {"Script": LUCKY_V2}):
        report = replay(t, "lucky", **candidate)
        assert report["Summary"]["Different"] == 4, report["Summary"]
        for i in report["Invocations"]:
            was = response_records(t, "lucky", i["RecordingId"])["lucky"]["newValue"]
            assert i["Diff"] == [
                {
                    "Key": "lucky",
                    "Recorded": {"Op": "replace", "NewValue": was},
                    "Replayed": {"Op": "replace", "NewValue": str(int(float(was) * 1000))},
                },
                {"Key": "v2", "Recorded": None, "Replayed": {"Op": "replace", "NewValue": "yes"}},
            ], i
    assert replay(t, "lucky", Script=LUCKY_V2)["Candidate"] == "script"

    # One that throws now rejects; one that answers nonsense now fails.
    report = replay(t, "lucky", Script=THROWS, MaxRecordings=2)
    assert (report["Summary"]["Replayed"], report["Summary"]["NowRejects"]) == (2, 2), report["Summary"]
    assert report["Invocations"][0]["Error"]["Message"].endswith("not today"), report["Invocations"][0]
    report = replay(t, "lucky", Script=ANSWERS_NONSENSE, RecordingIds=[listed[0]["Id"]])
    assert [i["Result"] for i in report["Invocations"]] == ["NowFails"], report

    # Replays wrote nothing: every dataset is as its sync left it.
    for (identity, name), want in stored.items():
        _, user = t.identity()
        got, _ = records(t.dev, t.pool, identity, name)
        assert {k: v for k, (v, _) in got.items()} == want

    # Bad requests are refused with the API's names and change nothing.
    for body, status_want in [
        ({}, 400),
        ({"Version": 1, "Script": LUCKY}, 400),
        ({"Version": 9}, 404),
        ({"Version": 1, "MaxRecordings": 0}, 400),
        ({"Version": 1, "RecordingIds": [999999]}, 404),
        ({"Script": "this is not javascript ("}, 400),
        ({"Component": "bm90IHdhc20="}, 400),
    ]:
        status, error = api(t, "POST", "/synctrig/functions/lucky/replay", body)
        assert status == status_want, (body, error)


def test_a_rust_trigger_replays_the_same_and_a_changed_component_shows_its_exact_diffs(server):
    t = server.tenant("acme")
    t.deploy("award_on_level", "awards")
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "awards"})
    server.admin("recording", "--tenant", "acme", "--name", "awards", "--max-count", "10")
    identity, user = t.identity()
    sync(user, t.pool, identity, "game", [put("level", "2")])
    [r] = recorded(t, "awards", 1)
    assert set(response_records(t, "awards", r["Id"])) == {"level", "award:level-1", "award:level-2", "awards"}

    report = replay(t, "awards", Version=1)
    assert (report["Summary"]["Same"], report["Summary"]["FuelDelta"]) == (1, 0), report

    # A component that does not grant awards, not deployed: the awards are what it changes.
    wasm = base64.b64encode(guest("validate_input").read_bytes()).decode()
    report = replay(t, "awards", Component=wasm)
    assert report["Candidate"].startswith("component ")
    [i] = report["Invocations"]
    assert i["Result"] == "Different"
    assert i["Diff"] == [
        {"Key": "award:level-1", "Recorded": {"Op": "replace", "NewValue": "Reached level 1"}, "Replayed": None},
        {"Key": "award:level-2", "Recorded": {"Op": "replace", "NewValue": "Reached level 2"}, "Replayed": None},
        {"Key": "awards", "Recorded": {"Op": "replace", "NewValue": "2"}, "Replayed": None},
    ]
    # `admin replay` reports the same.
    cli = server.admin("replay", "--tenant", "acme", "--name", "awards", "--code", str(guest("validate_input")))
    assert cli["Summary"] == report["Summary"] | {"WallMicrosDelta": cli["Summary"]["WallMicrosDelta"]}
    assert cli["Invocations"][0]["Diff"] == i["Diff"]
    assert server.admin("replay", "--tenant", "acme", "--name", "awards", "--version", "1")["Summary"]["Same"] == 1


def test_a_shadow_version_runs_beside_live_traffic_and_never_writes(server, tmp_path):
    t = server.tenant("acme")
    assert deploy_script(t, tmp_path, "lucky", LUCKY) == 1
    assert deploy_script(t, tmp_path, "lucky", LUCKY_V2) == 2
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "lucky:1"})
    status, config = api(t, "PUT", "/synctrig/functions/lucky/recording", {"Enabled": True, "ShadowVersion": 2})
    assert status == 200 and config["ShadowVersion"] == 2, config
    users = []
    for n in range(3):
        identity, user = t.identity()
        sync(user, t.pool, identity, "d", [put("n", str(n))])
        users.append((identity, user))
    listed = recorded(t, "lucky", 3)
    assert all(r["ShadowVersion"] == 2 and r["ShadowOutcome"] == "ok" for r in listed), listed

    # Only version 1 wrote: no `v2` record, and `lucky` is version 1's fraction.
    for identity, user in users:
        got, _ = records(user, t.pool, identity, "d")
        assert "v2" not in got and "." in got["lucky"][0], got

    status, report = api(t, "GET", "/synctrig/functions/lucky/shadow")
    assert status == 200 and report["Candidate"] == "shadow: version 2", report
    assert report["Summary"]["Different"] == 3, report["Summary"]
    for i in report["Invocations"]:
        was = response_records(t, "lucky", i["RecordingId"])["lucky"]["newValue"]
        assert [d["Key"] for d in i["Diff"]] == ["lucky", "v2"]
        assert i["Diff"][0]["Replayed"]["NewValue"] == str(int(float(was) * 1000))


def test_recordings_are_their_tenants_only_and_go_when_recording_is_turned_off(server, tmp_path):
    acme = server.tenant("acme")
    deploy_script(acme, tmp_path, "f", LUCKY)
    acme.dev.set_cognito_events(IdentityPoolId=acme.pool, Events={"SyncTrigger": "f"})
    api(acme, "PUT", "/synctrig/functions/f/recording", {"Enabled": True, "MaxCount": 2})
    identity, user = acme.identity()
    for n in range(3):
        sync(user, acme.pool, identity, f"d{n}", [put("n", str(n))])
    for _ in range(200):
        kept = recorded(acme, "f", 2)
        if kept[0]["DatasetName"] == "d2":
            break
        time.sleep(0.05)
    # MaxCount 2 keeps the last two.
    assert [r["DatasetName"] for r in kept] == ["d2", "d1"], kept
    rid = kept[0]["Id"]

    # Another tenant, even with a function of the same name, reaches none of them.
    other = server.tenant("other")
    for method, path in [("GET", "/synctrig/functions/f/recordings"), ("GET", f"/synctrig/functions/f/recordings/{rid}")]:
        status, error = api(other, method, path)
        assert (status, error.get("__type")) == (404, "ResourceNotFoundException"), error
    deploy_script(other, tmp_path, "f", LUCKY)
    assert api(other, "GET", "/synctrig/functions/f/recordings") == (200, {"Recordings": []})
    for method, path in [
        ("GET", f"/synctrig/functions/f/recordings/{rid}"),
        ("DELETE", f"/synctrig/functions/f/recordings/{rid}"),
    ]:
        status, error = api(other, method, path)
        assert status == 404, error
    status, report = api(other, "POST", "/synctrig/functions/f/replay", {"Version": 1, "RecordingIds": [rid]})
    assert status == 404, report
    # A device's own credentials reach no function's recordings.
    c = server.client("cognito-identity", "unused", "unused").get_credentials_for_identity(IdentityId=identity)["Credentials"]
    device = Credentials(c["AccessKeyId"], c["SecretKey"], c["SessionToken"])
    status, error = api(acme, "GET", "/synctrig/functions/f/recordings", credentials=device)
    assert (status, error.get("__type")) == (403, "NotAuthorizedException"), error
    assert len(recorded(acme, "f", 2)) == 2

    # Deleted one by one, then all with recording turned off.
    assert api(acme, "DELETE", f"/synctrig/functions/f/recordings/{rid}") == (200, {"Deleted": 1})
    assert [r["Id"] for r in recorded(acme, "f", 1)] == [kept[1]["Id"]]
    assert api(acme, "PUT", "/synctrig/functions/f/recording", {"Enabled": False}) == (
        200,
        {"FunctionName": "f", "Enabled": False},
    )
    assert api(acme, "GET", "/synctrig/functions/f/recordings") == (200, {"Recordings": []})
    for body in [{"Enabled": True, "MaxCount": 0}, {"Enabled": True, "MaxAgeSeconds": 10}, {"Enabled": False, "MaxCount": 5}]:
        status, error = api(acme, "PUT", "/synctrig/functions/f/recording", body)
        assert (status, error.get("__type")) == (400, "InvalidParameterException"), (body, error)
    status, error = api(acme, "PUT", "/synctrig/functions/f/recording", {"Enabled": True, "ShadowVersion": 7})
    assert status == 404, error


def test_a_function_is_deleted_with_its_recordings_but_not_while_a_pool_names_it(server, tmp_path):
    t = server.tenant("acme")
    deploy_script(t, tmp_path, "f", LUCKY)
    deploy_script(t, tmp_path, "other", LUCKY)
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "f"})
    api(t, "PUT", "/synctrig/functions/f/recording", {"Enabled": True})
    identity, user = t.identity()
    sync(user, t.pool, identity, "d", [put("n", "1")])
    recorded(t, "f", 1)

    status, error = api(t, "DELETE", "/synctrig/functions/f")
    assert (status, error.get("__type")) == (409, "ResourceConflictException"), error
    assert len(recorded(t, "f", 1)) == 1
    t.dev.set_cognito_events(IdentityPoolId=t.pool, Events={"SyncTrigger": "other"})
    assert api(t, "DELETE", "/synctrig/functions/f") == (200, {"FunctionName": "f", "DeletedVersions": 1})
    for path in ["/synctrig/functions/f", "/synctrig/functions/f/recordings", "/synctrig/functions/f/recording"]:
        status, error = api(t, "GET", path)
        assert (status, error.get("__type")) == (404, "ResourceNotFoundException"), (path, error)
    assert api(t, "DELETE", "/synctrig/functions/f")[0] == 404
    # The pool cannot name it any more; deployed again, it starts afresh.
    status, error = api(t, "POST", f"/identitypools/{t.pool}/events", {"Events": {"SyncTrigger": "f"}})
    assert (status, error.get("__type")) == (400, "InvalidParameterException"), error
    assert deploy_script(t, tmp_path, "f", LUCKY) == 1
    assert api(t, "GET", "/synctrig/functions/f/recording") == (200, {"FunctionName": "f", "Enabled": False})
    assert server.admin("delete-function", "--tenant", "acme", "--name", "f") == {"tenant": "acme", "deleted": "f", "versions": 1}
