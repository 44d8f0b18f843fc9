"""The settings engine: a TOML table, the environment and flags into typed frozen dataclasses.

The model is the dataclasses themselves: each field's type, `msgspec.Meta` constraints
(`ge`, `le`, `pattern`, `min_length`, a `description` for the README) and `Literal` choices.
msgspec converts and checks the table against it (strict: a TOML string is not an int) and
builds the objects. This module adds what msgspec leaves to the caller:

- layering: a value from `HALLWATCH_<KEY>` or a file named by `HALLWATCH_<KEY>_FILE` replaces
  the file's (every key of a table listed in `env_tables`, and `Secret` keys anywhere), a flag
  replaces both; such strings are converted to the key's type by msgspec (`strict=False`), lists
  comma-separated;
- unknown keys refused with a did-you-mean, and moved keys (a class's `MOVED`) with their new
  place;
- every error as a `ConfigError` naming the key (`alerts.halls.h1.queue_peak.wait_s`: msgspec
  says `$.halls[...]`, so the failing entry is found again here);
- `Check` rules no Meta can say (a time zone exists), and a dataclass's `problems()` for rules
  across keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import msgspec
from hallwatch.daemon.base.errors import ConfigError, env_name
from msgspec import Meta

T = TypeVar("T")
MISSING: Any = object()


class Secret:
    """Marks a secret: also read from `HALLWATCH_<KEY>[_FILE]` wherever its table is, never
    echoed in an error (its field has `repr=False` too)."""


SECRET = Secret()


@dataclasses.dataclass(frozen=True)
class Check:
    """A rule msgspec cannot say: `test(value)` gives a problem or None; `says` is the rule
    as the README's reference shows it."""

    test: Callable[[Any], str | None]
    says: str


def doc(text: str) -> Meta:
    """The one-line meaning of a key, for the README's reference."""
    return Meta(description=text)


# --- the model's types ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Node:
    """One annotated type: the bare type, its Meta constraints and our markers."""

    tp: Any
    metas: tuple[Meta, ...] = ()
    marks: tuple[Any, ...] = ()

    @property
    def secret(self) -> bool:
        return any(isinstance(m, Secret) for m in self.marks)

    @property
    def checks(self) -> list[Check]:
        return [m for m in self.marks if isinstance(m, Check)]

    @property
    def bare(self) -> Any:
        """The type without `| None`."""
        return optional(self.tp)[0]

    def meta(self, name: str) -> Any:
        values = [getattr(m, name) for m in self.metas if getattr(m, name) is not None]
        return values[-1] if values else None


@functools.cache
def node(tp: Any) -> Node:
    """`Annotated[X | None, ...]` and `Annotated[X, ...] | None` alike."""
    extra: list[Any] = []
    if get_origin(tp) is Annotated:
        tp, *extra = get_args(tp)
    inner, is_optional = optional(tp)
    if is_optional and get_origin(inner) is Annotated:
        inner, *more = get_args(inner)
        tp, extra = inner | None, [*more, *extra]
    metas = tuple(m for m in extra if isinstance(m, Meta))
    return Node(tp, metas, tuple(m for m in extra if not isinstance(m, Meta)))


def optional(tp: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (tp, False)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(tp)):
            return args[0], True
    return tp, False


@functools.cache
def fields_of(cls: type) -> dict[str, tuple[Any, dataclasses.Field[Any]]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: (hints[f.name], f) for f in dataclasses.fields(cls) if f.init}


@functools.cache
def is_table(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def mapping_of(tp: Any) -> tuple[Any, Any] | None:
    if get_origin(tp) in (dict, Mapping):
        key, value = get_args(tp)
        return key, value
    return None


def item_of(tp: Any) -> Any | None:
    """The item type of `tuple[X, ...]` or `list[X]`."""
    if get_origin(tp) in (tuple, list):
        return get_args(tp)[0]
    return None


def join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return MISSING


# --- reading --------------------------------------------------------------------------------


def read(
    data: Any,
    cls: type[T],
    key: str,
    env: Mapping[str, str],
    *,
    env_tables: frozenset[str] = frozenset(),
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """`data` (a TOML table) with the environment and `overrides` (`key` -> value) over it,
    as a checked `cls`; any bad value is a ConfigError naming its key."""
    raw = _Layers(env, overrides or {}, env_tables).table(data, cls, key, False)
    try:
        obj = msgspec.convert(raw, cls)
    except msgspec.ValidationError as err:
        raise explain(str(err), raw, cls, key) from None
    check(obj, cls, key)
    return obj


class _Layers:
    """Checks the names in a raw table and lays the environment and the flags over it."""

    def __init__(
        self, env: Mapping[str, str], overrides: Mapping[str, Any], env_tables: frozenset[str]
    ) -> None:
        self.env, self.overrides, self.env_tables = env, overrides, env_tables

    def table(self, value: Any, cls: type, key: str, env_all: bool) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ConfigError(key, "must be a table")
        env_all = env_all or key in self.env_tables
        fields = fields_of(cls)
        for name in value:
            if name not in fields:
                raise unknown(join(key, name), name, list(fields), getattr(cls, "MOVED", {}))
        out = dict(value)
        for name, (tp, _) in fields.items():
            fkey, n = join(key, name), node(tp)
            bare = n.bare
            if is_table(bare):
                sub = self.table(value.get(name, {}), bare, fkey, env_all)
                if name in value or sub:
                    out[name] = sub
            elif (pair := mapping_of(bare)) is not None:
                out[name] = self.mapping(value.get(name, {}), pair, fkey, env_all)
            else:
                leaf = self.leaf(value.get(name, MISSING), n, fkey, env_all)
                if leaf is not MISSING:
                    out[name] = leaf
        return out

    def mapping(self, value: Any, pair: tuple[Any, Any], key: str, env_all: bool) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ConfigError(key, "must be a table")
        key_node, item = node(pair[0]), node(pair[1]).bare
        for name in value:
            problem = name_problem(name, key_node)
            if problem:
                raise ConfigError(join(key, name), problem)
        if not is_table(item):
            return value
        return {k: self.table(v, item, join(key, k), env_all) for k, v in value.items()}

    def leaf(self, value: Any, n: Node, key: str, env_all: bool) -> Any:
        if env_all or n.secret:
            var = env_name(key)
            if var + "_FILE" in self.env:
                try:
                    text = Path(self.env[var + "_FILE"]).read_text(encoding="utf-8").strip()
                except OSError as err:
                    raise ConfigError(key, f"cannot read {var}_FILE: {err.strerror}") from None
                except ValueError as err:  # a NUL in the name, or not UTF-8 text
                    why = "not UTF-8" if isinstance(err, UnicodeDecodeError) else "a bad name"
                    raise ConfigError(key, f"cannot read {var}_FILE: {why}") from None
                value = from_text(text, n, key)
            elif var in self.env:
                text = self.env[var]
                value = from_text(text.strip() if n.secret else text, n, key)
        flag = self.overrides.get(key)
        if flag is not None:
            value = from_text(flag, n, key) if isinstance(flag, str) else flag
        if value is MISSING:
            return value
        bare, is_optional = optional(n.tp)
        if is_optional and value == "":
            return None  # an optional setting left empty is not set
        if bare is time and isinstance(value, str):
            return clock(value, key)
        return value


def unknown(key: str, name: str, known: list[str], moved: Mapping[str, str]) -> ConfigError:
    if name in moved:
        return ConfigError(key, f"moved: {moved[name]}")
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else f" (known: {', '.join(known)})"
    return ConfigError(key, f"unknown {'section' if '.' not in key else 'key'}{hint}")


def name_problem(name: str, n: Node) -> str | None:
    """Why a table's name may not be used as a key of a map (`[alerts.halls.NAME]`)."""
    if get_origin(n.tp) is Literal:
        choices = get_args(n.tp)
        return None if name in choices else f"unknown name (one of {', '.join(choices)})"
    pattern = n.meta("pattern")
    if pattern and not re.search(pattern, name):
        return f"names match {shown(pattern)}"
    return None


def from_text(text: str, n: Node, key: str) -> Any:
    """A string from the environment or a flag as the key's type (lists: comma-separated)."""
    bare, is_optional = optional(n.tp)
    if (is_optional and text == "") or bare is time:
        return text
    item = item_of(bare)
    target: Any = bare
    value: Any = text
    if item is not None:
        value = [v.strip() for v in text.split(",") if v.strip()]
        target = list[node(item).tp]  # type: ignore[misc]
    try:
        return msgspec.convert(value, target, strict=False)
    except msgspec.ValidationError as err:
        shown_text = "the value" if n.secret else repr(text)
        raise ConfigError(key, f"{shown_text} is not {type_name(bare)} ({err})") from None


def clock(value: str, key: str) -> time:
    if re.fullmatch(r"\d{2}:\d{2}", value):
        h, m = int(value[:2]), int(value[3:])
        if h < 24 and m < 60:
            return time(h, m)
    raise ConfigError(key, f'expected "HH:MM", got {value!r}')


# --- errors ---------------------------------------------------------------------------------


def explain(text: str, raw: Any, cls: type, key: str) -> ConfigError:
    """msgspec's error as a ConfigError naming the key (and the entry of a map by its name)."""
    found = re.fullmatch(r"(.*?)(?: - at (?:`key` in )?`\$(.*)`)?", text, re.S)
    message, path = (found[1], found[2] or "") if found else (text, "")
    parts = [key] if key else []
    tp: Any = cls
    value: Any = raw
    for attr, index in re.findall(r"\.([^.\[]+)|\[([^\]]*)\]", path):
        bare = node(tp).bare
        if attr and is_table(bare):
            tp = fields_of(bare)[attr][0]
            value = value.get(attr, MISSING) if isinstance(value, dict) else MISSING
            parts.append(attr)
        elif index == "..." and (pair := mapping_of(bare)) and isinstance(value, dict):
            name = failing_entry(value, pair)
            parts.append(name)
            tp, value = pair[1], value.get(name, MISSING)
        elif (item := item_of(bare)) is not None:
            tp = item
            value = value[int(index)] if isinstance(value, list) and index.isdigit() else value
    missing = re.fullmatch(r"Object missing required field `(\w+)`", message)
    if missing and is_table(node(tp).bare):
        name = missing[1]
        n = node(fields_of(node(tp).bare)[name][0])
        where = join(".".join(parts), name)
        hint = f": set it in the file or {env_name(where)}" if n.secret else ""
        return ConfigError(where, "missing" + hint)
    n = node(tp)
    said = rule(tp) if re.search(r"[<>]=?|length|matching|Invalid enum", message) else ""
    said = "must be " + said if said else message[:1].lower() + message[1:].replace("`", "")
    where = ".".join(parts)
    if n.secret:
        said += f"; best from a file named by {env_name(where)}_FILE"
    elif value is not MISSING and not isinstance(value, dict):
        said += f", got {value!r}"
    return ConfigError(where, said)


def failing_entry(value: dict[str, Any], pair: tuple[Any, Any]) -> str:
    """The name of the first entry of a map that does not convert."""
    for name, body in value.items():
        try:
            msgspec.convert({name: body}, dict[pair[0], pair[1]])  # type: ignore[valid-type]
        except msgspec.ValidationError:
            return str(name)
    return "?"


def check(obj: Any, cls: type, key: str) -> None:
    """The `Check` rules of each key, then each table's `problems()`, depth first."""
    for name, (tp, _) in fields_of(cls).items():
        value, fkey, n = getattr(obj, name), join(key, name), node(tp)
        if value is None:
            continue
        for c in n.checks:
            problem = c.test(value)
            if problem:
                raise ConfigError(fkey, problem)
        if is_table(n.bare):
            check(value, n.bare, fkey)
        elif (pair := mapping_of(n.bare)) and is_table(node(pair[1]).bare):
            for k, item in value.items():
                check(item, node(pair[1]).bare, join(fkey, k))
    problems: Callable[[], Iterator[tuple[str, str]]] | None = getattr(obj, "problems", None)
    for name, message in problems() if problems else ():
        raise ConfigError(join(key, name), message)


# --- what a type means, in words (errors and the README's reference) -----------------------


def shown(pattern: str) -> str:
    return pattern.removeprefix(r"\A").removesuffix(r"\Z")


def type_name(tp: Any) -> str:
    bare, is_optional = optional(node(tp).tp)
    item = item_of(bare)
    if item is not None:
        name = f"list of {type_name(item)}"
    elif (pair := mapping_of(bare)) is not None:
        name = f"table of {type_name(pair[1])}"
    elif get_origin(bare) is Literal:
        name = type(get_args(bare)[0]).__name__
    elif bare is time:
        name = '"HH:MM"'
    else:
        name = getattr(bare, "__name__", str(bare))
    return f"{name} or unset" if is_optional else name


def rule(tp: Any) -> str:
    """The constraints of a type in words (`1-65535`, `a positive integer`); "" if none.
    An error says `must be ` and this."""
    n = node(tp)
    bare = n.bare
    said = [c.says for c in n.checks]
    if get_origin(bare) is Literal:
        said.append("one of " + ", ".join(str(a) for a in get_args(bare)))
    lo, hi = n.meta("ge"), n.meta("le")
    if lo is not None and hi is not None:
        said.append(f"{lo}-{hi}")
    elif lo == 1 and bare is int:
        said.append("a positive integer")
    elif lo is not None:
        said.append(f"at least {lo}")
    elif n.meta("gt") is not None:
        said.append(f"more than {n.meta('gt')}")
    short, long = n.meta("min_length"), n.meta("max_length")
    if short and long:
        said.append(f"{short}-{long} characters")
    elif short:
        said.append("non-empty" if short == 1 else f"at least {short} characters")
    if n.meta("pattern"):
        said.append(f"of the form `{shown(n.meta('pattern'))}`")
    item = item_of(bare)
    if item is not None and rule(item):
        said.append("each " + rule(item))
    return ", ".join(said)


# --- types the sections share ---------------------------------------------------------------

PositiveInt = Annotated[int, Meta(ge=1)]
Positive = Annotated[float, Meta(gt=0)]
NotNegative = Annotated[float, Meta(ge=0)]
#: A name of a table: a hall, role, robot, webhook, token or system.
Name = Annotated[str, Meta(pattern=r"\A[A-Za-z0-9_.-]{1,64}\Z")]


def _zone_problem(value: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Asia" is a directory: OSError
        return f"unknown time zone {value!r}"
    return None


ZONE = Check(_zone_problem, "an IANA time zone")


def http_url_problem(value: str) -> str | None:
    """None for an http(s) URL with a host; else a message showing only scheme and host (a URL
    may hold a key in its query)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
    except ValueError:
        return "must be an http(s) URL, got '?'"
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    return f"must be an http(s) URL, got {parts.scheme + '://' + str(parts.hostname)!r}"


HTTP_URL = Check(http_url_problem, "an http(s) URL")
