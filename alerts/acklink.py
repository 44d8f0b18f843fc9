"""Acknowledgement links and codes in alert messages, and what the phone page records.

`AckLinks` makes, per alert and role, the signed link (`{duty.public_url}/ack/{token}`, valid
`duty.link_ttl_s` after its message) or, for an SMS and when there is no public URL, the code;
and finds the alert and role a link or code was made for (`resolve`). The key is
`duty.key`, or a file generated once beside the database (`ack-link.key`, mode 0600). Neither
the key nor a token is ever logged.

The page's acknowledgement is kept in `alert_ack_details` (who from the roster, which role, how
many emergency windows were opened, the note) beside the alert service's `alert_acks`, in the
outbox's database (alerts/outbox.py; shared by the instances in PostgreSQL).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.rules import Episode
from hallwatch.daemon.base import signing
from hallwatch.daemon.config.roster import DutySettings

log = logging.getLogger("hallwatch.alerts")
KEY_FILE = "ack-link.key"


@dataclass(frozen=True, slots=True)
class Found:
    """The alert and role a link or code was made for."""

    episode: Episode
    role: str
    expiry: float
    token: str  # as given (a link's token or a code), for the page's form


@dataclass(frozen=True, slots=True)
class AckDetail:
    alert_id: str
    hall: str
    role: str
    person_id: str
    person: str
    windows: int
    note: str
    acked_at: float


class AckLinks:
    """Links and codes for one key; `resolve` is the page's only way in."""

    def __init__(self, duty: DutySettings, key: bytes) -> None:
        self.duty = duty
        self._key = key
        self.base = duty.public_url.rstrip("/")

    @classmethod
    def start(cls, duty: DutySettings, store_path: str) -> AckLinks:
        """The key from `duty.key`, else from (or created in) the database's directory; an
        in-memory database gets a key for this run only."""
        if duty.key:
            return cls(duty, duty.key.encode())
        if store_path == ":memory:":
            log.warning("no duty.key and no database file: acknowledgement links last one run")
            return cls(duty, secrets.token_hex(32).encode())
        path = Path(store_path).resolve().parent / KEY_FILE
        key = signing.load_key(path)
        log.info("acknowledgement links signed with the key in %s", path)
        return cls(duty, key)

    def link(self, alert_id: str, role: str, hall: str, at: float) -> str | None:
        """The signed link of a message sent at `at`; None without a public URL."""
        if not self.base:
            return None
        token = signing.sign(self._key, alert_id, role, hall, at + self.duty.link_ttl_s)
        return f"{self.base}/ack/{token}"

    def code(self, alert_id: str, role: str, hall: str) -> str:
        return signing.code(self._key, alert_id, role, hall)

    def entry_url(self) -> str:
        """Where a code is typed in: "{public_url}/ack", or the path alone."""
        return f"{self.base}/ack"

    def resolve(
        self,
        text: str,
        now: float,
        episodes: Iterable[Episode],
        roles_of: Callable[[str], Iterable[str]],
    ) -> Found | str:
        """The alert and role of a token or code, or why not: "forged" (no alert and role of
        ours signed it: tampered, made up, another key, or an alert long gone) or "expired"."""
        pairs = [(e, r) for e in episodes for r in roles_of(e.hall)]
        token = signing.parse(text)
        if token is not None:
            for e, role in pairs:
                if signing.ref(e.alert_id, role) == token.ref:
                    if not token.valid(self._key, e.alert_id, role, e.hall):
                        continue
                    if token.expired(now):
                        return "expired"
                    return Found(e, role, float(token.expiry), text)
            return "forged"
        given = signing.normal_code(text)
        if given is None:
            return "forged"
        for e, role in pairs:
            if signing.same_code(self.code(e.alert_id, role, e.hall), given):
                # A code holds no expiry: it is good for link_ttl_s after the latest message.
                expiry = max(e.last_notified, e.since) + self.duty.link_ttl_s
                return "expired" if now > expiry else Found(e, role, expiry, text)
        return "forged"


async def record(outbox: Outbox, d: AckDetail) -> None:
    """Keep the page's acknowledgement (the first of an episode counts)."""
    await outbox.write(
        "INSERT INTO alert_ack_details VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (d.alert_id, d.hall, d.role, d.person_id, d.person, d.windows, d.note, d.acked_at),
    )
