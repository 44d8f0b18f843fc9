"""The /metrics text, cheap at 500 halls: the same bytes as prometheus_client's
`generate_latest`, without formatting again a line that has not changed.

A scrape at 500 halls is ~50,000 samples; formatting each one (label escaping, the value's Go
text) took prometheus_client ~1 s of the event loop. Here every line is formatted by the library
itself (a family of the missing samples handed to `generate_latest`), and kept:
- a family may carry its samples' text already (`chunks`, bytes per hall, built by the state
  collector and the estimator's when an event reaches the hall, see families.py and live.py),
  and then no samples: it is written as it is;
- any other sample's line is looked up by (name, labels, value, timestamp) among the lines of
  the previous scrape, and formatted only when missing. What is kept is the last scrape's lines
  only, so a value that moves costs one line, and the memory stays one scrape's text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

# Samples generate_latest moves to the end of their family, as a family of their own.
_MOVED = ("_created", "_gsum", "_gcount")
_Key = tuple[str, tuple[tuple[str, str], ...], Any, Any]


class _One:
    """A registry of one family, for `generate_latest`."""

    def __init__(self, fam: Metric) -> None:
        self.fam = fam

    def collect(self) -> list[Metric]:
        return [self.fam]


def _bare(fam: Metric, samples: Sequence[Sample] = ()) -> Metric:
    out = Metric(fam.name, fam.documentation, fam.type, fam.unit)
    out.samples = list(samples)
    return out


def lines(fam: Metric, samples: Sequence[Sample]) -> list[bytes]:
    """Each of `samples` (of `fam`, none of them moved to the end) as generate_latest writes it,
    one line each, in order."""
    if not samples:
        return []
    text = generate_latest(_One(_bare(fam, samples)))  # type: ignore[arg-type]
    out = text.split(b"\n")[2:-1]  # past HELP and TYPE; the text ends with a newline
    if len(out) != len(samples):
        raise ValueError(f"{fam.name}: {len(samples)} samples gave {len(out)} lines")
    return [line + b"\n" for line in out]


class _Many:
    def __init__(self, fams: list[Metric]) -> None:
        self.fams = fams

    def collect(self) -> list[Metric]:
        return self.fams


def lines_of(pairs: Sequence[tuple[Metric, Sequence[Sample]]]) -> list[list[bytes]]:
    """`lines(fam, samples)` for each pair, formatted in one call of generate_latest."""
    fams = [_bare(fam, samples) for fam, samples in pairs]
    text = generate_latest(_Many(fams))  # type: ignore[arg-type]
    rows = text.split(b"\n")
    out: list[list[bytes]] = []
    i = 0
    for fam in fams:
        n = len(fam.samples)
        out.append([line + b"\n" for line in rows[i + 2 : i + 2 + n]])
        i += 2 + n
    if i != len(rows) - 1:
        raise ValueError(f"{len(rows) - 1} lines for {i} expected")
    return out


def _moved(fam: Metric, sample: Sample) -> bool:
    return any(sample.name == fam.name + suffix for suffix in _MOVED)


class Renderer:
    """`render(families)`: the exposition of `families`, reusing the previous scrape's lines."""

    def __init__(self) -> None:
        self._lines: dict[_Key, bytes] = {}
        self._heads: dict[tuple[str, str, str], bytes] = {}

    def _head(self, fam: Metric) -> bytes:
        key = (fam.name, fam.type, fam.documentation)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = generate_latest(_One(_bare(fam)))  # type: ignore[arg-type]
        return head

    def render(self, families: Iterable[Metric]) -> bytes:
        out: list[bytes] = []
        kept: dict[_Key, bytes] = {}
        for fam in families:
            chunks: list[bytes] | None = getattr(fam, "chunks", None)
            if chunks is not None:
                out.append(self._head(fam))
                out += chunks
                continue
            if any(_moved(fam, s) for s in fam.samples):
                out.append(generate_latest(_One(fam)))  # type: ignore[arg-type]
                continue
            out.append(self._head(fam))
            keys = [(s.name, tuple(s.labels.items()), s.value, s.timestamp) for s in fam.samples]
            got = [self._lines.get(k) for k in keys]
            missing = [s for s, line in zip(fam.samples, got, strict=True) if line is None]
            fresh = iter(lines(fam, missing))
            for i, line in enumerate(got):
                if line is None:
                    line = next(fresh)
                kept[keys[i]] = line
                out.append(line)
        self._lines = kept
        if len(self._heads) > 1000:  # families come and go only with a new daemon version
            self._heads.clear()
        return b"".join(out)


def plain(families: Iterable[Metric]) -> bytes:
    """The exposition of `families` with no line kept (the fallback should `Renderer` fail): a
    family's `chunks` as they are, every other family by generate_latest."""
    out: list[bytes] = []
    for fam in families:
        chunks: list[bytes] | None = getattr(fam, "chunks", None)
        out.append(generate_latest(_One(_bare(fam) if chunks is not None else fam)))  # type: ignore[arg-type]
        out += chunks or ()
    return b"".join(out)
