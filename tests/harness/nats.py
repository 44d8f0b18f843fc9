"""A three-node NATS JetStream cluster with MQTT listeners, of a test's own (Debian's nats-server).

Each node has its own client, cluster, MQTT and monitoring ports on loopback and its own
JetStream store directory; the nodes route to each other. NATS keeps MQTT sessions, their
subscriptions and unacknowledged QoS 1 messages in JetStream streams, replicated (here 3 ways),
so a session made on one node is resumed on another. NATS speaks MQTT 3.1.1 (not 5).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.harness.mosquitto import free_port

NATS_SERVER = "/usr/sbin/nats-server"


def find_nats() -> str | None:
    found = shutil.which("nats-server") or NATS_SERVER
    return found if Path(found).is_file() else None


class Node:
    """One nats-server of the cluster; `stop` and `start` it again on the same ports and store."""

    def __init__(self, name: str, workdir: Path, mqtt_extra: str = 'ack_wait: "5s"') -> None:
        self.name = name
        self.workdir = workdir
        self.mqtt_extra = mqtt_extra
        self.port, self.cluster_port = free_port(), free_port()
        self.mqtt_port, self.http_port = free_port(), free_port()
        self.conf = workdir / f"{name}.conf"
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def write_conf(self, peers: list[Node]) -> None:
        routes = ", ".join(f'"nats-route://127.0.0.1:{p.cluster_port}"' for p in peers)
        store = self.workdir / f"{self.name}-js"
        self.conf.write_text(
            f"""
server_name: {self.name}
listen: 127.0.0.1:{self.port}
http: 127.0.0.1:{self.http_port}
jetstream {{
  store_dir: "{store}"
  max_mem: 64MB
  max_file: 256MB
}}
cluster {{
  name: hallwatch
  listen: 127.0.0.1:{self.cluster_port}
  routes: [{routes}]
}}
mqtt {{
  listen: 127.0.0.1:{self.mqtt_port}
  stream_replicas: 3
  {self.mqtt_extra}
}}
""",
            encoding="utf-8",
        )

    def start(self) -> None:
        binary = find_nats()
        assert binary is not None, "nats-server is not installed"
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [binary, "-c", str(self.conf)], stdout=fh, stderr=subprocess.STDOUT
            )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown: the node leaves the cluster), SIGKILL after `timeout`."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def jsz(self) -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/jsz", timeout=2) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}/healthz?js-enabled-only=true", timeout=2
            ) as r:
                return r.status == 200
        except OSError:
            return False


class PortTaken(RuntimeError):
    pass


class NatsCluster:
    """`with NatsCluster(tmp) as c:` three nodes n1..n3; `c.urls` their MQTT URLs. `mqtt_extra`
    goes into each node's `mqtt {}` block: by default a 5 s redelivery, so tests that kill a
    client see its unacknowledged messages again soon (deploy/ha uses NATS's 30 s)."""

    def __init__(self, workdir: Path, size: int = 3, mqtt_extra: str = 'ack_wait: "5s"') -> None:
        self.size = size
        self.mqtt_extra = mqtt_extra
        self._make(workdir)

    def _make(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = [Node(f"n{i + 1}", workdir, self.mqtt_extra) for i in range(self.size)]
        for n in self.nodes:
            n.write_conf([p for p in self.nodes if p is not n])

    def _port_taken(self) -> bool:
        """A node exited because another process took one of its ports after `free_port`."""
        return any(
            n.proc is not None
            and n.proc.poll() is not None
            and "address already in use" in n.log.read_text(errors="replace")
            for n in self.nodes
        )

    @property
    def urls(self) -> list[str]:
        return [n.mqtt_url for n in self.nodes]

    def start(self, timeout: float = 60.0) -> None:
        """Start every node; should one find a port taken (the race between picking a free
        port and binding it, seen in CI), start the cluster again on new ports."""
        for attempt in range(1, 4):
            for n in self.nodes:
                n.start()
            try:
                self.wait_ready(timeout)
                return
            except PortTaken:
                self.stop()
                self._make(self.nodes[0].workdir / f"retry{attempt}")
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Every running node answers healthy and JetStream has a meta leader."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            up = [n for n in self.nodes if n.proc is not None]
            if all(n.healthy() for n in up) and self.meta_leader() is not None:
                return
            if self._port_taken():
                raise PortTaken("a nats-server node could not bind its port")
            time.sleep(0.2)
        tails = "\n".join(f"{n.name}: {n.log.read_text()[-1500:]}" for n in self.nodes)
        raise TimeoutError(f"the NATS cluster did not become ready:\n{tails}")

    def meta_leader(self) -> str | None:
        for n in self.nodes:
            if n.proc is None:
                continue
            try:
                meta = n.jsz().get("meta_cluster")
            except OSError:
                continue
            if isinstance(meta, dict) and meta.get("leader"):
                return str(meta["leader"])
        return None

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
