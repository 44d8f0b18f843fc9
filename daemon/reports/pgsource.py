"""A report's reads on PostgreSQL (`store.url`): every instance's event log in the database,
one event once, and the centre's shared tables.

Each instance keeps its own log (`hallwatch_<instance>.events`, store/postgres.py): the two
daemons of a pair both store every event of their halls, the shards of a province each store
their own halls. A report reads them all and keeps each (hall, id) once. A hall's events keep
the arrival order of the log that holds most of them (of a pair, both logs hold the same
events in the order one broker gave them); an event only another log holds (one daemon was
down and its broker session gone) goes in by event time. The registers, the outbox and the
acknowledgement log are in the shared schema `hallwatch`; each instance's alert engine state
(acknowledgements of episodes still firing) in its own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg
from hallwatch.daemon.reports.hallday import Stored
from hallwatch.daemon.reports.inputs import event_filter
from hallwatch.daemon.store.postgres import SHARED, instance_schema

_INSTANCE = re.escape(instance_schema("")) + ".+"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def merge_logs(logs: Sequence[Sequence[tuple[str, Stored]]]) -> list[Stored]:
    """Events of several logs, each (key, event) in its arrival order, as one: every key once;
    per hall, the order of the log holding most of the hall's events (the first of equals),
    and what only other logs hold slotted in by event time before the first later event."""
    by_hall: dict[str, list[list[tuple[str, Stored]]]] = defaultdict(lambda: [[] for _ in logs])
    for i, log in enumerate(logs):
        for key, ev in log:
            by_hall[ev.hall][i].append((key, ev))
    out: list[Stored] = []
    for hall in sorted(by_hall):
        per_log = by_hall[hall]
        main = max(range(len(per_log)), key=lambda i: (len(per_log[i]), -i))
        seen = {key for key, _ in per_log[main]}
        extra: dict[str, Stored] = {}
        for i, log in enumerate(per_log):
            if i != main:
                for key, ev in log:
                    if key not in seen:
                        extra.setdefault(key, ev)
        rest = sorted(extra.values(), key=lambda e: e.ts)
        j = 0
        for _, ev in per_log[main]:
            while j < len(rest) and rest[j].ts < ev.ts:
                out.append(rest[j])
                j += 1
            out.append(ev)
        out.extend(rest[j:])
    return out


class PgSource:
    """`report.history.Source` on a PostgreSQL database; OSError when it cannot be reached."""

    errors: tuple[type[Exception], ...] = (psycopg.Error,)

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s)
        except psycopg.Error as err:
            raise OSError(f"store.url: {err}".strip()) from err
        self.conn.read_only = True
        self.conn.execute(f"SET search_path TO {_ident(SHARED)}")

    def instances(self, table: str = "events") -> list[str]:
        """The instances' schemas that hold `table` (their event log), by name."""
        rows = self.conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = %s"
            " AND table_schema ~ %s ORDER BY table_schema",
            (table, f"^{_INSTANCE}$"),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def has_table(self, name: str) -> bool:
        """Whether the shared schema has table `name`."""
        return self._has(SHARED, name)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql.replace("?", "%s"), tuple(args)).fetchall()
        except psycopg.OperationalError as err:  # the server went away mid-report
            raise OSError(f"store.url: {err}".strip()) from err

    def events(self, lo: float, hi: float, hall: str | None = None) -> list[Stored]:
        where, args = event_filter(lo, hi, hall)
        logs = []
        for schema in self.instances():
            rows = self.query(
                f"SELECT key, hall, topic, ts, payload FROM {_ident(schema)}.events"
                f" WHERE {where} ORDER BY seq",
                args,
            )
            logs.append(
                [(str(k), Stored(str(h), str(t), float(ts), bytes(p))) for k, h, t, ts, p in rows]
            )
        return merge_logs(logs)

    def rule_states(self) -> list[bytes]:
        """Each instance's saved alert engine state."""
        out: list[bytes] = []
        for schema in self.instances("alert_state"):
            rows = self.query(f"SELECT body FROM {_ident(schema)}.alert_state WHERE name = 'rules'")
            out.extend(bytes(r[0]) for r in rows)
        return out

    def _has(self, schema: str, name: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (schema, name),
        ).fetchone()
        return row is not None

    def close(self) -> None:
        self.conn.close()
