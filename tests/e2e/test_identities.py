"""Logged-in users across devices: identity pools through the Cognito Identity API (boto3
and the AWS CLI), OpenID Connect logins from a test issuer (keys made here, JWKS in a
file), developer-authenticated identities, linking and merging, tenant isolation."""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

import jwt
import pytest
from botocore.exceptions import ClientError
from conftest import records, sync
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://login.test.example/realm"
PROVIDER = "login.test.example/realm"  # the Logins key: the issuer without its scheme
ARN = f"arn:aws:iam::123456789012:oidc-provider/{PROVIDER}"
AUDIENCE = "app-client"
DEV_PROVIDER = "login.acme.game"
OWN = "cognito-identity.amazonaws.com"


def error_of(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


class Issuer:
    """A test OpenID Connect issuer: an RSA and an EC key, published as a JWKS file."""

    def __init__(self, tmp_path):
        self.keys = {"rsa1": rsa.generate_private_key(public_exponent=65537, key_size=2048), "ec1": ec.generate_private_key(ec.SECP256R1())}
        self.algs = {"rsa1": "RS256", "ec1": "ES256"}
        self.jwks_file = tmp_path / "jwks.json"
        self.write_jwks()

    def write_jwks(self):
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[self.algs[kid]].to_jwk(key.public_key()))
            keys.append(dict(jwk, kid=kid, use="sig", alg=self.algs[kid]))
        self.jwks_file.write_text(json.dumps({"keys": keys}))

    def token(self, sub, kid="rsa1", aud=AUDIENCE, iss=ISSUER, ttl=600, key=None, **claims):
        now = int(time.time())
        body = {"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + ttl, **claims}
        return jwt.encode(body, key or self.keys[kid], algorithm=self.algs[kid], headers={"kid": kid})


@pytest.fixture
def issuer(tmp_path):
    return Issuer(tmp_path)


class App:
    """A tenant with a pool made through CreateIdentityPool, and what its devices call."""

    def __init__(self, server, name="acme", issuer=None, audience=AUDIENCE, **pool):
        creds = server.admin("create-tenant", name)
        if issuer:
            # The tenant registers the issuer its apps' users sign in with.
            out = server.admin("register-issuer", "--tenant", name, "--issuer", ISSUER, "--audience", audience, "--jwks-file", str(issuer.jwks_file))
            assert out["openIdConnectProviderArn"].endswith(f":oidc-provider/{PROVIDER}")
        self.server, self.key, self.secret = server, creds["accessKeyId"], creds["secretAccessKey"]
        self.admin = server.client("cognito-identity", self.key, self.secret)
        self.dev = server.client("cognito-sync", self.key, self.secret)
        self.public = server.client("cognito-identity", "unused", "unused")
        settings = {
            "IdentityPoolName": f"{name} game",
            "AllowUnauthenticatedIdentities": True,
            "OpenIdConnectProviderARNs": [ARN] if issuer else [],
            "DeveloperProviderName": DEV_PROVIDER,
            **pool,
        }
        self.pool_shape = self.admin.create_identity_pool(**settings)
        self.pool = self.pool_shape["IdentityPoolId"]

    def login(self, logins):
        """GetId and GetCredentialsForIdentity with `logins`: (identity id, cognito-sync client)."""
        identity = self.public.get_id(IdentityPoolId=self.pool, Logins=logins)["IdentityId"]
        return self.credentials(identity, logins)

    def credentials(self, identity, logins=None):
        out = self.public.get_credentials_for_identity(IdentityId=identity, **({"Logins": logins} if logins else {}))
        c = out["Credentials"]
        return out["IdentityId"], self.server.client("cognito-sync", c["AccessKeyId"], c["SecretKey"], c["SessionToken"])


def test_pools_are_managed_through_the_api(server, issuer):
    app = App(server, issuer=issuer)
    shape = app.pool_shape
    assert shape["IdentityPoolName"] == "acme game" and shape["AllowUnauthenticatedIdentities"] is True
    assert shape["OpenIdConnectProviderARNs"] == [ARN] and shape["DeveloperProviderName"] == DEV_PROVIDER
    assert "SupportedLoginProviders" not in shape and "CognitoIdentityProviders" not in shape
    described = app.admin.describe_identity_pool(IdentityPoolId=app.pool)
    described.pop("ResponseMetadata")
    shape.pop("ResponseMetadata")
    assert described == shape
    updated = app.admin.update_identity_pool(
        IdentityPoolId=app.pool,
        IdentityPoolName="renamed",
        AllowUnauthenticatedIdentities=False,
        OpenIdConnectProviderARNs=[ARN],
        DeveloperProviderName=DEV_PROVIDER,
        SupportedLoginProviders={"accounts.google.com": "google-client"},
        CognitoIdentityProviders=[{"ProviderName": "cognito-idp.us-east-1.amazonaws.com/us-east-1_abc", "ClientId": "c1"}],
    )
    assert updated["IdentityPoolName"] == "renamed" and updated["AllowUnauthenticatedIdentities"] is False
    assert updated["SupportedLoginProviders"] == {"accounts.google.com": "google-client"}
    assert updated["CognitoIdentityProviders"][0]["ClientId"] == "c1"
    # Pages of ListIdentityPools, one pool at a time, see every pool once.
    others = [app.admin.create_identity_pool(IdentityPoolName=f"p{i}", AllowUnauthenticatedIdentities=True)["IdentityPoolId"] for i in range(3)]
    seen, token = [], None
    while True:
        page = app.admin.list_identity_pools(MaxResults=1, **({"NextToken": token} if token else {}))
        seen += [p["IdentityPoolId"] for p in page["IdentityPools"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted([app.pool, *others])
    # Refused configurations change nothing.
    refusals = [
        {"SupportedLoginProviders": {"graph.facebook.com": "123"}},
        {"OpenIdConnectProviderARNs": ["arn:aws:iam::123456789012:oidc-provider/unregistered.example"]},
        {"OpenIdConnectProviderARNs": ["arn:aws:iam::acct:oidc-provider/x.example"]},
        {"SamlProviderARNs": ["arn:aws:iam::123456789012:saml-provider/x"]},
        {"DeveloperProviderName": OWN},
    ]
    for extra in refusals:
        with pytest.raises(ClientError) as e:
            app.admin.create_identity_pool(IdentityPoolName="bad", AllowUnauthenticatedIdentities=True, **extra)
        code, status, message = error_of(e)
        assert (code, status) == ("InvalidParameterException", 400), (extra, message)
    with pytest.raises(ClientError) as e:
        app.admin.create_identity_pool(IdentityPoolName="bad", AllowUnauthenticatedIdentities=True, SupportedLoginProviders={"graph.facebook.com": "1"})
    assert "graph.facebook.com" in error_of(e)[2] and "does not do" in error_of(e)[2]
    assert len(app.admin.list_identity_pools(MaxResults=60)["IdentityPools"]) == 4
    # Deleting a pool deletes its identities, their datasets and their credentials.
    victim = others[0]
    identity = app.public.get_id(IdentityPoolId=victim)["IdentityId"]
    c = app.public.get_credentials_for_identity(IdentityId=identity)["Credentials"]
    user = server.client("cognito-sync", c["AccessKeyId"], c["SecretKey"], c["SessionToken"])
    sync(user, victim, identity, "d", [put("k", "v")])
    app.admin.delete_identity_pool(IdentityPoolId=victim)
    for call in (
        lambda: app.admin.describe_identity_pool(IdentityPoolId=victim),
        lambda: app.public.get_id(IdentityPoolId=victim),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e)[:2] == ("ResourceNotFoundException", 400)
    with pytest.raises(ClientError) as e:
        user.list_datasets(IdentityPoolId=victim, IdentityId=identity)
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)


def test_the_aws_cli_creates_and_lists_pools(server):
    creds = server.admin("create-tenant", "acme")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=creds["accessKeyId"], AWS_SECRET_ACCESS_KEY=creds["secretAccessKey"], AWS_DEFAULT_REGION="us-east-1")
    env.pop("AWS_SESSION_TOKEN", None)
    cli = [sys.executable, "-m", "awscli", "cognito-identity", "--endpoint-url", server.url, "--output", "json"]
    out = subprocess.run(
        [*cli, "create-identity-pool", "--identity-pool-name", "from cli", "--allow-unauthenticated-identities", "--developer-provider-name", DEV_PROVIDER],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    pool = json.loads(out.stdout)
    assert pool["IdentityPoolName"] == "from cli" and pool["AllowUnauthenticatedIdentities"] is True
    listed = subprocess.run([*cli, "list-identity-pools", "--max-results", "10"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [p["IdentityPoolId"] for p in json.loads(listed.stdout)["IdentityPools"]] == [pool["IdentityPoolId"]]
    # The pool works for a device at once.
    ident = server.client("cognito-identity", "unused", "unused")
    identity = ident.get_id(IdentityPoolId=pool["IdentityPoolId"])["IdentityId"]
    assert identity.startswith("us-east-1:")
    bad = subprocess.run([*cli, "describe-identity-pool", "--identity-pool-id", "us-east-1:00000000-0000-0000-0000-000000000000"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode != 0 and "ResourceNotFoundException" in bad.stderr


@pytest.mark.parametrize("kids", [("rsa1", "ec1"), ("ec1", "rsa1")])
def test_two_devices_of_one_user_share_the_identity_and_its_data(server, issuer, kids):
    app = App(server, issuer=issuer)
    # The seed's sample trigger runs for logged-in identities exactly as for the others.
    server.admin("deploy", "--tenant", "acme", "--name", "trigger", "--wasm", str(__import__("conftest").guest("sample_trigger")))
    app.dev.set_cognito_events(IdentityPoolId=app.pool, Events={"SyncTrigger": "trigger"})
    a_id, device_a = app.login({PROVIDER: issuer.token("user-1", kid=kids[0])})
    b_id, device_b = app.login({PROVIDER: issuer.token("user-1", kid=kids[1])})
    assert a_id == b_id
    out = sync(device_a, app.pool, a_id, "game", [put("SampleKey1", "newValue1"), put("level", "7")])
    assert {r["Key"]: r.get("Value") for r in out["Records"]} == {"SampleKey1": "ModifyValue1", "SampleKey3": "ModifyValue3", "level": "7"}
    got, _ = records(device_b, app.pool, b_id, "game")
    assert got == {"SampleKey1": ("ModifyValue1", 1), "SampleKey3": ("ModifyValue3", 1), "level": ("7", 1)}
    # Another user is another identity, which cannot read the first one's data.
    c_id, device_c = app.login({PROVIDER: issuer.token("user-2")})
    assert c_id != a_id
    with pytest.raises(ClientError) as e:
        device_c.list_records(IdentityPoolId=app.pool, IdentityId=a_id, DatasetName="game")
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)
    # The identity is authenticated: credentials need one of its logins.
    with pytest.raises(ClientError) as e:
        app.public.get_credentials_for_identity(IdentityId=a_id)
    assert error_of(e) == ("NotAuthorizedException", 400, "Logins don't match. Please include at least one valid login for this identity or identity pool.")
    described = app.admin.describe_identity(IdentityId=a_id)
    assert described["Logins"] == [PROVIDER]


def test_an_unauthenticated_identity_logging_in_is_merged_into_the_user(server, issuer):
    app = App(server, issuer=issuer)
    user_id, user = app.login({PROVIDER: issuer.token("user-1")})
    sync(user, app.pool, user_id, "settings", [put("theme", "dark")])
    # The same person played on a new device before logging in.
    guest_id = app.public.get_id(IdentityPoolId=app.pool)["IdentityId"]
    _, guest = app.credentials(guest_id)
    sync(guest, app.pool, guest_id, "settings", [put("theme", "light")])
    sync(guest, app.pool, guest_id, "scores", [put("best", "42")])
    # Logging in on that device: the login belongs to the user, so the guest merges in.
    merged_id, after = app.credentials(guest_id, {PROVIDER: issuer.token("user-1", kid="ec1")})
    assert merged_id == user_id
    got, listing = records(after, app.pool, user_id, "settings")
    assert got == {"theme": ("dark", 1)}
    assert listing["MergedDatasetNames"] == [f"settings.{guest_id}"]
    assert records(after, app.pool, user_id, "scores")[1]["MergedDatasetNames"] == [f"scores.{guest_id}"]
    moved, _ = records(after, app.pool, user_id, f"settings.{guest_id}")
    assert moved == {"theme": ("light", 1)}
    names = sorted(d["DatasetName"] for d in after.list_datasets(IdentityPoolId=app.pool, IdentityId=user_id)["Datasets"])
    assert names == sorted(["settings", f"settings.{guest_id}", f"scores.{guest_id}"])
    # The merged-away identity is disabled at once: its credentials, its id.
    with pytest.raises(ClientError) as e:
        guest.list_datasets(IdentityPoolId=app.pool, IdentityId=guest_id)
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)
    with pytest.raises(ClientError) as e:
        app.public.get_credentials_for_identity(IdentityId=guest_id)
    assert error_of(e)[0] == "NotAuthorizedException"
    # An app folds the merged dataset in and deletes it, as the Sync Manager does.
    after.delete_dataset(IdentityPoolId=app.pool, IdentityId=user_id, DatasetName=f"settings.{guest_id}")
    assert records(after, app.pool, user_id, "settings")[1].get("MergedDatasetNames", []) == []
    listed = app.admin.list_identities(IdentityPoolId=app.pool, MaxResults=60, HideDisabled=True)["Identities"]
    assert [i["IdentityId"] for i in listed] == [user_id]
    assert len(app.admin.list_identities(IdentityPoolId=app.pool, MaxResults=60)["Identities"]) == 2


def test_a_new_login_on_an_unauthenticated_identity_is_linked_to_it(server, issuer):
    app = App(server, issuer=issuer)
    guest_id = app.public.get_id(IdentityPoolId=app.pool)["IdentityId"]
    _, guest = app.credentials(guest_id)
    sync(guest, app.pool, guest_id, "d", [put("k", "v")])
    same, linked = app.credentials(guest_id, {PROVIDER: issuer.token("new-user")})
    assert same == guest_id
    assert records(linked, app.pool, guest_id, "d")[0] == {"k": ("v", 1)}
    # From now on the login finds this identity.
    assert app.public.get_id(IdentityPoolId=app.pool, Logins={PROVIDER: issuer.token("new-user", kid="ec1")})["IdentityId"] == guest_id


def unsigned_token(sub):
    enc = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    now = int(time.time())
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc({'iss': ISSUER, 'sub': sub, 'aud': AUDIENCE, 'exp': now + 600})}."


def test_bad_tokens_are_refused(server, issuer):
    app = App(server, issuer=issuer)
    user_id, _ = app.login({PROVIDER: issuer.token("user-1")})
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "expired": issuer.token("user-1", ttl=-3600),
        "not yet valid": issuer.token("user-1", nbf=int(time.time()) + 3600),
        "wrong audience": issuer.token("user-1", aud="another-app"),
        "wrong issuer": issuer.token("user-1", iss="https://evil.example"),
        "forged": issuer.token("user-1", key=stranger),
        "alg none": unsigned_token("user-1"),
        "HS256 with the public key": jwt.encode(
            {"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "exp": int(time.time()) + 600},
            issuer.jwks_file.read_text().replace("{", "(", 1),
            algorithm="HS256",
            headers={"kid": "rsa1"},
        ),
        "unknown key id": jwt.encode(
            {"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "exp": int(time.time()) + 600}, issuer.keys["rsa1"], algorithm="RS256", headers={"kid": "nope"}
        ),
        "not a token": "hello",
        "tampered payload": (lambda t: t.split(".")[0] + "." + base64.urlsafe_b64encode(json.dumps({"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "exp": 2**40}).encode()).rstrip(b"=").decode() + "." + t.split(".")[2])(issuer.token("user-9")),
    }
    public_n = json.loads(issuer.jwks_file.read_text())["keys"][0]["n"]
    for what, token in bad.items():
        for call in (
            lambda: app.public.get_id(IdentityPoolId=app.pool, Logins={PROVIDER: token}),
            lambda: app.public.get_credentials_for_identity(IdentityId=user_id, Logins={PROVIDER: token}),
        ):
            with pytest.raises(ClientError) as e:
                call()
            code, status, message = error_of(e)
            assert (code, status) == ("NotAuthorizedException", 400), (what, message)
            assert message.startswith("Invalid login token."), (what, message)
            assert public_n[:16] not in message
    # A provider the pool does not accept.
    with pytest.raises(ClientError) as e:
        app.public.get_id(IdentityPoolId=app.pool, Logins={"accounts.google.com": issuer.token("user-1")})
    assert error_of(e)[0] == "NotAuthorizedException" and "not configured for this identity pool" in error_of(e)[2]
    # Nothing was created by any of them.
    assert len(app.admin.list_identities(IdentityPoolId=app.pool, MaxResults=60)["Identities"]) == 1


def test_a_rotated_key_is_read_again_from_the_jwks_file(server, issuer):
    app = App(server, issuer=issuer)
    issuer.keys["ec2"] = ec.generate_private_key(ec.SECP256R1())
    issuer.algs["ec2"] = "ES256"
    issuer.write_jwks()
    identity, _ = app.login({PROVIDER: issuer.token("user-1", kid="ec2")})
    assert identity.startswith("us-east-1:")


def test_someone_elses_login_cannot_take_over_an_identity(server, issuer):
    app = App(server, issuer=issuer)
    victim_id, victim = app.login({PROVIDER: issuer.token("victim")})
    sync(victim, app.pool, victim_id, "secret", [put("k", "v")])
    # A new login presented for the victim's identity is not linked to it.
    for logins in ({PROVIDER: issuer.token("attacker")}, {}):
        with pytest.raises(ClientError) as e:
            app.public.get_credentials_for_identity(IdentityId=victim_id, **({"Logins": logins} if logins else {}))
        assert error_of(e)[0] == "NotAuthorizedException"
    # An attacker with an account of their own cannot merge into, or from, the victim.
    attacker_id, _ = app.login({PROVIDER: issuer.token("attacker2")})
    with pytest.raises(ClientError) as e:
        app.public.get_credentials_for_identity(IdentityId=victim_id, Logins={PROVIDER: issuer.token("attacker2")})
    assert error_of(e)[0] == "NotAuthorizedException"
    # A token this server issued for another identity does not open this one.
    token = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "mallory"})["Token"]
    with pytest.raises(ClientError) as e:
        app.public.get_credentials_for_identity(IdentityId=victim_id, Logins={OWN: token})
    assert error_of(e)[0] == "NotAuthorizedException"
    assert app.admin.describe_identity(IdentityId=victim_id)["Logins"] == [PROVIDER]
    assert app.admin.describe_identity(IdentityId=attacker_id)["Logins"] == [PROVIDER]
    assert records(victim, app.pool, victim_id, "secret")[0] == {"k": ("v", 1)}


def test_developer_authenticated_identities_end_to_end(server):
    app = App(server)
    out = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "user-42"}, TokenDuration=600)
    identity, token = out["IdentityId"], out["Token"]
    # Anyone can verify the token with the keys the server publishes.
    discovery = json.load(urllib.request.urlopen(f"{server.url}/.well-known/openid-configuration"))
    assert discovery["issuer"] == server.url
    jwks = json.load(urllib.request.urlopen(discovery["jwks_uri"]))
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(token, key, algorithms=["ES256"], audience=app.pool, issuer=server.url)
    assert claims["sub"] == identity and claims["amr"][0] == "authenticated" and claims["exp"] - claims["iat"] == 600
    # Two devices of user-42 sync through the same identity.
    a_id, device_a = app.credentials(identity, {OWN: token})
    token_b = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "user-42"})["Token"]
    b_id, device_b = app.credentials(identity, {OWN: token_b})
    assert a_id == b_id == identity
    sync(device_a, app.pool, identity, "profile", [put("name", "Ada")])
    assert records(device_b, app.pool, identity, "profile")[0] == {"name": ("Ada", 1)}
    # GetOpenIdToken refreshes a token for the identity.
    refreshed = app.public.get_open_id_token(IdentityId=identity, Logins={OWN: token})
    assert refreshed["IdentityId"] == identity
    assert jwt.decode(refreshed["Token"], key, algorithms=["ES256"], audience=app.pool, issuer=server.url)["sub"] == identity
    # LookupDeveloperIdentity both ways.
    found = app.admin.lookup_developer_identity(IdentityPoolId=app.pool, DeveloperUserIdentifier="user-42")
    assert found["IdentityId"] == identity and found["DeveloperUserIdentifierList"] == ["user-42"]
    assert app.admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId=identity)["DeveloperUserIdentifierList"] == ["user-42"]
    # A second account of the same person is merged into the first by the backend.
    other = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "user-43"})
    _, other_device = app.credentials(other["IdentityId"], {OWN: other["Token"]})
    sync(other_device, app.pool, other["IdentityId"], "profile", [put("name", "Ada L.")])
    merged = app.admin.merge_developer_identities(
        SourceUserIdentifier="user-43", DestinationUserIdentifier="user-42", DeveloperProviderName=DEV_PROVIDER, IdentityPoolId=app.pool
    )
    assert merged["IdentityId"] == identity
    assert records(device_a, app.pool, identity, "profile")[1]["MergedDatasetNames"] == [f"profile.{other['IdentityId']}"]
    assert sorted(app.admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId=identity)["DeveloperUserIdentifierList"]) == ["user-42", "user-43"]
    with pytest.raises(ClientError) as e:
        other_device.list_datasets(IdentityPoolId=app.pool, IdentityId=other["IdentityId"])
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)
    # Unlinking a developer user.
    app.admin.unlink_developer_identity(IdentityId=identity, IdentityPoolId=app.pool, DeveloperProviderName=DEV_PROVIDER, DeveloperUserIdentifier="user-43")
    assert app.admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId=identity)["DeveloperUserIdentifierList"] == ["user-42"]
    # A developer user linked elsewhere cannot be given another identity.
    with pytest.raises(ClientError) as e:
        app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, IdentityId=other["IdentityId"], Logins={DEV_PROVIDER: "user-42"})
    assert error_of(e)[0] in ("DeveloperUserAlreadyRegisteredException", "NotAuthorizedException")
    # Deleted identities' credentials stop working at once.
    deleted = app.admin.delete_identities(IdentityIdsToDelete=[identity])
    assert deleted["UnprocessedIdentityIds"] == []
    with pytest.raises(ClientError) as e:
        device_a.list_datasets(IdentityPoolId=app.pool, IdentityId=identity)
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)


def test_a_pool_without_unauthenticated_access_needs_logins(server, issuer):
    app = App(server, issuer=issuer, AllowUnauthenticatedIdentities=False)
    with pytest.raises(ClientError) as e:
        app.public.get_id(IdentityPoolId=app.pool)
    assert error_of(e) == ("NotAuthorizedException", 400, "Unauthenticated access is not supported for this identity pool.")
    identity, device = app.login({PROVIDER: issuer.token("user-1")})
    sync(device, app.pool, identity, "d", [put("k", "v")])


def test_another_tenant_cannot_see_or_use_the_pool(server, issuer):
    app = App(server, name="alpha", issuer=issuer)
    identity, _ = app.login({PROVIDER: issuer.token("user-1")})
    beta = App(server, name="beta", issuer=issuer, audience="beta-app")
    calls = {
        "DescribeIdentityPool": lambda: beta.admin.describe_identity_pool(IdentityPoolId=app.pool),
        "UpdateIdentityPool": lambda: beta.admin.update_identity_pool(IdentityPoolId=app.pool, IdentityPoolName="x", AllowUnauthenticatedIdentities=True),
        "DeleteIdentityPool": lambda: beta.admin.delete_identity_pool(IdentityPoolId=app.pool),
        "ListIdentities": lambda: beta.admin.list_identities(IdentityPoolId=app.pool, MaxResults=10),
        "DescribeIdentity": lambda: beta.admin.describe_identity(IdentityId=identity),
        "GetOpenIdTokenForDeveloperIdentity": lambda: beta.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "u"}),
        "LookupDeveloperIdentity": lambda: beta.admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId=identity),
    }
    for name, call in calls.items():
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e)[:2] == ("ResourceNotFoundException", 400), name
    out = beta.admin.delete_identities(IdentityIdsToDelete=[identity])
    assert out["UnprocessedIdentityIds"] == [{"IdentityId": identity, "ErrorCode": "AccessDenied"}]
    assert [p["IdentityPoolId"] for p in beta.admin.list_identity_pools(MaxResults=60)["IdentityPools"]] == [beta.pool]
    # Identity credentials cannot manage pools; an unsigned call cannot either.
    _, device = app.login({PROVIDER: issuer.token("user-1")})
    c = app.public.get_credentials_for_identity(IdentityId=identity, Logins={PROVIDER: issuer.token("user-1")})["Credentials"]
    as_identity = server.client("cognito-identity", c["AccessKeyId"], c["SecretKey"], c["SessionToken"])
    with pytest.raises(ClientError) as e:
        as_identity.list_identity_pools(MaxResults=10)
    assert error_of(e)[0] == "NotAuthorizedException"
    assert app.admin.describe_identity_pool(IdentityPoolId=app.pool)["IdentityPoolName"] == "alpha game"


def test_unsupported_operations_say_so(server):
    app = App(server)
    for call in (
        lambda: app.admin.get_identity_pool_roles(IdentityPoolId=app.pool),
        lambda: app.admin.list_tags_for_resource(ResourceArn="arn:aws:cognito-identity:us-east-1:1:identitypool/x"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        code, status, message = error_of(e)
        assert (code, status) == ("InvalidParameterException", 400) and "is not supported by synctrig-wasm" in message


def test_an_identity_whose_last_login_is_unlinked_is_closed_to_everyone(server, issuer):
    app = App(server, issuer=issuer)
    token = issuer.token("user-1")
    identity, _ = app.login({PROVIDER: token})
    app.public.unlink_identity(IdentityId=identity, Logins={PROVIDER: token}, LoginsToRemove=[PROVIDER])
    assert app.admin.describe_identity(IdentityId=identity)["Logins"] == []
    for logins in ({}, {PROVIDER: issuer.token("attacker")}, {PROVIDER: issuer.token("user-1")}):
        with pytest.raises(ClientError) as e:
            app.public.get_credentials_for_identity(IdentityId=identity, **({"Logins": logins} if logins else {}))
        assert error_of(e)[0] == "NotAuthorizedException", logins
    # The login is free again: signing in with it makes a new identity.
    assert app.public.get_id(IdentityPoolId=app.pool, Logins={PROVIDER: issuer.token("user-1")})["IdentityId"] != identity


def test_one_tenants_client_ids_do_not_open_another_tenants_pools(server, issuer):
    alpha = App(server, name="alpha", issuer=issuer)
    beta = App(server, name="beta", issuer=issuer, audience="beta-app")
    # Beta's users' tokens (for beta's app) sign in to beta's pool, not alpha's.
    beta.login({PROVIDER: issuer.token("user-1", aud="beta-app")})
    with pytest.raises(ClientError) as e:
        alpha.public.get_id(IdentityPoolId=alpha.pool, Logins={PROVIDER: issuer.token("user-1", aud="beta-app")})
    assert error_of(e)[0] == "NotAuthorizedException" and "not for a client" in error_of(e)[2]


def test_merged_dataset_names_are_exact_and_clients_cannot_make_long_names(server, issuer):
    app = App(server, issuer=issuer)
    user_id, user = app.login({PROVIDER: issuer.token("user-1")})
    guest_id = app.public.get_id(IdentityPoolId=app.pool)["IdentityId"]
    described = app.admin.describe_identity(IdentityId=guest_id)
    assert described["LastModifiedDate"].year >= 2026
    _, guest = app.credentials(guest_id)
    for name in ("game", "game.settings"):
        sync(guest, app.pool, guest_id, name, [put("k", name)])
    _, user = app.credentials(guest_id, {PROVIDER: issuer.token("user-1")})
    assert records(user, app.pool, user_id, "game")[1]["MergedDatasetNames"] == [f"game.{guest_id}"]
    assert records(user, app.pool, user_id, "game.settings")[1]["MergedDatasetNames"] == [f"game.settings.{guest_id}"]
    # A merged name past 128 characters is served; a client cannot create one.
    fake = "x" * 100 + "." + guest_id
    with pytest.raises(ClientError) as e:
        sync(user, app.pool, user_id, fake, [put("k", "v")])
    assert error_of(e)[0] == "InvalidParameterException"


def test_turning_off_unauthenticated_access_ends_guest_credentials(server, issuer):
    app = App(server, issuer=issuer)
    guest_id = app.public.get_id(IdentityPoolId=app.pool)["IdentityId"]
    _, guest = app.credentials(guest_id)
    user_id, user = app.login({PROVIDER: issuer.token("user-1")})
    sync(guest, app.pool, guest_id, "d", [put("k", "v")])
    app.admin.update_identity_pool(
        IdentityPoolId=app.pool, IdentityPoolName="acme game", AllowUnauthenticatedIdentities=False,
        OpenIdConnectProviderARNs=[ARN], DeveloperProviderName=DEV_PROVIDER,
    )
    with pytest.raises(ClientError) as e:
        guest.list_datasets(IdentityPoolId=app.pool, IdentityId=guest_id)
    assert error_of(e)[:2] == ("NotAuthorizedException", 403)
    sync(user, app.pool, user_id, "d", [put("k", "v")])


def test_junk_key_ids_do_not_hold_back_a_rotation(server, issuer):
    app = App(server, issuer=issuer)
    junk = jwt.encode({"iss": ISSUER, "sub": "x", "aud": AUDIENCE, "exp": int(time.time()) + 600}, issuer.keys["rsa1"], algorithm="RS256", headers={"kid": "junk"})
    issuer.keys["ec2"] = ec.generate_private_key(ec.SECP256R1())
    issuer.algs["ec2"] = "ES256"
    issuer.write_jwks()
    # The junk token makes the server read the file again: the new key is kept from then on.
    with pytest.raises(ClientError):
        app.public.get_id(IdentityPoolId=app.pool, Logins={PROVIDER: junk})
    identity, _ = app.login({PROVIDER: issuer.token("user-1", kid="ec2")})
    assert identity.startswith("us-east-1:")


def test_developer_calls_follow_the_model(server, issuer):
    app = App(server, issuer=issuer)
    a = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "a"})["IdentityId"]
    b = app.admin.get_open_id_token_for_developer_identity(
        IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "b", PROVIDER: issuer.token("oidc-b")}
    )["IdentityId"]
    # The other login was verified and linked.
    assert sorted(app.admin.describe_identity(IdentityId=b)["Logins"]) == sorted([DEV_PROVIDER, PROVIDER])
    with pytest.raises(ClientError) as e:
        app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "c", PROVIDER: "garbage"})
    assert error_of(e)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as e:
        app.admin.lookup_developer_identity(IdentityPoolId=app.pool, IdentityId=a, DeveloperUserIdentifier="b")
    assert error_of(e)[0] == "ResourceConflictException"
    with pytest.raises(ClientError) as e:
        app.admin.merge_developer_identities(
            SourceUserIdentifier="a", DestinationUserIdentifier="nobody", DeveloperProviderName=DEV_PROVIDER, IdentityPoolId=app.pool
        )
    assert error_of(e)[0] == "ResourceNotFoundException"
    # Two users of another provider are not merged into one identity.
    app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, IdentityId=a, Logins={DEV_PROVIDER: "a", PROVIDER: issuer.token("oidc-a")})
    with pytest.raises(ClientError) as e:
        app.admin.merge_developer_identities(
            SourceUserIdentifier="a", DestinationUserIdentifier="b", DeveloperProviderName=DEV_PROVIDER, IdentityPoolId=app.pool
        )
    assert error_of(e)[0] == "ResourceConflictException"
    # Another pool's identity is not found, and says nothing about what became of it.
    other = app.admin.create_identity_pool(IdentityPoolName="other", AllowUnauthenticatedIdentities=True, DeveloperProviderName=DEV_PROVIDER)["IdentityPoolId"]
    with pytest.raises(ClientError) as e:
        app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=other, IdentityId=a, Logins={DEV_PROVIDER: "z"})
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        app.admin.delete_identities(IdentityIdsToDelete=["not-an-id"])
    assert error_of(e)[0] == "InvalidParameterException"


def test_a_guest_signed_in_by_the_backend_merges_into_the_user(server):
    app = App(server)
    user = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "ada"})
    guest_id = app.public.get_id(IdentityPoolId=app.pool)["IdentityId"]
    _, guest = app.credentials(guest_id)
    sync(guest, app.pool, guest_id, "game", [put("k", "guest")])
    # The backend signs Ada in on the device that was a guest.
    out = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, IdentityId=guest_id, Logins={DEV_PROVIDER: "ada"})
    assert out["IdentityId"] == user["IdentityId"]
    _, device = app.credentials(out["IdentityId"], {OWN: out["Token"]})
    assert records(device, app.pool, out["IdentityId"], "game")[1]["MergedDatasetNames"] == [f"game.{guest_id}"]
    # A device of another signed-in user is not merged.
    other = app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, Logins={DEV_PROVIDER: "bob"})
    with pytest.raises(ClientError) as e:
        app.admin.get_open_id_token_for_developer_identity(IdentityPoolId=app.pool, IdentityId=other["IdentityId"], Logins={DEV_PROVIDER: "ada"})
    assert error_of(e)[0] == "DeveloperUserAlreadyRegisteredException"


def test_the_sync_manager_signs_a_guest_in_and_hands_over_its_merged_dataset(server, issuer):
    from test_js_clients import node

    app = App(server, issuer=issuer)
    logins = json.dumps({PROVIDER: issuer.token("ada")})
    out = node("clients.mjs", "logins-merge", "--url", server.url, "--pool", app.pool, "--logins", logins)
    result = json.loads(out.splitlines()[-1])
    assert result["outcomes"] == {"u1": "success", "g1": "success", "g2": "failure"}, result
    assert result["guestId"] != result["userId"] and result["signedInId"] == result["userId"]
    merged = [e for e in result["events"] if e[1] == "onDatasetsMerged"]
    assert merged == [["signed-in", "onDatasetsMerged", [f"settings.{result['guestId']}"]]], result["events"]


def test_the_javascript_sdk_v3_manages_pools_and_signs_users_in(server):
    from test_js_clients import node

    creds = server.admin("create-tenant", "acme")
    out = node("clients.mjs", "identity-v3", "--url", server.url, "--pool", "unused", "--key", creds["accessKeyId"], "--secret", creds["secretAccessKey"])
    result = json.loads(out.splitlines()[-1])
    assert result["created"] == {"name": "from v3", "allowUnauthenticated": False, "developer": "login.v3.app"}
    assert result["describedSame"] and result["listed"]
    first, second = result["devices"]
    assert first["identityId"] == second["identityId"] == result["lookup"]["identityId"]
    assert first["accessKeyId"] != second["accessKeyId"] and first["expiration"]
    assert result["lookup"]["users"] == ["ada"]
    assert result["unauthenticated"] == {
        "name": "NotAuthorizedException",
        "status": 400,
        "message": "Unauthenticated access is not supported for this identity pool.",
    }
