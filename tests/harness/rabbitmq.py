"""A RabbitMQ cluster with the MQTT plugin, of a test's own (Debian's rabbitmq-server 3.10).

Never the machine's RabbitMQ service: each node has its own name (unique per cluster), data and
log directories, AMQP, distribution and MQTT ports on loopback, and a private Erlang cookie (a
private HOME); the cluster has its own epmd on a port of its own (ERL_EPMD_PORT), so not even the
system's epmd sees our nodes. /etc/rabbitmq is not read (private config, env and plugins files).
Nodes 2.. join node 1 with `rabbitmqctl join_cluster`.

MQTT sessions: with `mqtt.durable_queue_type = quorum` (3.10+) a persistent (clean_session=False)
QoS 1 subscription is a quorum queue, replicated on every node (Raft), so it survives the stop
of any one node of three; a classic queue lives on one node only. RabbitMQ 3.10 speaks MQTT
3.1.1 (not 5); client ids are tracked cluster-wide (a Raft group: needs a majority of nodes).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

from hallwatch.daemon.base.net import free_port

BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts proper: /usr/sbin's wrappers su to `rabbitmq`


def find_rabbitmq() -> str | None:
    server = BIN / "rabbitmq-server"
    plugins = list(Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*/plugins/rabbitmq_mqtt-*"))
    ok = server.is_file() and plugins and shutil.which("epmd")
    return str(server) if ok else None


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Node:
    """One rabbitmq-server; `stop` (clean, or `kill=True`: SIGKILL) and `start` it again on the
    same name, ports and data directory (it rejoins the cluster by itself)."""

    def __init__(self, name: str, workdir: Path, cluster: RabbitCluster) -> None:
        self.name = name
        self.cluster = cluster
        self.dir = workdir / name
        self.nodename = f"{name}-{cluster.tag}@localhost"
        self.amqp_port, self.dist_port, self.mqtt_port = free_port(), free_port(), free_port()
        self.log = self.dir / "console.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def env(self) -> dict[str, str]:
        d = self.dir
        return {
            **self.cluster.env(),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_PID_FILE": str(d / "beam.pid"),
            "ERL_CRASH_DUMP": str(d / "erl_crash.dump"),
        }

    def write_conf(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        extra = "\n".join(f"{k} = {v}" for k, v in self.cluster.conf.items())
        (self.dir / "rabbitmq.conf").write_text(
            f"""\
mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt_port}
mqtt.allow_anonymous = true
log.console = false
log.file.level = info
{extra}
""",
            encoding="utf-8",
        )

    def start(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [str(BIN / "rabbitmq-server")],
                env=self.env(),
                cwd=self.dir,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """`rabbitmqctl -n <this node> args...`; its output, or an error with it."""
        out = subprocess.run(
            [str(BIN / "rabbitmqctl"), "-n", self.nodename, *args],
            env=self.env(),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.name}: {out.stderr}")
        return out.stdout

    def wait_ready(self, timeout: float = 90.0) -> None:
        """The node booted (`await_startup`) and its MQTT listener accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            if port_open(self.mqtt_port):
                self.ctl("await_startup", "--timeout", str(max(1, int(timeout))))
                return
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} did not start:\n{self.tail()}")

    def tail(self) -> str:
        logs = [self.log, *sorted((self.dir / "log").glob("*.log"))]
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in logs if p.exists())

    def stop(self, kill: bool = False, timeout: float = 60.0) -> None:
        """Clean stop (SIGTERM: the script runs `rabbitmqctl stop`), or SIGKILL of the node's
        processes (a crash); SIGKILL anyway after `timeout`."""
        if self.proc is None:
            return
        if kill or self.proc.poll() is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        try:  # the beam may outlive the script (its own process group member)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        deadline = time.monotonic() + timeout
        while port_open(self.mqtt_port) and time.monotonic() < deadline:
            time.sleep(0.2)


class RabbitCluster:
    """`with RabbitCluster(tmp) as c:` nodes r1..rN in one cluster; `c.urls` their MQTT URLs.
    `conf` adds rabbitmq.conf lines (default: durable MQTT sessions as quorum queues)."""

    def __init__(self, workdir: Path, size: int = 3, conf: dict[str, str] | None = None) -> None:
        self.size = size
        self.tag = uuid.uuid4().hex[:8]
        self.workdir = workdir
        self.conf = {"mqtt.durable_queue_type": "quorum"} if conf is None else conf
        self.home = workdir / "home"
        self.epmd_port = free_port()
        self.epmd: subprocess.Popen[bytes] | None = None
        self.nodes = [Node(f"r{i + 1}", workdir, self) for i in range(size)]

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        return {
            **keep,
            "HOME": str(self.home),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(self.workdir / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.workdir / "enabled_plugins"),
        }

    @property
    def urls(self) -> list[str]:
        return [n.mqtt_url for n in self.nodes]

    def _prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper(), encoding="ascii")
        cookie.chmod(0o400)
        (self.workdir / "rabbitmq-env.conf").write_text("", encoding="utf-8")
        (self.workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n", encoding="utf-8")
        for n in self.nodes:
            n.write_conf()
        epmd = shutil.which("epmd")
        assert epmd is not None, "epmd is not installed"
        self.epmd = subprocess.Popen(
            [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.epmd_port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def start(self, timeout: float = 120.0) -> None:
        """Start every node, then join r2.. to r1 (`stop_app`, `join_cluster`, `start_app`)."""
        self._prepare()
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            n.wait_ready(timeout)
        first = self.nodes[0]
        for n in self.nodes[1:]:
            n.ctl("stop_app")
            n.ctl("join_cluster", first.nodename)
            n.ctl("start_app")
            n.wait_ready(timeout)
        if self.size > 1:
            self.wait_running(self.size, timeout)

    def running(self) -> set[str]:
        """Names of the running nodes, as a running node of the cluster sees them."""
        for n in self.nodes:
            if n.proc is None:
                continue
            try:
                out = n.ctl("eval", "rabbit_nodes:all_running().", timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired):
                continue
            return {s.strip(" '[]\n") for s in out.split(",")} - {""}
        return set()

    def wait_running(self, count: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.running()) < count:
            if time.monotonic() > deadline:
                tails = "\n".join(f"{n.name}: {n.tail()}" for n in self.nodes)
                raise TimeoutError(f"the RabbitMQ cluster did not reach {count} nodes:\n{tails}")
            time.sleep(0.5)

    def restart(self, node: Node, timeout: float = 120.0) -> None:
        """Start a stopped node again and wait until the cluster counts it running."""
        node.start()
        node.wait_ready(timeout)
        self.wait_running(sum(n.proc is not None for n in self.nodes), timeout)

    def stop(self) -> None:
        for n in reversed(self.nodes):
            n.stop()
        if self.epmd is not None:
            self.epmd.kill()
            self.epmd.wait()
            self.epmd = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
