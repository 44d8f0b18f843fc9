"""The bare subscriber `bench users` measures the daemon against, as its own process so its CPU
is read from /proc/PID/stat the same way as the daemon's.

`python -m tests.harness.bare_sub HOST PORT count N`: subscribe to hall/# at QoS 1, json.loads
and count each message; print "ready" once subscribed and "done <wall time>" at the Nth (N = 0:
never). `... record TOPIC OUT`: write (hall, ticket, wall time received) of every message on
TOPIC that names a ticket (estimates; input tickets only when `type` is "issued") to OUT as JSON.
Either way it then runs until its stdin closes, so the bench can read its CPU before it exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def _client(host: str, port: int, client_id: str) -> aiomqtt.Client:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = 2000
    return aiomqtt.Client(
        host, port, identifier=client_id, protocol=aiomqtt.ProtocolVersion.V5, properties=props
    )


def _stdin_closed(loop: asyncio.AbstractEventLoop, done: asyncio.Event) -> None:
    sys.stdin.read()
    loop.call_soon_threadsafe(done.set)


async def _consume(client: aiomqtt.Client, mode: str, arg: str, got: list[object]) -> None:
    count = 0
    want = int(arg) if mode == "count" else 0
    async for msg in client.messages:
        now = time.time()
        body = json.loads(msg.payload)  # type: ignore[arg-type]
        count += 1
        if mode == "count":
            if count == want:
                print(f"done {now:.6f}", flush=True)
            continue
        topic = msg.topic.value
        ticket = body.get("ticket") if isinstance(body, dict) else None
        if ticket is None or ("/estimate" not in topic and body.get("type") != "issued"):
            continue
        got.append((topic.split("/")[1], str(ticket), now))


async def run(host: str, port: int, mode: str, arg: str) -> list[object]:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    got: list[object] = []
    async with _client(host, port, f"bare-{mode}-{time.time_ns()}") as client:
        await client.subscribe("hall/#" if mode == "count" else arg, qos=1)
        threading.Thread(target=_stdin_closed, args=(loop, stop), daemon=True).start()
        print("ready", flush=True)
        task = asyncio.create_task(_consume(client, mode, arg, got))
        await stop.wait()
        task.cancel()
    return got


def main(argv: list[str]) -> int:
    host, port, mode, arg = argv[:4]
    if mode not in ("count", "record"):
        raise SystemExit(f"unknown mode {mode!r}")
    got = asyncio.run(run(host, int(port), mode, arg))
    if len(argv) > 4:
        with open(argv[4], "w") as fh:
            json.dump(got, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
