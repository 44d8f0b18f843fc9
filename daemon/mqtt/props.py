"""paho-mqtt's MQTT 5 `Properties`, made without rebuilding its tables each time.

paho builds a `Properties` for every PUBLISH received over MQTT 5 (and every one sent), and its
`__init__` builds the same three tables anew each time: the 7 type names, the 27 property names,
and which packets each property applies to (with a `list.index` per entry). At 4,500 events/s
that was 14 % of the daemon's CPU, the largest single item (py-spy, `bench users` ingest, #14).
The tables are never written after `__init__` (paho reads them only), so every instance gets the
ones paho built once, here. `share_tables()` is idempotent; tests/daemon/mqtt/test_props.py
checks that paho's own behaviour (validation, decoding) is unchanged and fails, naming the
table, if a paho release starts writing to one.
"""

from __future__ import annotations

from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TABLES = ("types", "names", "properties")
PAHO_INIT = Properties.__init__  # paho's own, for the tests to compare against


def _shared_init(self: Properties, packetType: int) -> None:
    object.__setattr__(self, "packetType", packetType)
    for name, table in _TEMPLATE.items():
        object.__setattr__(self, name, table)


_TEMPLATE: dict[str, Any] = {}


def share_tables() -> None:
    """Every `Properties` made from now on shares paho's tables, built once."""
    if not _TEMPLATE:
        one = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        _TEMPLATE.update({name: getattr(one, name) for name in TABLES})
    Properties.__init__ = _shared_init  # type: ignore[method-assign]
