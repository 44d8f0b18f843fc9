"""Families kept between scrapes while their key is the same (the estimator's, at 500 halls
~10,000 series built afresh on every scrape: half of a scrape's time), with their text written
once (`chunks`, see exposition.py)."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from hallwatch.daemon.metrics.collectors import writable
from hallwatch.daemon.metrics.exposition import lines_of
from prometheus_client.core import Metric

_MOVED = ("_created", "_gsum", "_gcount")


class KeptFamilies:
    """`get(key, build)`: `build()`'s families, built again only when `key` changed (a None key
    always builds)."""

    def __init__(self) -> None:
        self._key: Hashable | None = None
        self._fams: list[Metric] = []

    def get(self, key: Hashable | None, build: Callable[[], list[Metric]]) -> list[Metric]:
        if key is not None and key == self._key:
            return self._fams
        fams = build()
        for fam in fams:
            fam.samples = [s for s in fam.samples if writable(s)]
        plain = [
            f for f in fams if not any(s.name == f.name + m for s in f.samples for m in _MOVED)
        ]
        for fam, text in zip(plain, lines_of([(f, f.samples) for f in plain]), strict=True):
            fam.chunks = [b"".join(text)]  # type: ignore[attr-defined]
        self._key, self._fams = key, fams
        return fams
