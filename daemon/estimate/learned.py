"""What the estimator learns and persists (`Learned`) and its snapshot encoding."""

from __future__ import annotations

import msgspec
from hallwatch.daemon.estimate.offpeak import WaitTable

SNAPSHOT_VERSION = 1
ERROR_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0)  # |error|
AGE_BIN_S = 300.0
AGE_BINS = 30
SEP = "\x1f"  # joins hall and ticket/window/service in the keys of `Learned`


class Pending(msgspec.Struct, array_like=True):
    service: str
    estimate: float | None  # as published
    issued_at: float


class Learned(msgspec.Struct):
    """Everything learned from events; the estimator's persistable memory."""

    service_logs: dict[str, list[float]] = msgspec.field(default_factory=dict)
    recall: list[float] = msgspec.field(default_factory=list)
    gaps: list[float] = msgspec.field(default_factory=list)
    pauses: list[float] = msgspec.field(default_factory=list)
    age_bins: list[list[int]] = msgspec.field(
        default_factory=lambda: [[0, 0] for _ in range(AGE_BINS)]
    )  # per bin of wait-at-call: [called, of which no-show]
    cancelled: int = 0
    no_shows: int = 0
    call_age: dict[str, float] = msgspec.field(default_factory=dict)  # hall/ticket -> age at call
    pending: dict[str, Pending] = msgspec.field(default_factory=dict)
    errors: dict[str, list[float]] = msgspec.field(default_factory=dict)  # hall/service: signed
    hist: dict[str, list[float]] = msgspec.field(default_factory=dict)  # buckets..., sum, count
    last_end: dict[str, float] = msgspec.field(default_factory=dict)  # hall/window
    paused_at: dict[str, float] = msgspec.field(default_factory=dict)  # hall/window
    waits: dict[str, WaitTable] = msgspec.field(default_factory=dict)  # hall -> off-peak table
    # Added after version 1 was fixed: left out of the snapshot until first used, so a stored
    # snapshot still re-encodes to the same bytes.
    # hall/bucket -> scaled residuals of forecasts that met their call (`interval.residual`)
    resid: dict[str, list[float]] | msgspec.UnsetType = msgspec.UNSET
    # hall/ticket -> the simulation's forecast behind a pending estimate (before correction)
    forecasts: dict[str, float] | msgspec.UnsetType = msgspec.UNSET
    # log(service time / the service's usual median) of services that overlapped a system outage
    slow: list[float] | msgspec.UnsetType = msgspec.UNSET
    # How long the hall's business-system outages lasted (down to up), seconds, the last 20
    outages: list[float] | msgspec.UnsetType = msgspec.UNSET
    # hall/bucket -> spread residuals of forecasts that met their call (`ranges.residual`)
    zresid: dict[str, list[float]] | msgspec.UnsetType = msgspec.UNSET
    # hall/ticket -> the 10th and 90th percentiles of the runs behind a pending forecast
    spreads: dict[str, list[float]] | msgspec.UnsetType = msgspec.UNSET


class _Envelope(msgspec.Struct):
    """The stored snapshot: a version and the learned data (its bytes must stay stable)."""

    version: int
    learned: Learned


def encode_snapshot(learned: Learned) -> bytes:
    """The snapshot bytes of `learned`."""
    return msgspec.json.encode(_Envelope(SNAPSHOT_VERSION, learned))


def decode_snapshot(blob: bytes) -> Learned | None:
    """The learned data of a snapshot; None if it cannot be read or is of another version."""
    try:
        env = msgspec.json.decode(blob, type=_Envelope)
    except msgspec.DecodeError:
        return None
    return env.learned if env.version == SNAPSHOT_VERSION else None


def push(values: list[float], x: float, keep: int) -> None:
    values.append(x)
    if len(values) > keep:
        del values[: len(values) - keep]
