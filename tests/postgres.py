"""A real PostgreSQL server for the tests: the one CI names, or a throw-away cluster.

``SENTINEL_FETCH_TEST_POSTGRES`` (a ``postgresql://`` URL of a database the tests may
create schemas in) is used when set. Otherwise :class:`Cluster` makes one with
``initdb`` into a temp folder and starts it with ``pg_ctl``: a unix socket in that
folder and a free port on 127.0.0.1, nothing else; as the ``postgres`` user when the
tests run as root (initdb refuses root). It is stopped (``-m immediate``) and deleted
when the test session ends, whatever the outcome. Every xdist worker runs its own
session, so its own cluster; with a shared server every test gets its own schema
(:func:`fresh_schema_url`), so workers never see each other's tables.

When PostgreSQL is not installed the tests that need it are skipped, except in CI
(``CI`` set), where they fail: .ci/run installs it (.ci/postgres).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import pytest

__all__ = [
    "ENV_URL",
    "Cluster",
    "drop_schema_of",
    "find_bindir",
    "fresh_schema_url",
    "server_url",
]

ENV_URL = "SENTINEL_FETCH_TEST_POSTGRES"


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, from pg_config, or Debian's."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=30
        ).stdout.strip()
        if found and (Path(found) / "initdb").exists():
            return Path(found)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Cluster:
    """A throw-away PostgreSQL cluster in a temp folder (start, URL, stop)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="sf-postgres-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            try:
                entry = pwd.getpwnam(self.user)
            except KeyError:
                raise RuntimeError("running as root and there is no postgres user") from None
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.started = False

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        """initdb (trust auth, UTF-8) and pg_ctl start; waits until it accepts."""
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        options = " ".join(
            (
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.folder}",
                # A test server: small, and fast where durability does not matter.
                "-c shared_buffers=16MB",
                "-c max_connections=60",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            )
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "120",
            "start",
        )
        self.started = True

    @property
    def url(self) -> str:
        """The ``postgres`` database over TCP on 127.0.0.1."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Stop the server (at once: nothing in it is kept) and delete the folder."""
        try:
            if self.started:
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._run(
                        str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                        "-w", "stop",
                    )  # fmt: skip
                self.started = False
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is needed in CI: {why} (.ci/run installs it: .ci/postgres)")
    pytest.skip(f"PostgreSQL is not available: {why}")


def server_url(request: pytest.FixtureRequest) -> str:
    """The test server's URL for this session: the CI one, or a cluster started now.

    A started cluster is stopped by a finalizer of ``request`` (the session).
    """
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (the test extra has it)")
    named = os.environ.get(ENV_URL)
    if named:
        return named
    bindir = find_bindir()
    if bindir is None:
        _unavailable("no initdb (install Debian's postgresql)")
        raise AssertionError("unreachable")
    try:
        cluster = Cluster(bindir)
    except RuntimeError as exc:
        _unavailable(str(exc))
        raise AssertionError("unreachable") from None
    request.addfinalizer(cluster.stop)
    try:
        cluster.start()
    except RuntimeError as exc:
        _unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else "cannot start")
    return cluster.url


def fresh_schema_url(server: str) -> str:
    """A URL on ``server`` whose tables go to a new, empty schema (one per test)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    parts = urlsplit(server)
    query = parts.query + ("&" if parts.query else "")
    query += urlencode({"options": f"-csearch_path={schema}"}, quote_via=quote)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def drop_schema_of(server: str, url: str) -> None:
    """Drop the schema :func:`fresh_schema_url` made for ``url`` (a shared server keeps
    nothing of a test); a schema still in use is left, never waited for long."""
    import psycopg

    schema = url.rsplit("search_path%3D", 1)[-1]
    if not schema.startswith("t_") or not schema[2:].isalnum():
        return
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(server, autocommit=True, connect_timeout=10) as connection,
    ):
        connection.execute("SET lock_timeout = '5s'")
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
