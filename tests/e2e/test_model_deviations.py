"""The deviations from the API models that an independent check found (issue 21), each
through the client that found it: the Cognito Sync Manager, the AWS CLI, boto3. The
generated check over every operation is test_conformance.py; these pin the cases a user met."""

import http.client
import json
import os
import subprocess
import sys
import urllib.parse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import records, sync
from test_identities import DEV_PROVIDER, OWN, App, error_of, issuer, put  # noqa: F401 (issuer: a fixture)
from test_js_clients import node

POOL_NAME = "acme game"
USER_POOL = "cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc"


def unchecked(server, service, key, secret, token=None):
    """A boto3 client that sends what it is given, as a client of another SDK might."""
    return boto3.client(
        service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
        aws_session_token=token, config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
    )


def test_the_sync_manager_lists_its_datasets_and_synchronizes_after(server):
    # Item 1: refreshDatasetMetadata lists with MaxResults=64; a refused page crashed the library.
    t = server.tenant("acme")
    out = json.loads(node("clients.mjs", "dataset-metadata", "--url", server.url, "--pool", t.pool).splitlines()[-1])
    assert out["first"] == "success", out
    assert out["uncaught"] is None, out["uncaught"]
    assert out["refreshed"] == {"names": ["profile"]}, out
    assert out["after"] == "success", out
    assert out["server"]["records"] == [["k", "v", 1], ["k2", "v2", 2]]
    listed = [h for h in out["http"] if h[1] == "listDatasets"]
    assert listed and all(h[2] == 200 for h in listed), listed


def test_page_sizes_past_the_servers_are_clamped_and_bad_ones_refused(server):
    t = server.tenant("acme")
    identity, user = t.identity()
    for i in range(3):
        sync(user, t.pool, identity, f"d{i}", [put("k", "v")])
    # The model puts no bound on these: a larger page size gives the server's page.
    datasets = t.dev.list_datasets(IdentityPoolId=t.pool, IdentityId=identity, MaxResults=64)
    assert [d["DatasetName"] for d in datasets["Datasets"]] == ["d0", "d1", "d2"]
    page = t.dev.list_datasets(IdentityPoolId=t.pool, IdentityId=identity, MaxResults=2)
    assert page["Count"] == 2 and "NextToken" in page
    assert t.dev.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d0", MaxResults=5000)["Count"] == 1
    # More pools than a page holds: MaxResults past 60 gives a page of 60, then the rest.
    admin = server.client("cognito-identity", t.key, t.secret)
    pools = {t.pool} | {admin.create_identity_pool(IdentityPoolName=f"p{i}", AllowUnauthenticatedIdentities=True)["IdentityPoolId"] for i in range(60)}
    usage = t.dev.list_identity_pool_usage(MaxResults=100)
    assert usage["MaxResults"] == 60 and usage["Count"] == 60 and "NextToken" in usage
    rest = t.dev.list_identity_pool_usage(MaxResults=100, NextToken=usage["NextToken"])
    assert {u["IdentityPoolId"] for u in usage["IdentityPoolUsages"] + rest["IdentityPoolUsages"]} == pools
    # 0, negatives and non-numbers are still refused, and say why.
    raw = unchecked(server, "cognito-sync", t.key, t.secret)
    for bad in (0, -1, "abc", "1.5"):
        for call in (
            lambda: raw.list_datasets(IdentityPoolId=t.pool, IdentityId=identity, MaxResults=bad),
            lambda: raw.list_records(IdentityPoolId=t.pool, IdentityId=identity, DatasetName="d0", MaxResults=bad),
            lambda: raw.list_identity_pool_usage(MaxResults=bad),
        ):
            with pytest.raises(ClientError) as e:
                call()
            assert error_of(e)[:2] == ("InvalidParameterException", 400), bad


def aws_cli(server, key, secret, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1", AWS_MAX_ATTEMPTS="1")
    env.pop("AWS_PROFILE", None)
    return subprocess.run([sys.executable, "-m", "awscli", *args, "--endpoint-url", server.url], capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    "setting",
    [
        ["--cognito-identity-providers", f"ProviderName={USER_POOL},ClientId=client-id!"],
        ["--cognito-identity-providers", f'ProviderName={USER_POOL},ClientId="abc_123,"'],
        ["--cognito-identity-providers", f"ProviderName={USER_POOL},ClientId={'c' * 129}"],
        ["--cognito-identity-providers", f"ProviderName={'p' * 129},ClientId=abc"],
        ["--cognito-identity-providers", 'ProviderName="cognito-idp.us-east-1.amazonaws.com/a,b",ClientId=abc'],
        ["--supported-login-providers", "accounts.google.com=my client"],
    ],
)
def test_pool_settings_the_model_forbids_are_refused_and_change_nothing(server, setting):
    # Item 2, through the AWS CLI as the check did: CreateIdentityPool and UpdateIdentityPool.
    app = App(server)
    out = aws_cli(server, app.key, app.secret, "cognito-identity", "create-identity-pool", "--identity-pool-name", "bad", "--allow-unauthenticated-identities", *setting)
    assert out.returncode != 0 and "InvalidParameterException" in out.stderr, (out.stdout, out.stderr)
    assert "failed to satisfy constraint" in out.stderr
    out = aws_cli(
        server, app.key, app.secret, "cognito-identity", "update-identity-pool", "--identity-pool-id", app.pool,
        "--identity-pool-name", POOL_NAME, "--allow-unauthenticated-identities", "--developer-provider-name", DEV_PROVIDER, *setting,
    )
    assert out.returncode != 0 and "InvalidParameterException" in out.stderr, (out.stdout, out.stderr)
    pools = app.admin.list_identity_pools(MaxResults=60)["IdentityPools"]
    assert [p["IdentityPoolId"] for p in pools] == [app.pool], "nothing was created"
    described = app.admin.describe_identity_pool(IdentityPoolId=app.pool)
    assert "CognitoIdentityProviders" not in described and "SupportedLoginProviders" not in described


def test_valid_provider_settings_are_kept(server):
    app = App(server)
    providers = [{"ProviderName": USER_POOL, "ClientId": "abc_123", "ServerSideTokenCheck": False}]
    shape = dict(
        IdentityPoolId=app.pool, IdentityPoolName=POOL_NAME, AllowUnauthenticatedIdentities=True,
        DeveloperProviderName=DEV_PROVIDER, CognitoIdentityProviders=providers,
        SupportedLoginProviders={"accounts.google.com": "a.apps.googleusercontent.com;b.apps.googleusercontent.com"},
    )
    app.admin.update_identity_pool(**shape)
    described = app.admin.describe_identity_pool(IdentityPoolId=app.pool)
    assert described["CognitoIdentityProviders"] == providers
    assert described["SupportedLoginProviders"] == shape["SupportedLoginProviders"]


def test_get_id_checks_the_account_id_and_listings_an_empty_next_token(server):
    # Item 3.
    app = App(server)
    raw = unchecked(server, "cognito-identity", "unused", "unused")
    for account in ("", "12ab", "1" * 16, 123456789012):
        with pytest.raises(ClientError) as e:
            raw.get_id(IdentityPoolId=app.pool, AccountId=account)
        code, status, message = error_of(e)
        assert (code, status) == ("InvalidParameterException", 400), account
        assert "at 'AccountId'" in message
    assert app.public.get_id(IdentityPoolId=app.pool, AccountId="123456789012")["IdentityId"]
    admin = unchecked(server, "cognito-identity", app.key, app.secret)
    for call in (
        lambda: admin.list_identity_pools(MaxResults=10, NextToken=""),
        lambda: admin.list_identities(IdentityPoolId=app.pool, MaxResults=10, NextToken=""),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e)[0] == "InvalidParameterException"
        assert "at 'NextToken'" in error_of(e)[2]


def test_bad_input_is_invalid_parameter_not_another_class(server):
    # Item 4.
    app = App(server)
    admin = unchecked(server, "cognito-identity", app.key, app.secret)
    identity = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "ada"})["IdentityId"]
    cases = [
        lambda: admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId="not an id"),
        lambda: admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId=""),
        lambda: admin.unlink_developer_identity(IdentityId=identity, IdentityPoolId=app.pool, DeveloperProviderName=DEV_PROVIDER, DeveloperUserIdentifier=""),
        lambda: admin.unlink_developer_identity(
            IdentityId=identity, IdentityPoolId=app.pool, DeveloperProviderName=DEV_PROVIDER, DeveloperUserIdentifier="u" * 1025
        ),
        lambda: admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={f"p{i}.example": "t" for i in range(11)}),
    ]
    for call in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e)[:2] == ("InvalidParameterException", 400)
    # The user is still linked: nothing was unlinked.
    assert app.admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId=identity)["DeveloperUserIdentifierList"] == ["ada"]


def test_lookup_developer_identity_pages_by_max_results(server):
    # Item 5: four developer users merged into one identity, listed one and two at a time.
    app = App(server)
    users = ["u1", "u2", "u3", "u4"]
    identity = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: users[0]})["IdentityId"]
    for user in users[1:]:
        app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: user})
        app.admin.merge_developer_identities(
            SourceUserIdentifier=user, DestinationUserIdentifier=users[0], DeveloperProviderName=DEV_PROVIDER, IdentityPoolId=app.pool
        )
    for size in (1, 2, 3):
        seen, token = [], None
        while True:
            out = app.admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId=identity, MaxResults=size, **({"NextToken": token} if token else {}))
            assert out["IdentityId"] == identity and len(out["DeveloperUserIdentifierList"]) <= size
            seen += out["DeveloperUserIdentifierList"]
            token = out.get("NextToken")
            if not token:
                break
        assert seen == users, size
    whole = app.admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId=identity)
    assert whole["DeveloperUserIdentifierList"] == users and "NextToken" not in whole


def test_merged_dataset_names_keep_to_128_characters(server):
    # Item 6: a guest's 128-character dataset merged into a user's identity.
    app = App(server)
    long = "d" * 128
    user = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "ada"})["IdentityId"]
    guest_id = app.public.get_id(IdentityPoolId=app.pool)["IdentityId"]
    _, guest = app.credentials(guest_id)
    sync(guest, app.pool, guest_id, long, [put("k", "guest")])
    out = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, IdentityId=guest_id, Logins={DEV_PROVIDER: "ada"})
    assert out["IdentityId"] == user
    _, device = app.credentials(user, {OWN: out["Token"]})
    merged = records(device, app.pool, user, long)[1]["MergedDatasetNames"]
    expected = f"{long[:127 - len(guest_id)]}.{guest_id}"
    assert merged == [expected] and len(expected) == 128
    listed = [d["DatasetName"] for d in app.dev.list_datasets(IdentityPoolId=app.pool, IdentityId=user)["Datasets"]]
    assert listed == [expected]
    # The app folds it in and deletes it, as onDatasetsMerged asks.
    assert records(device, app.pool, user, expected)[0] == {"k": ("guest", 1)}
    deleted = device.delete_dataset(IdentityPoolId=app.pool, IdentityId=user, DatasetName=expected)
    assert deleted["Dataset"]["DatasetName"] == expected


def test_the_sync_manager_is_handed_a_long_merged_dataset(server, issuer):
    # Item 6, through the client whose callback depends on it.
    from test_identities import PROVIDER

    app = App(server, issuer=issuer)
    name = "s" * 128
    logins = json.dumps({PROVIDER: issuer.token("ada")})
    out = node("clients.mjs", "logins-merge", "--url", server.url, "--pool", app.pool, "--logins", logins, "--dataset", name)
    result = json.loads(out.splitlines()[-1])
    assert result["outcomes"]["u1"] == "success" and result["outcomes"]["g1"] == "success", result
    merged = [e for e in result["events"] if e[1] == "onDatasetsMerged"]
    guest = result["guestId"]
    assert merged == [["signed-in", "onDatasetsMerged", [f"{name[:127 - len(guest)]}.{guest}"]]], result["events"]


def test_identity_errors_carry_the_protocols_content_type(server):
    # Item 7: answers and errors of JSON 1.1 alike.
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    for body in (b'{"IdentityPoolId": "us-east-1:00000000-0000-0000-0000-000000000000"}', b'{"IdentityPoolId": "bad"}', b"[1"):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("POST", "/", body, {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSCognitoIdentityService.GetId"})
        response = conn.getresponse()
        payload = json.loads(response.read())
        assert response.status == 400 and payload["__type"] in ("ResourceNotFoundException", "InvalidParameterException"), payload
        assert response.getheader("Content-Type") == "application/x-amz-json-1.1"


def test_lengths_are_counted_in_characters_not_bytes(server):
    # Found by the generated check: 65 two-byte characters are within the model's 128.
    app = App(server)
    wide = "é" * 65
    with pytest.raises(ClientError) as e:
        app.public.get_id(IdentityPoolId=app.pool, Logins={wide: "token"})
    assert error_of(e)[0] == "NotAuthorizedException" and "is not configured" in error_of(e)[2]
    with pytest.raises(ClientError) as e:
        app.public.get_id(IdentityPoolId=app.pool, Logins={"login.example": "é" * 25001})
    assert error_of(e)[0] == "NotAuthorizedException"
    created = app.admin.create_identity_pool(
        IdentityPoolName="wide", AllowUnauthenticatedIdentities=True, SupportedLoginProviders={wide: "client"}
    )
    assert created["SupportedLoginProviders"] == {wide: "client"}
    # Past the model's bound, in characters, it is refused.
    with pytest.raises(ClientError) as e:
        app.admin.create_identity_pool(IdentityPoolName="wider", AllowUnauthenticatedIdentities=True, SupportedLoginProviders={"é" * 129: "c"})
    assert error_of(e)[0] == "InvalidParameterException" and "at 'SupportedLoginProviders.key'" in error_of(e)[2]
