"""A clustered broker: the daemon on a three-node NATS JetStream cluster's MQTT listeners
(tests/harness/nats.py), `mqtt.more_urls` naming the other nodes. The node the daemon is
connected to stops mid-peak; the daemon reconnects to the next node, resumes its QoS 1 session
(kept in JetStream, replicated) and loses no event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess
from tests.harness.cluster_peak import EXPECTED_STORED, node_stops_mid_peak
from tests.harness.nats import NatsCluster, find_nats

pytestmark = pytest.mark.skipif(find_nats() is None, reason="nats-server is not installed")


async def test_a_node_stops_mid_peak_no_event_lost(
    daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """2,000 door events through a 3-node NATS cluster; the daemon's node stops after 150,
    while the rest are published; the daemon moves to the next node; all are stored once and
    the peak is sent once. n1 rejoins, n2 stops: the daemon moves on, 100 more stored."""
    cluster = NatsCluster(tmp_path / "nats")
    await asyncio.to_thread(cluster.start)
    n1, n2, _ = cluster.nodes

    def n1_back() -> None:
        n1.start()
        cluster.wait_ready()

    try:
        found = await node_stops_mid_peak(
            "nats",
            cluster.nodes,
            daemon_factory,
            tmp_path,
            stop_first=n1.stop,
            first_back=n1_back,
            stop_second=n2.stop,
        )
    finally:
        await asyncio.to_thread(cluster.stop)
    print("\n" + found.line)
    assert (found.stored, found.peaks_sent, found.moved) == (EXPECTED_STORED, 1, (True, True))
