"""Finding a PostgreSQL server for the tests, and giving each test its own database.

Order: ``COWORK_TEST_DATABASE_URL``; else a local server on 127.0.0.1:5432; else a
throwaway cluster started from the local ``initdb``/``pg_ctl``. Each test database is cloned
from a template that was migrated once per migration set (its name carries their checksum).
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import glob
import hashlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from cowork.migrations import discover

TRUE_VALUES = {"1", "true", "yes", "on"}


def db_required() -> bool:
    """True when a missing PostgreSQL must fail the run instead of skipping."""
    names = ("CI", "COWORK_INTEGRATION_REQUIRE_DB", "COWORK_INTEGRATION_REQUIRE_DOCKER")
    return any(os.environ.get(n, "").strip().lower() in TRUE_VALUES for n in names)


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def _can_connect(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


@dataclass
class Cluster:
    """A throwaway cluster in a temporary directory, stopped at exit."""

    datadir: str
    port: int
    bindir: str
    run_as: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self.pg_ctl(
            "-w",
            "-l",
            os.path.join(self.datadir, "server.log"),
            "-o",
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-m", mode, "stop")


def _find_bindir() -> str | None:
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_throwaway_cluster() -> Cluster | None:
    bindir = _find_bindir()
    if bindir is None:
        return None
    run_as: list[str] = []
    base = tempfile.mkdtemp(prefix="cowork-pg-")
    if os.geteuid() == 0:  # the server refuses to run as root
        runuser = shutil.which("runuser")
        if runuser is None:
            return None
        run_as = [runuser, "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    datadir = os.path.join(base, "data")
    try:
        subprocess.run(
            [
                *run_as,
                os.path.join(bindir, "initdb"),
                "-D",
                datadir,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        cluster = Cluster(datadir=datadir, port=_free_port(), bindir=bindir, run_as=run_as)
        cluster.start()
    except (subprocess.CalledProcessError, OSError, KeyError):
        return None
    atexit.register(lambda: _stop_quietly(cluster, base))
    return cluster


def _stop_quietly(cluster: Cluster, base: str) -> None:
    with contextlib.suppress(subprocess.CalledProcessError, OSError):
        cluster.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


def find_server() -> tuple[str | None, str]:
    """(admin URL, how it was found) or (None, why not)."""
    explicit = os.environ.get("COWORK_TEST_DATABASE_URL")
    if explicit:
        problem = _can_connect(explicit)
        if problem is None:
            return explicit, "COWORK_TEST_DATABASE_URL"
        return None, f"COWORK_TEST_DATABASE_URL is set but unusable: {problem}"
    users = [os.environ.get("PGUSER"), getpass.getuser(), "postgres"]
    for user in dict.fromkeys(u for u in users if u):
        for dbname in ("postgres", "template1"):
            url = f"postgresql://{user}@127.0.0.1:5432/{dbname}"
            if _can_connect(url) is None:
                return url, "local server on 127.0.0.1:5432"
    cluster = start_throwaway_cluster()
    if cluster is not None:
        return cluster.url, f"throwaway cluster in {cluster.datadir}"
    return None, "no COWORK_TEST_DATABASE_URL, no server on 127.0.0.1:5432, no initdb/pg_ctl"


class DatabaseFactory:
    """Creates isolated databases on one server: migrated clones or empty ones."""

    _counter = itertools.count()

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        files = discover("postgresql")
        digest = hashlib.sha256("".join(f.checksum for f in files).encode()).hexdigest()[:12]
        self.template = f"cowork_tpl_{digest}"
        self.prefix = f"cowork_t{os.getpid()}_"
        self._template_ready = False

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True)

    def _ensure_template(self) -> None:
        if self._template_ready:
            return
        with self._admin() as conn:
            conn.execute("SELECT pg_advisory_lock(7469)")
            try:
                row = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [self.template]
                ).fetchone()
                if row is None:
                    building = self.template + "_building"
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(building)
                        )
                    )
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
                    _migrate_sync(with_database(self.admin_url, building))
                    conn.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(building), sql.Identifier(self.template)
                        )
                    )
            finally:
                conn.execute("SELECT pg_advisory_unlock(7469)")
        self._template_ready = True

    def create(self, *, migrated: bool = True) -> str:
        name = f"{self.prefix}{next(self._counter)}_{int(time.time() * 1000) % 100000}"
        if migrated:
            self._ensure_template()
        template = self.template if migrated else "template0"
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return with_database(self.admin_url, name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _migrate_sync(url: str) -> None:
    import asyncio
    import concurrent.futures

    from cowork.migrations import migrate
    from cowork.storage.postgres import PostgresDatabase

    async def run() -> None:
        db = PostgresDatabase(url)
        await db.open()
        try:
            await migrate(db)
        finally:
            await db.close()

    # In a thread: a fixture may be set up while an event loop is already running.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
