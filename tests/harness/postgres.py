"""Start a private PostgreSQL server: initdb into a temp directory, `postgres` on a free loopback
port with its unix socket in that directory. Never the machine's own server on 5432.

As root, initdb and postgres refuse to run: both run as the `postgres` OS user (runuser), with
the directory chowned to it. `with Postgres(tmp) as pg:` gives `pg.url` (trust auth, loopback
only, database `hallwatch`).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from hallwatch.daemon.base.net import free_port

_USER = "postgres"
_DB = "hallwatch"


def find_bin() -> Path | None:
    """The newest PostgreSQL server's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", _USER, "--"]


class Postgres:
    """One PostgreSQL server with its data in `workdir`; restartable on the same port."""

    def __init__(
        self, workdir: str | Path, port: int | None = None, *, fsync: bool = False
    ) -> None:
        """`fsync`: off for tests (durability is the daemon's logic, not the disk's); on for a
        benchmark, as a real server runs."""
        self.workdir = Path(workdir)
        self.data = self.workdir / "data"
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.fsync = fsync
        bindir = find_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL not found: bash scripts/ensure-test-tools")
        self.bin = bindir

    @property
    def url(self) -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{_DB}"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*_as_postgres(), *args], capture_output=True, cwd=self.workdir)
        if done.returncode != 0:
            said = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {said}")

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, _USER, _USER)

    def init(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._chown(self.workdir)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            _USER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def start(self, timeout: float = 30.0) -> None:
        if not (self.data / "PG_VERSION").exists():
            self.init()
        log = open(self.workdir / "postgres.log", "ab")  # the server's
        self.proc = subprocess.Popen(
            [
                *_as_postgres(),
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.workdir),
                "-c",
                f"fsync={'on' if self.fsync else 'off'}",
                "-c",
                "max_connections=100",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_tail()}")
            ok = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ok.returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"postgres did not start in {timeout} s: {self.log_tail()}")
        created = self._createdb(_DB)
        if created.returncode != 0 and b"already exists" not in created.stderr:
            raise RuntimeError(f"createdb: {created.stderr.decode(errors='replace')}")

    def _createdb(self, name: str) -> subprocess.CompletedProcess[bytes]:
        cmd = [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", _USER]
        return subprocess.run([*cmd, name], capture_output=True)

    def database(self, name: str) -> str:
        """A new, empty database `name` on this server; returns its URL."""
        done = self._createdb(name)
        if done.returncode != 0:
            raise RuntimeError(f"createdb {name}: {done.stderr.decode(errors='replace')}")
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{name}"

    def log_tail(self) -> str:
        try:
            return (self.workdir / "postgres.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # A "fast" shutdown: SIGINT to the postmaster, which runs under runuser in the
            # process group we started (signalling runuser alone would not reach it).
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_counter = iter(range(1, 1_000_000))


def server_fixture() -> Iterator[Postgres]:
    """The body of a session fixture: one private server for the session's tests."""
    if find_bin() is None:
        raise RuntimeError("PostgreSQL is not installed: bash scripts/ensure-test-tools")
    # Not under pytest's basetemp: another pytest run as the same user may prune that.
    workdir = Path(tempfile.mkdtemp(prefix="pg-hallwatch-", dir="/tmp"))
    try:
        with Postgres(workdir) as pg:
            yield pg
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def fresh_database(pg: Postgres) -> str:
    """The URL of a new empty database on `pg`: every test its own."""
    return pg.database(f"t{os.getpid()}_{next(_counter)}")
