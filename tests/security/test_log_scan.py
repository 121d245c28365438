"""Credentials never appear in logs, errors or ``repr``.

A throwaway cluster with password authentication (scram-sha-256) runs representative work:
opening with a password in the URL, a password resolved from a ``${secret:NAME}`` placeholder
through a secret provider (for a second role), wrong passwords (required mode and degraded
mode), memory-only and unreachable databases in required mode, a lost server, failing durable
consumers, the CLI (``status``, ``migrate``, ``migrate --check``) and the worker with
``--log-format json`` at DEBUG. Everything is captured: every log record of the root logger
(``cowork``, ``psycopg``, ``psycopg.pool`` at DEBUG), the process's stdout/stderr, subprocess
output, exception messages with their whole chain, ``repr``/``str`` of settings and runtimes.
No password, encoded password, secret-provider value or token may appear in any of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import psycopg
import pytest

import cowork
from cowork.config import load_settings
from tests.security.support import start_cluster, stop_and_remove
from tests.support.postgres import Cluster, db_required

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
#: The superuser's password: URL-special characters, so that encoded forms matter too.
PASSWORD = "Sup3r-S3cret/pw@:%?&# x"
#: The second role's password, only ever given through ${secret:COWORK_SEC_PW}.
ROLE_PASSWORD = "R0le-Secret-from-provider-91f3"
#: A token that travels in event payloads and metadata (the sanitiser must redact it).
TOKEN = "tok_live_5f0d9a8c7b6e4d3c2b1a"
WRONG = "Wr0ng-Passw0rd-77ab"

SECRETS = tuple(
    dict.fromkeys(
        s
        for value in (PASSWORD, ROLE_PASSWORD, TOKEN, WRONG)
        for s in (value, quote(value, safe=""), quote_plus(value), quote(value))
    )
)


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def url(
    cluster: Cluster, password: str = PASSWORD, *, user: str = "postgres", db: str = "postgres"
) -> str:
    return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{cluster.port}/{db}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    started = start_cluster(
        password=PASSWORD,
        hba=["local all all trust", "host all all 127.0.0.1/32 scram-sha-256"],
    )
    if started is None:
        if db_required():
            pytest.fail("PostgreSQL binaries (initdb/pg_ctl) are needed for the log scan")
        pytest.skip("no initdb/pg_ctl for a password-protected cluster")
    with psycopg.connect(url(started), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE cowork_sec LOGIN CREATEROLE PASSWORD '{ROLE_PASSWORD}'")
        conn.execute("CREATE DATABASE secdb OWNER cowork_sec")
    yield started
    stop_and_remove(started)


class Capture:
    """Everything text-like the test saw, with where it came from."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, text: Any) -> None:
        self.items.append((where, text if isinstance(text, str) else repr(text)))

    def exception(self, where: str, exc: BaseException) -> None:
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.add(f"{where}: str", str(current))
            self.add(f"{where}: repr", repr(current))
            self.add(f"{where}: args", repr(current.args))
            current = current.__cause__ or current.__context__
        self.add(f"{where}: traceback", "".join(traceback.format_exception(exc)))

    def records(self, records: Iterable[logging.LogRecord]) -> int:
        formatter = logging.Formatter()
        count = 0
        for record in records:
            count += 1
            self.add(f"log {record.name}", record.getMessage())
            self.add(f"log {record.name} args", repr(record.args))
            if record.exc_info:
                self.add(f"log {record.name} exc", formatter.formatException(record.exc_info))
            self.add(f"log {record.name} vars", repr(vars(record)))
        return count

    def found(self) -> list[str]:
        return [
            f"{where}: {', '.join(repr(s) for s in leaks(text))} in {text[:300]!r}"
            for where, text in self.items
            if leaks(text)
        ]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("cowork", "psycopg", "psycopg.pool"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_the_scan_would_see_each_secret(cluster: Cluster) -> None:
    """The detector itself: every spelling of every secret in the configuration is found."""
    assert leaks(url(cluster)) and leaks(url(cluster, WRONG))
    assert leaks(f"Bearer {TOKEN}") and leaks(ROLE_PASSWORD) and leaks(PASSWORD)
    assert quote(PASSWORD, safe="") in SECRETS and quote_plus(PASSWORD) in SECRETS


async def test_runtime_logs_errors_and_reprs_hold_no_secret(
    cluster: Cluster, debug_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    seen = Capture()

    def provider(name: str) -> str | None:
        return ROLE_PASSWORD if name == "COWORK_SEC_PW" else None

    # 1. A password in the URL: normal work, including a consumer that fails and parks.
    async with await cowork.open(url(cluster), tenant_id="scan", required=True) as rt:
        for text in (
            repr(rt),
            str(rt),
            repr(rt.settings),
            str(rt.settings),
            repr(rt._core.database),
        ):
            seen.add("repr (password URL)", text)
        seen.add("display_url", rt.display_url)
        seen.add("settings dump", repr(rt.settings.model_dump(exclude={"database_url"})))
        seen.add("health", repr(await rt.health()))
        ws = await rt.workspaces.create(name="scan", actor="alice", members=["alice"])
        await rt.blackboard.put(ws.workspace_id, "plan", {"v": 1}, actor="alice")

        async def failing(event: cowork.EventEnvelope) -> None:
            raise RuntimeError(f"cannot handle {event.payload} {event.metadata}")

        sub = await rt.events.subscribe("sec:*", failing, consumer_id="sec-fail", max_attempts=1)
        envelope = await rt.events.publish(
            "sec:fail",
            {"api_token": TOKEN, "password": PASSWORD, "note": "secret-keyed values only"},
            metadata={"Authorization": f"Bearer {TOKEN}"},
        )
        seen.add("event envelope", repr(envelope))
        deadline = time.monotonic() + 15
        while not await rt.consumers.parked("sec-fail"):
            assert time.monotonic() < deadline, "the failing consumer never parked its event"
            await asyncio.sleep(0.05)
        for parked in await rt.consumers.parked("sec-fail"):
            seen.add("parked event", repr(parked))
        seen.add("event log", repr(await rt.events.read(limit=1000)))
        await sub.stop()

        # 2. The server goes away and comes back: errors and health say so, without secrets.
        cluster.stop("fast")
        try:
            seen.add("health (server down)", repr(await rt.health()))
            with pytest.raises(cowork.CoworkError) as lost:
                await rt.workspaces.create(name="while down", actor="alice")
            seen.exception("operation (server down)", lost.value)
        finally:
            cluster.start()

    # 3. ${secret:NAME} resolved through a secret provider, for a second role.
    placeholder = (
        f"postgresql://cowork_sec:${{secret:COWORK_SEC_PW}}@127.0.0.1:{cluster.port}/secdb"
    )
    settings = load_settings(database_url=placeholder, secret_provider=provider)
    for text in (repr(settings), str(settings), settings.redacted_url()):
        seen.add("settings (secret provider)", text)
    async with await cowork.open(
        placeholder, secret_provider=provider, tenant_id="scan-role", required=True
    ) as rt:
        seen.add("repr (secret provider)", repr(rt))
        seen.add("settings (secret provider, runtime)", repr(rt.settings))
        await rt.workspaces.create(name="as a role", actor="bob")
        seen.add("health (role)", repr(await rt.health()))

    # 4. Wrong passwords: required mode raises, degraded mode warns; both say why, no secret.
    for label, bad_url, kwargs in (
        ("wrong password", url(cluster, WRONG), {}),
        (
            "wrong secret",
            f"postgresql://cowork_sec:${{secret:WRONG_PW}}@127.0.0.1:{cluster.port}/secdb",
            {"secret_provider": lambda name: WRONG},
        ),
        ("unreachable", url(cluster).replace(f":{cluster.port}/", ":1/"), {}),
    ):
        with pytest.raises(cowork.PersistenceUnavailable) as refused:
            await cowork.open(bad_url, required=True, worker=False, **kwargs)
        seen.exception(f"required open ({label})", refused.value)
        assert "password" in str(refused.value) or label == "unreachable", str(refused.value)
        async with await cowork.open(bad_url, worker=False, **kwargs) as degraded:
            assert not degraded.durable
            seen.add(f"degraded_reason ({label})", degraded.degraded_reason or "")
            seen.add(f"degraded repr ({label})", repr(degraded))
            seen.add(f"degraded settings ({label})", repr(degraded.settings))

    # 5. Required mode that would run memory-only.
    with pytest.raises(cowork.ConfigError) as memory_only:
        await cowork.open("memory://", required=True)
    seen.exception("required memory-only", memory_only.value)

    # 6. Bad settings next to a secret: the error names the setting, not the URL.
    with pytest.raises(cowork.ConfigError) as bad_setting:
        await cowork.open(url(cluster), pool_min_size=5, pool_max_size=2)
    seen.exception("config error", bad_setting.value)

    records = seen.records(debug_logs.records)
    loggers = {r.name.split(".")[0] for r in debug_logs.records}
    assert {"cowork", "psycopg"} <= loggers, f"expected cowork and psycopg records, got {loggers}"
    out, err = capfd.readouterr()
    seen.add("stdout", out)
    seen.add("stderr", err)
    assert records > 20, f"only {records} log records were captured: the scan would prove little"
    assert any("RUNNING IN MEMORY" in r.getMessage() for r in debug_logs.records), (
        "the degraded-mode warning was not logged"
    )
    problems = seen.found()
    assert not problems, "secrets found:\n" + "\n".join(problems)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run ``python -m cowork ARGS``; everything it printed (stdout + stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "cowork", *args],
        cwd=REPO,
        env={**os.environ, "COWORK_LOG_LEVEL": "DEBUG", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_cli_output_holds_no_secret(cluster: Cluster, tmp_path: Path) -> None:
    good, bad = url(cluster), url(cluster, WRONG)
    placeholder = (
        f"postgresql://cowork_sec:${{secret:COWORK_SEC_PW}}@127.0.0.1:{cluster.port}/secdb"
    )
    config = tmp_path / "cowork.toml"
    config.write_text(f'database_url = "{placeholder}"\n')
    runs = {
        "migrate": run_cli("--database-url", good, "migrate"),
        "migrate --check": run_cli("--database-url", good, "migrate", "--check"),
        "status": run_cli("--database-url", good, "status"),
        "status --json": run_cli("--database-url", good, "--json", "status"),
        "status (wrong password)": run_cli("--database-url", bad, "status"),
        "migrate (wrong password)": run_cli("--database-url", bad, "migrate"),
        "status (env URL)": run_cli("status", env={"COWORK_DATABASE_URL": good}),
        "status (placeholder from env)": run_cli(
            "status", env={"COWORK_DATABASE_URL": placeholder, "COWORK_SEC_PW": ROLE_PASSWORD}
        ),
        "status (config file)": run_cli(
            "--config", str(config), "status", env={"COWORK_SEC_PW": ROLE_PASSWORD}
        ),
        "status (placeholder, wrong secret)": run_cli(
            "status", env={"COWORK_DATABASE_URL": placeholder, "COWORK_SEC_PW": WRONG}
        ),
        "events tail": run_cli("--database-url", good, "--tenant", "scan", "events", "tail"),
    }
    assert runs["migrate --check"].startswith("exit 0"), runs["migrate --check"]
    assert runs["status (wrong password)"].split()[1] != "0", runs["status (wrong password)"]
    problems = [
        f"{name}: {leaks(text)} in\n{text[:2000]}" for name, text in runs.items() if leaks(text)
    ]
    assert not problems, "secrets in CLI output:\n" + "\n\n".join(problems)


def test_worker_json_logs_hold_no_secret(cluster: Cluster) -> None:
    env = {
        **os.environ,
        "COWORK_DATABASE_URL": url(cluster),
        "COWORK_TENANT_ID": "scan-worker",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cowork",
            "worker",
            "--log-format",
            "json",
            "--log-level",
            "DEBUG",
            "--tenant",
            "scan-worker",
            "--app",
            "tests.security.log_app:setup",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        asyncio.run(_feed_worker(cluster))
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            out, err = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            out, err = worker.communicate()
    text = f"exit {worker.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"
    assert '"level"' in err, f"no JSON log lines from the worker:\n{text[:3000]}"
    assert "cannot handle payload" in err, f"the failing consumer never logged:\n{text[:3000]}"
    found = leaks(text)
    shown = [line for line in text.splitlines() if leaks(line)][:10]
    assert not found, f"secrets {found} in the worker's output:\n" + "\n".join(shown)

    wrong = subprocess.run(
        [sys.executable, "-m", "cowork", "worker", "--log-format", "json"],
        cwd=REPO,
        env={**env, "COWORK_DATABASE_URL": url(cluster, WRONG)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    text = f"exit {wrong.returncode}\n{wrong.stdout}\n{wrong.stderr}"
    assert wrong.returncode != 0, text
    assert not leaks(text), f"secrets {leaks(text)} in the failing worker's output:\n{text}"


async def _feed_worker(cluster: Cluster) -> None:
    """Publish events for the worker's consumer (some fail) and wait until it parked one."""
    async with await cowork.open(url(cluster), tenant_id="scan-worker", worker=False) as rt:
        deadline = time.monotonic() + 30
        while "sec-logger" not in {c.consumer_id for c in await rt.consumers.list()}:
            assert time.monotonic() < deadline, "the worker never registered its consumer"
            await asyncio.sleep(0.1)
        for i in range(3):
            await rt.events.publish(
                "sec:fail" if i % 2 == 0 else "sec:ok",
                {"i": i, "api_token": TOKEN, "password": PASSWORD},
                metadata={"authorization": f"Bearer {TOKEN}", "client_secret": PASSWORD},
            )
        while not await rt.consumers.parked("sec-logger"):
            assert time.monotonic() < deadline, "the worker's consumer never parked its event"
            await asyncio.sleep(0.1)


RAW_PASSWORDS = ("Xq7/Zk9@:%Wv8", "Xq7?Zk9=%Wv8")


def fragments(password: str, size: int = 4) -> set[str]:
    """Every ``size``-character piece of the password, as written and percent-encoded."""
    pieces: set[str] = set()
    for form in (password, quote(password, safe="")):
        pieces |= {form[i : i + size] for i in range(len(form) - size + 1)}
    return pieces


@pytest.mark.parametrize("password", RAW_PASSWORDS)
async def test_raw_password_in_an_ambiguous_url_is_never_shown(
    password: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A password written into the URL without percent-encoding (``/``, ``?``, ``@``, ``%`` in
    it) makes the URL ambiguous; cowork/_secrets.py promises to mask "everything that could be
    the password" then. Two leaks defeat it:

    - ``Xq7/Zk9@:%Wv8``: libpq rejects the URL and quotes the undecodable part,
      ``invalid percent-encoded token: "Zk9@:%Wv8@127.0.0.1:1/postgres"``; the adapter scrubs only
      whole secrets (storage/postgres/adapter.py ``_unavailable``), so most of the password
      reaches the error, the degraded-mode warning and ``cowork status``.
    - ``Xq7?Zk9=%Wv8``: storage/postgres/tls.py ``secure_url`` (run first in
      ``PostgresDatabase.__init__``) re-encodes the "query" ``Zk9=%Wv8@127.0.0.1...``, turning the
      ``@`` into ``%40``; ``redact_url`` of that rewritten URL finds no password, so
      ``display_url``, ``repr(runtime)`` and every error show ``postgres:Xq7?Zk9=%25Wv8%40127...``.
    """
    caplog.set_level(logging.DEBUG)
    bad_url = f"postgresql://postgres:{password}@127.0.0.1:1/postgres"
    texts: list[str] = []
    with pytest.raises(cowork.CoworkError) as refused:
        await cowork.open(bad_url, required=True, worker=False)
    texts += [str(refused.value), repr(refused.value)]
    async with await cowork.open(bad_url, worker=False) as degraded:
        texts += [degraded.degraded_reason or "", repr(degraded), repr(degraded.settings)]
    texts += [r.getMessage() for r in caplog.records]
    texts.append(run_cli("--database-url", bad_url, "status"))
    found = sorted({piece for piece in fragments(password) for text in texts if piece in text})
    shown = [text for text in texts if any(piece in text for piece in found)]
    assert not found, f"pieces {found} of the password are shown, e.g. {shown[:2]}"


@pytest.mark.parametrize("password", RAW_PASSWORDS)
async def test_secret_from_a_provider_is_never_shown_whatever_its_characters(
    password: str,
) -> None:
    """``${secret:DB_PASSWORD}`` in a URL inserts the provider's value as it is; a password
    holding ``/``, ``?``, ``@`` or ``%`` then makes the URL ambiguous (see the test above) and
    pieces of it, or all of it re-encoded by storage/postgres/tls.py ``secure_url``, reach the
    error message and ``repr`` although the value is registered as a secret to scrub."""
    template = "postgresql://postgres:${secret:DB_PASSWORD}@127.0.0.1:1/postgres"

    def provider(name: str) -> str | None:
        return password if name == "DB_PASSWORD" else None

    texts: list[str] = []
    with pytest.raises(cowork.CoworkError) as refused:
        await cowork.open(template, secret_provider=provider, required=True, worker=False)
    texts += [str(refused.value), repr(refused.value)]
    async with await cowork.open(template, secret_provider=provider, worker=False) as degraded:
        texts += [degraded.degraded_reason or "", repr(degraded), repr(degraded.settings)]
    found = sorted({piece for piece in fragments(password) for text in texts if piece in text})
    assert not found, f"pieces {found} of the secret are shown, e.g. {texts[0]}"
