"""TLS: certificate verification is on whenever TLS is requested (``ssl=true`` never skips the
certificate checks, and ``sslmode=verify-full`` is honoured).

A throwaway cluster serves TLS only (``hostssl``; plain connections are rejected) with a
certificate for ``localhost``/``127.0.0.1`` signed by a test CA made with ``openssl``. A
connection that verifies against the right CA succeeds; every TLS request without the right CA
(``sslmode=verify-full`` alone, ``ssl=true``, ``sslmode=require``) fails with a
``PersistenceUnavailable`` that says the certificate could not be verified, and shows no
password; skipping verification takes an explicit ``cowork_tls_verify=false``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

import cowork
from tests.security.support import Certificates, make_certificates, start_cluster, stop_and_remove
from tests.support.postgres import Cluster, db_required

pytestmark = pytest.mark.postgres

PASSWORD = "Tls-Secret-pw/7?x"  # in the URLs below; trust auth ignores it, logs must too
VERIFY_WORDS = ("certificate", "verif", "ssl", "tls")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates but is not installed")
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_cluster(certificates: Certificates) -> Iterator[Cluster]:
    try:
        cluster = start_cluster(
            hba=[
                "local all all trust",
                "hostssl all all 127.0.0.1/32 trust",
                "hostnossl all all 127.0.0.1/32 reject",
            ],
            conf=[
                "ssl = on",
                "ssl_cert_file = 'server.crt'",
                "ssl_key_file = 'server.key'",
            ],
            files={"server.crt": certificates.server_cert, "server.key": certificates.server_key},
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.fail(f"could not start a TLS cluster: {exc}")
    if cluster is None:
        if db_required():
            pytest.fail("PostgreSQL binaries (initdb/pg_ctl) are needed for the TLS test")
        pytest.skip("no initdb/pg_ctl to start a TLS cluster")
    yield cluster
    stop_and_remove(cluster)


def url(cluster: Cluster, query: str, *, host: str = "127.0.0.1") -> str:
    return (
        f"postgresql://postgres:{quote(PASSWORD, safe='')}@{host}:{cluster.port}/postgres?{query}"
    )


def root(path: Path) -> str:
    return quote(str(path), safe="/")


async def open_required(database_url: str) -> cowork.Runtime:
    return await cowork.open(database_url, required=True, worker=False)


async def assert_refused(database_url: str) -> str:
    with pytest.raises(cowork.PersistenceUnavailable) as caught:
        rt = await open_required(database_url)
        await rt.close()
    message = str(caught.value)
    assert any(word in message.lower() for word in VERIFY_WORDS), message
    assert PASSWORD not in message and quote(PASSWORD, safe="") not in message, message
    return message


async def assert_tls_works(database_url: str) -> None:
    async with await open_required(database_url) as rt:
        assert rt.durable and rt.backend == "postgresql"
        ws = await rt.workspaces.create(name="over tls", actor="alice")
        assert (await rt.workspaces.get(ws.workspace_id)) == ws
        assert PASSWORD not in repr(rt)


async def test_plain_connections_are_rejected_by_the_server(tls_cluster: Cluster) -> None:
    """The set-up itself: without TLS the server says no, so a success below means TLS."""
    with pytest.raises(cowork.PersistenceUnavailable):
        await open_required(url(tls_cluster, "sslmode=disable"))


async def test_verify_full_without_the_ca_fails_with_a_certificate_error(
    tls_cluster: Cluster,
) -> None:
    message = await assert_refused(url(tls_cluster, "sslmode=verify-full"))
    assert "certificate" in message.lower(), message


async def test_verify_full_with_the_ca_succeeds_on_ip_and_name(
    tls_cluster: Cluster, certificates: Certificates
) -> None:
    query = f"sslmode=verify-full&sslrootcert={root(certificates.ca)}"
    await assert_tls_works(url(tls_cluster, query))
    await assert_tls_works(url(tls_cluster, query, host="localhost"))


async def test_verify_full_with_another_ca_fails(
    tls_cluster: Cluster, certificates: Certificates
) -> None:
    await assert_refused(
        url(tls_cluster, f"sslmode=verify-full&sslrootcert={root(certificates.other_ca)}")
    )


async def test_verify_full_checks_the_host_name(
    tls_cluster: Cluster, certificates: Certificates
) -> None:
    """The certificate is for localhost/127.0.0.1: a connection that names another host (while
    reaching 127.0.0.1 through ``hostaddr``) must fail verification."""
    query = f"sslmode=verify-full&sslrootcert={root(certificates.ca)}&hostaddr=127.0.0.1"
    message = await assert_refused(url(tls_cluster, query, host="db.invalid"))
    assert "db.invalid" in message or "name" in message.lower(), message


async def test_ssl_true_verifies_the_certificate(
    tls_cluster: Cluster, certificates: Certificates
) -> None:
    """``ssl=true`` is not a libpq parameter; it must mean verified TLS, never "encrypted but
    trusting anyone" or "ignored"."""
    await assert_refused(url(tls_cluster, "ssl=true"))
    await assert_tls_works(url(tls_cluster, f"ssl=true&sslrootcert={root(certificates.ca)}"))


async def test_sslmode_require_verifies_unless_explicitly_told_not_to(
    tls_cluster: Cluster,
) -> None:
    await assert_refused(url(tls_cluster, "sslmode=require"))
    await assert_tls_works(url(tls_cluster, "sslmode=require&cowork_tls_verify=false"))


async def test_unverifiable_tls_degrades_loudly_when_not_required(tls_cluster: Cluster) -> None:
    """Without required mode the runtime falls back to memory, says so, and leaks nothing."""
    async with await cowork.open(url(tls_cluster, "sslmode=verify-full"), worker=False) as rt:
        assert not rt.durable
        reason = rt.degraded_reason or ""
        assert "certificate" in reason.lower(), reason
        assert PASSWORD not in reason and PASSWORD not in repr(rt)


async def test_sslrootcert_path_with_a_space_is_kept_intact(
    tls_cluster: Cluster, certificates: Certificates, tmp_path: Path
) -> None:
    """A CA file in a directory with a space (percent-encoded in the URL, as libpq wants) must
    still be found. storage/postgres/tls.py ``secure_url`` re-encodes every query value with
    ``urlencode``, which writes a space as ``+``; libpq decodes only ``%XX``, so it looks for
    ``.../test+ca/ca.crt`` and the connection fails. (A password given as ``password=`` in the
    query, or any other value with a space, is changed the same way.)"""
    spaced = tmp_path / "test ca" / "ca.crt"
    spaced.parent.mkdir()
    shutil.copyfile(certificates.ca, spaced)
    await assert_tls_works(url(tls_cluster, f"sslmode=verify-full&sslrootcert={root(spaced)}"))
