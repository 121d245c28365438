"""Throwaway PostgreSQL clusters for the security tests: TLS with a test CA, password auth.

Built on :mod:`tests.support.postgres` (``initdb``/``pg_ctl``, run as ``postgres`` through
``runuser`` when the tests run as root). Settings the standard start-up line does not pass go
into ``postgresql.conf``/``pg_hba.conf`` before the first start.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.postgres import Cluster, _find_bindir, _free_port

__all__ = ["Certificates", "make_certificates", "start_cluster"]


@dataclass(frozen=True)
class Certificates:
    directory: Path
    ca: Path  # the CA that signed the server's certificate
    other_ca: Path  # an unrelated CA
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> Certificates:
    """A test CA, a server certificate it signed for ``localhost`` and ``127.0.0.1`` (both in
    the subjectAltName, CN=localhost), and a second, unrelated CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for name in ("ca", "other-ca"):
        _openssl(
            "req",
            "-x509",
            *ec,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            "-subj",
            f"/CN=cowork test {name}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )
    _openssl(
        "req",
        *ec,
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
        cwd=directory,
    )
    (directory / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        cwd=directory,
    )
    return Certificates(
        directory=directory,
        ca=directory / "ca.crt",
        other_ca=directory / "other-ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
    )


def start_cluster(
    *,
    password: str | None = None,
    hba: list[str] | None = None,
    conf: list[str] | None = None,
    files: dict[str, Path] | None = None,
) -> Cluster | None:
    """Start a cluster whose superuser ``postgres`` has ``password`` (scram-sha-256 auth) or
    none (trust); ``hba`` replaces pg_hba.conf, ``conf`` lines are appended to
    postgresql.conf, ``files`` are copied into the data directory (mode 0600, owned by the
    server's user). None when no PostgreSQL binaries are installed."""
    bindir = _find_bindir()
    if bindir is None:
        return None
    run_as: list[str] = []
    base = tempfile.mkdtemp(prefix="cowork-sec-pg-")
    owner: str | None = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            return None
        run_as = [runuser, "-u", "postgres", "--"]
        owner = "postgres"
        shutil.chown(base, owner, owner)
    datadir = os.path.join(base, "data")
    args = [os.path.join(bindir, "initdb"), "-D", datadir, "-U", "postgres", "--no-sync"]
    if password is not None:
        pwfile = os.path.join(base, "pw")
        Path(pwfile).write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        if owner:
            shutil.chown(pwfile, owner, owner)
        args += ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
    else:
        args += ["-A", "trust"]
    subprocess.run([*run_as, *args], check=True, capture_output=True)
    if password is not None:
        os.remove(os.path.join(base, "pw"))
    for name, source in (files or {}).items():
        target = os.path.join(datadir, name)
        shutil.copyfile(source, target)
        os.chmod(target, 0o600)
        if owner:
            shutil.chown(target, owner, owner)
    if hba is not None:
        Path(datadir, "pg_hba.conf").write_text("\n".join(hba) + "\n")
    if conf:
        with open(os.path.join(datadir, "postgresql.conf"), "a") as handle:
            handle.write("\n" + "\n".join(conf) + "\n")
    cluster = Cluster(datadir=datadir, port=_free_port(), bindir=bindir, run_as=run_as)
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        log = Path(datadir, "server.log")
        detail = log.read_text() if log.exists() else exc.stderr
        raise RuntimeError(f"the test cluster did not start: {detail}") from None
    atexit.register(lambda: _stop_quietly(cluster, base))
    return cluster


def _stop_quietly(cluster: Cluster, base: str) -> None:
    with contextlib.suppress(subprocess.CalledProcessError, OSError):
        cluster.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


def stop_and_remove(cluster: Cluster) -> None:
    _stop_quietly(cluster, str(Path(cluster.datadir).parent))
