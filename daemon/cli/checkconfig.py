"""`hallwatch check-config`: load the settings as `hallwatch run` would, print each hall's hours
and every warning start-up would log (a lunch rotation that leaves a service without a window,
an old key in use). Exit 0: fine; 1: warnings; 2: the config is refused (the key named)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core.hours import Hours, hhmm

Load = Callable[[argparse.Namespace], Settings]


def _line(name: str, h: Hours) -> str:
    lunch = "、".join(s.text() for s in h.lunch) or "-"
    return f"{name}: {hhmm(h.open)}–{hhmm(h.close)}  lunch: {lunch}"


def check_config(args: argparse.Namespace, load: Load) -> int:
    settings = load(args)
    print(f"config ok: {args.config or 'defaults'}")
    print(_line("hours (default)", settings.hours.default))
    for hall, h in sorted(settings.hours.halls.items()):
        print(_line(f"hours.halls.{hall}", h))
    for note in settings.warnings:
        print(f"warning: {note}", file=sys.stderr)
    return 1 if settings.warnings else 0


def add_parser(sub: Any, load: Load) -> None:
    """Mount `check-config`; `load` reads the settings as `hallwatch run` does."""
    p = sub.add_parser(
        "check-config", help="check the settings; print each hall's hours and the warnings"
    )
    p.add_argument("--config", help="TOML settings file (or env HALLWATCH_CONFIG)")
    p.set_defaults(func=lambda args: check_config(args, load))
