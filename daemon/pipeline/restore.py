"""Start-up: the newest usable snapshot, then the events stored after it, through the pipeline.

The replay is the live path: each stored event is parsed and handed to the same
`Pipeline.process` that ingest uses after its commit, with the same per-event fault isolation, so
an event the state refuses never reaches the estimator, and no stored event can stop start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

import msgspec
from hallwatch.daemon.core import state as state_mod
from hallwatch.daemon.core.state import HallsState, Limits
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.daemon.pipeline.process import Faults, Pipeline
from hallwatch.daemon.store.events import Store
from hallwatch.sensors.events import Rejection
from hallwatch.sensors.parse import parse

log = logging.getLogger("hallwatch")


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def bound_heap() -> None:
    """glibc only (elsewhere nothing): blocks of 1 MiB and more from mmap, given back on free.

    At 500 halls a snapshot is ~28 MB of JSON, encoded (and at start-up decoded) in a few
    copies; glibc raises its mmap threshold to the largest block freed, so from the second
    snapshot on these came from the heap and stayed in the RSS after they were freed
    (in-process, 500 halls: 159 -> 135 MiB restored from a snapshot, 212 -> 164 MiB after one)."""
    lib = _libc()
    if lib is not None:
        lib.mallopt(_M_MMAP_THRESHOLD, 1 << 20)


def give_back() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim), after the big
    transient work of a restore or a snapshot."""
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)


class _Snapshot(msgspec.Struct):
    """What a snapshot row holds: the hall state and the estimator's learned data."""

    state: msgspec.Raw
    estimator: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


def encode_snapshot(state: HallsState, estimator: Estimator) -> bytes:
    return msgspec.json.encode(
        _Snapshot(msgspec.Raw(state_mod.encode(state)), msgspec.Raw(estimator.snapshot()))
    )


def decode_snapshot(blob: bytes) -> tuple[HallsState | None, bytes | None]:
    try:
        snap = msgspec.json.decode(blob, type=_Snapshot)
    except msgspec.DecodeError:
        return None, None
    est = bytes(snap.estimator)
    return state_mod.decode(bytes(snap.state)), None if est == b"null" else est


async def load_snapshot(store: Store, tz: str) -> tuple[HallsState, bytes | None, int]:
    """(state, estimator blob, seq it includes) from the newest snapshot; a snapshot of another
    version or time zone is ignored (a fresh state at seq 0: the whole log gives the same)."""
    snap = await store.latest_snapshot()
    if snap is not None:
        loaded, blob = decode_snapshot(snap[1])
        if loaded is not None and loaded.tz == tz:
            return loaded, blob, snap[0]
        log.info("snapshot at seq %d is not usable here; replaying the whole log", snap[0])
    return HallsState(tz=tz), None, 0


async def replay(
    store: Store,
    after: int,
    root: str,
    pipeline: Pipeline,
    each: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Every event stored after seq `after` through `pipeline`, in arrival order; `each` runs
    after each one (the daemon drains its estimator lane there, so the estimator sees the state
    right after the event, as it does live). Returns (last seq, events replayed)."""
    replayed = 0
    last = after
    async for seq, topic, payload in store.events_after(after):
        last = seq
        event = parse(topic, payload, root)
        if isinstance(event, Rejection):
            # Stored under another topic root or an older, laxer parser: kept, skipped.
            pipeline.unparsable(seq, f"{event.reason.value}: {event.detail[:200]!r}")
            continue
        pipeline.process(event)
        if each is not None:
            each()
        replayed += 1
    return last, replayed


async def restore(
    store: Store, tz: str, root: str, *, limits: Limits | None = None
) -> tuple[HallsState, bytes | None, int, int]:
    """The state alone (no estimator): (state, estimator blob, last seq, events replayed)."""
    state, blob, upto = await load_snapshot(store, tz)
    if limits is not None:
        state.limits = limits
    pipeline = Pipeline(lambda: state, lambda _ev: None, Faults(time.time))
    last, replayed = await replay(store, upto, root, pipeline)
    return state, blob, last, replayed
