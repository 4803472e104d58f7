"""Nodes reach PostgreSQL over TLS, verified as libpq's sslmode says: the throwaway cluster
(tests/pg-cluster.sh) has a certificate for `localhost` signed by a test CA."""

import os
import subprocess

import pytest
from conftest import BACKEND, BIN, Server, new_database, share_database, sync

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL's TLS")


def ca(name="SYNCTRIG_TEST_DATABASE_CA"):
    path = os.environ.get(name)
    assert path, f"{name} is unset: tests/run-all.sh's throwaway cluster sets it"
    return path


def put(key, value, count=0):
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count}


def test_a_node_verifies_the_servers_certificate_and_name(tmp_path, monkeypatch):
    url = new_database()
    verified = url.replace("127.0.0.1", "localhost", 1) + "?sslmode=verify-full"
    data = tmp_path / "node"
    share_database(verified, data)
    # The CA from the environment for the fixtures' admin commands; from the flag for serve.
    monkeypatch.setenv("SYNCTRIG_DATABASE_CA_FILE", ca())
    server = Server(data, ["--database-ca-file", ca()]).start()
    try:
        # The admin commands take the same flag.
        creds = subprocess.run(
            [str(BIN), "admin", "--data-dir", str(data), "--database", verified, "--database-ca-file", ca(), "create-tenant", "acme"],
            capture_output=True, text=True,
        )
        assert creds.returncode == 0, creds.stderr
        t = server.tenant("other")
        identity, user = t.identity()
        assert sync(user, t.pool, identity, "game", [put("k", "v")])["Records"][0]["SyncCount"] == 1
    finally:
        server.stop()

    # The same certificate reached by another name, or checked against another CA, is refused.
    for url_, ca_file, why in [
        (url + "?sslmode=verify-full", ca(), "certificate not valid for name \"127.0.0.1\""),
        (verified, ca("SYNCTRIG_TEST_DATABASE_OTHER_CA"), "UnknownIssuer"),
        (url.replace("127.0.0.1", "localhost", 1) + "?sslmode=verify-full", None, "needs the CA"),
    ]:
        out = subprocess.run(
            [str(BIN), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "refused"), "--database", url_,
             *(["--database-ca-file", ca_file] if ca_file else [])],
            capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("SYNCTRIG_DATABASE")},
        )
        assert out.returncode != 0 and why in out.stderr, (url_, out.stderr)
        assert "listening" not in out.stdout
