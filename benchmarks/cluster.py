"""A private PostgreSQL cluster for the benchmarks (``COWORK_BENCH_CLUSTER=private``).

The same server binaries as the machine's (``/usr/lib/postgresql/*/bin``), a fresh data
directory, default settings (``fsync`` and ``synchronous_commit`` on, as on the shared server),
listening on 127.0.0.1 on a free port; stopped and deleted at exit.

Why: a PostgreSQL transaction id is cluster-wide, and so is the commit-order horizon
(``pg_snapshot_xmin``) that gap-free catch-up reads wait for. On a server shared with other
work (other sessions' test suites creating and dropping databases), their transactions hold
that horizon back and add their own duration to our consumer latency. A private cluster
measures the library instead of the neighbours; the run records which one it used.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field

__all__ = ["PrivateCluster", "start_private_cluster"]


@dataclass
class PrivateCluster:
    base: str
    datadir: str
    port: int
    bindir: str
    run_as: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - fixed program, arguments we built
            [*self.run_as, os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self._pg_ctl(
            "-w",
            "-l",
            os.path.join(self.datadir, "server.log"),
            "-o",
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            self._pg_ctl("-w", "-m", "fast", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


def _bindir() -> str:
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("COWORK_BENCH_CLUSTER=private needs initdb/pg_ctl (PostgreSQL server)")
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_private_cluster() -> PrivateCluster:
    bindir = _bindir()
    run_as: list[str] = []
    base = tempfile.mkdtemp(prefix="cowork-bench-pg-")
    if os.geteuid() == 0:  # the server refuses to run as root
        runuser = shutil.which("runuser")
        if runuser is None:
            raise SystemExit("running as root needs runuser to start PostgreSQL as postgres")
        run_as = [runuser, "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    datadir = os.path.join(base, "data")
    subprocess.run(  # noqa: S603 - fixed program, arguments we built
        [*run_as, os.path.join(bindir, "initdb"), "-D", datadir, "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    cluster = PrivateCluster(base=base, datadir=datadir, port=_free_port(), bindir=bindir)
    cluster.run_as = run_as
    cluster.start()
    return cluster
