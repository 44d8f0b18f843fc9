"""daemon/mqtt/props.py: paho's MQTT 5 properties with shared tables behave as paho's own."""

from __future__ import annotations

import asyncio

import pytest
from hallwatch.daemon.mqtt.props import PAHO_INIT, TABLES, share_tables
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties


def _paho_tables() -> dict[str, object]:
    fresh = Properties.__new__(Properties)
    PAHO_INIT(fresh, PacketTypes.PUBLISH)
    return {name: getattr(fresh, name) for name in TABLES}


def test_shared_properties_pack_unpack_and_validate_as_paho_does() -> None:
    """With shared tables, properties of a CONNECT and a PUBLISH pack and unpack to the same
    values, a bad value or a property of another packet is refused as before, and the tables
    are still what paho builds (paho never wrote to them), shared by every instance."""
    share_tables()
    connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    connect.SessionExpiryInterval = 3600
    connect.ReceiveMaximum = 100
    publish = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    publish.UserProperty = ("hall", "h1")
    publish.UserProperty = ("kind", "ticket")
    publish.MessageExpiryInterval = 60
    for props, kind in ((connect, PacketTypes.CONNECT), (publish, PacketTypes.PUBLISH)):
        back = Properties(kind)  # type: ignore[no-untyped-call]
        back.unpack(props.pack())  # type: ignore[no-untyped-call]
        assert back.json() == props.json()  # type: ignore[no-untyped-call]
    assert publish.UserProperty == [("hall", "h1"), ("kind", "ticket")]
    with pytest.raises(MQTTException):
        connect.ReceiveMaximum = 0
    with pytest.raises(MQTTException):
        publish.SessionExpiryInterval = 1  # a CONNECT property
    assert {n: getattr(publish, n) for n in TABLES} == _paho_tables()
    assert all(getattr(publish, n) is getattr(connect, n) for n in TABLES)


def test_the_daemon_client_shares_the_tables() -> None:
    """Making the daemon's MQTT client switches paho to the shared tables (the ingest path)."""
    from hallwatch.daemon.config.settings import Settings
    from hallwatch.daemon.mqtt.client import make_client

    Properties.__init__ = PAHO_INIT  # type: ignore[method-assign]  # as before any client

    async def make() -> None:
        make_client(Settings())

    asyncio.run(make())
    a = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    b = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    assert a.names is b.names and a.properties is b.properties
