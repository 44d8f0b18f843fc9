"""Start a private Mosquitto broker on a free loopback port (for benchmarks and tests)."""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from hallwatch.daemon.base.net import free_port

CONF = """\
listener {port} 127.0.0.1
{listener_extra}
# Run as whoever started us: as root, Mosquitto would otherwise switch to the `mosquitto` user
# and silently fail to write its persistence file into our private directory.
user {user}
allow_anonymous {anonymous}
persistence true
persistence_location {dir}/
autosave_interval 0
# A daemon that is down must find every event waiting when it comes back: no queue cap.
max_queued_messages 0
max_queued_bytes 0
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
log_type notice
"""


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


class Mosquitto:
    """A Mosquitto process with persistence in `workdir`; restartable on the same port."""

    def __init__(
        self,
        workdir: str | Path,
        port: int | None = None,
        *,
        listener_extra: str = "",
        anonymous: bool = True,
    ) -> None:
        """`listener_extra`: lines for the listener (TLS files, password_file, ...)."""
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.listener_extra = listener_extra
        self.anonymous = anonymous
        self.proc: subprocess.Popen[bytes] | None = None
        exe = find_mosquitto()
        if exe is None:
            raise RuntimeError("mosquitto not found: apt-get install mosquitto")
        self.exe = exe

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            CONF.format(
                port=self.port,
                dir=self.workdir,
                user=getpass.getuser(),
                listener_extra=self.listener_extra,
                anonymous="true" if self.anonymous else "false",
            )
        )
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited at start: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it; SIGTERM lets it write its persistence file, as a service restart would."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

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
