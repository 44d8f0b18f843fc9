"""`hallwatch demo`: an embedded broker, a simulated hall day and the daemon, in one process.

With no broker given, an amqtt broker runs in-process, bound to 127.0.0.1 only (amqtt binds
0.0.0.0 unless told, and speaks MQTT 3.1.1 only, so the daemon uses 3.1.1 against it). The
daemon's clock is the simulated clock, so "how long has the oldest ticket waited" and device
heartbeats read as they would in the hall on that day.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hallwatch.daemon.base.net import free_port
from hallwatch.daemon.cli import logs
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core.state import waiting_counts
from hallwatch.daemon.main import Daemon
from hallwatch.sensors.profiles import PROFILES
from hallwatch.sensors.simulator import Day, publish_live, simulate_day

log = logging.getLogger("hallwatch.demo")
STOP_S = 5.0  # how long the replay may take to see `stop` before it is cancelled


@contextlib.asynccontextmanager
async def embedded_broker(port: int) -> AsyncIterator[str]:
    """An amqtt broker on 127.0.0.1:`port` for the lifetime of the context."""
    from amqtt.broker import Broker
    from amqtt.contexts import BrokerConfig, ListenerConfig

    cfg = BrokerConfig(
        listeners={"default": ListenerConfig(bind=f"127.0.0.1:{port}")},
        plugins={"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    )
    broker = Broker(cfg)
    await broker.start()
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        await broker.shutdown()


class SimClock:
    """Simulated time: starts at `start` and runs `speed` times faster than the wall clock."""

    def __init__(self, start: float, speed: float) -> None:
        self.start, self.speed = start, speed
        self.wall0 = time.monotonic()

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self.wall0) * self.speed


async def run_demo(
    *,
    broker_url: str | None,
    profile_name: str,
    seed: int,
    speed: float,
    listen: str,
    db: str | None,
) -> int:
    # The handlers first: a Ctrl-C during start-up then stops the demo as one later would.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tz = ZoneInfo("Asia/Shanghai")
    profile = dataclasses.replace(PROFILES[profile_name], date=datetime.now(tz).date())
    day: Day = simulate_day(profile, seed)
    with tempfile.TemporaryDirectory(prefix="hallwatch-demo-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            overrides: dict[str, object] = {
                "http.listen": listen,
                "store.path": db or str(Path(tmp) / "demo.db"),
                "mqtt.client_id": "hallwatch-demo",
            }
            if broker_url is None:
                broker_url = await stack.enter_async_context(embedded_broker(free_port()))
                overrides["mqtt.protocol"] = "3.1.1"
            overrides["mqtt.url"] = broker_url
            settings: Settings = config.load(None, {}, overrides)
            clock = SimClock(day.messages[0].at, speed)
            daemon = Daemon(settings, clock=clock)
            async with asyncio.TaskGroup() as tg:
                runner = tg.create_task(daemon.run(stop), name="daemon")
                await daemon.http_started.wait()
                assert daemon.http is not None and daemon.http.bound is not None
                host, port = daemon.http.bound
                broker = settings.mqtt.broker()
                print(
                    f"hallwatch 演示 demo: 模拟大厅 {profile.hall}, 方案 profile={profile_name}, "
                    f"seed={seed}, {speed:g}× 速度",
                    flush=True,
                )
                print(f"  MQTT broker:  {broker.url()}", flush=True)
                print(f"  metrics:      http://{host}:{port}/metrics", flush=True)
                print(f"  hall screen:  http://{host}:{port}/screen/{profile.hall}", flush=True)
                print("  Ctrl-C 停止 (stop)", flush=True)
                clock.wall0 = time.monotonic()

                def progress(sim_at: float, sent: int) -> None:
                    hall = daemon.state.halls.get(profile.hall)
                    today = hall.today if hall else None
                    waiting = sum(waiting_counts(today).values()) if today else 0
                    opened = sum(w.state == "open" for w in hall.windows.values()) if hall else 0
                    print(
                        f"  [{datetime.fromtimestamp(sim_at, tz):%H:%M}] 已发送 {sent:5d} 条 | "
                        f"取号 {today.issued if today else 0:4d} | 等候 {waiting:3d} | "
                        f"大厅人数 {today.occupancy if today else 0:3d} | "
                        f"开放窗口 {opened}",
                        flush=True,
                    )

                async def simulate() -> None:
                    sent = await publish_live(
                        day,
                        host=broker.host,
                        port=broker.port,
                        speed=speed,
                        on_progress=progress,
                        stop=stop,
                    )
                    if not stop.is_set():
                        done = f"  模拟日结束 (day finished): {sent} 条消息; Ctrl-C 停止"
                        print(done, flush=True)

                sim = tg.create_task(simulate(), name="simulator")
                await stop.wait()
                # `stop` ends the replay before its next message; cancel only if it is stuck.
                _, stuck = await asyncio.wait({sim}, timeout=STOP_S)
                if stuck:
                    sim.cancel()
                await runner
    print("hallwatch demo stopped", flush=True)
    return 0


def main_demo(
    broker: str | None, profile: str, seed: int, speed: float, listen: str, db: str | None
) -> int:
    logs.configure("WARNING")
    return asyncio.run(
        run_demo(
            broker_url=broker, profile_name=profile, seed=seed, speed=speed, listen=listen, db=db
        )
    )
