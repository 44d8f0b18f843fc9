"""Writes grafana/dashboards/*.json from the code in grafana/dashboards_src/.

    python -m grafana.generate           # (re)write the three files
    python -m grafana.generate --check   # exit 1, naming the files that differ from the code

The JSON files are generated: edit the code, regenerate, commit both.
tests/test_dashboards_code.py fails when they part.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana.dashboards_src import centre_overview, hall_wall, operations
from grafana.dashboards_src.common import render

OUT = Path(__file__).resolve().parent / "dashboards"

#: File stem -> the function that builds it.
BOARDS: dict[str, Callable[[], dict[str, object]]] = {
    "centre-overview": centre_overview.build,
    "hall-wall": hall_wall.build,
    "operations": operations.build,
}


def generate() -> dict[str, str]:
    """File name -> the text the code gives for it."""
    return {f"{stem}.json": render(build()) for stem, build in BOARDS.items()}


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def differing(folder: Path) -> list[str]:
    """The generated files that are missing from `folder` or differ there, and any other
    dashboard in it that the code does not make."""
    wanted = generate()
    out = [
        name
        for name, text in wanted.items()
        if not (folder / name).is_file() or (folder / name).read_bytes() != text.encode()
    ]
    out += sorted(p.name for p in folder.glob("*.json") if p.name not in wanted)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    args = parser.parse_args(argv)
    if args.check:
        bad = differing(args.out)
        for name in bad:
            print(f"{args.out / name}: differs from the code; run python -m grafana.generate")
        return 1 if bad else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
