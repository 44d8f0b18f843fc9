"""deploy/ha, the pair example, checked by the programs that read it: the daemons' settings
loader, nats-server -t, promtool (config, rules, rule unit tests); the RabbitMQ nodes' file is
the one the five-hall pair proof runs its cluster with (tests/alerts/test_pair_five_halls.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from hallwatch.daemon.config import settings as config

from tests import REPO as ROOT
from tests.harness.nats import find_nats
from tests.harness.pair_day import DEPLOY_RABBIT, rabbit_conf
from tests.test_prometheus import tool

HA = ROOT / "deploy/ha"


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=HA, capture_output=True, text=True, timeout=60, env=env)


def load(name: str, tmp_path: Path) -> config.Settings:
    env = {}
    for var in ("HALLWATCH_API_TOKENS_ADMIN_TOKEN", "HALLWATCH_API_TOKENS_ALERTMANAGER_TOKEN"):
        f = tmp_path / var
        f.write_text("s3cret-" + var.lower()[-12:] + "-0123456789\n")
        env[var + "_FILE"] = str(f)
    return config.load(HA / name, env)


def test_the_two_instances_share_the_store_and_not_the_session(tmp_path: Path) -> None:
    """Both files load; one PostgreSQL, two instance names, two client ids, 3.1.1, and each
    names all three RabbitMQ nodes, starting on a different one."""
    a, b = load("hallwatch-a.toml", tmp_path), load("hallwatch-b.toml", tmp_path)
    assert a.store.url == b.store.url and a.store.url.startswith("postgresql://")
    assert a.store.instance_name() != b.store.instance_name()
    assert a.mqtt.client_id != b.mqtt.client_id
    assert a.mqtt.protocol == b.mqtt.protocol == "3.1.1"
    nodes = {f"rabbit{i}.hall.local" for i in (1, 2, 3)}
    assert {br.host for br in a.mqtt.brokers()} == {br.host for br in b.mqtt.brokers()} == nodes
    assert a.mqtt.brokers()[0] != b.mqtt.brokers()[0]
    assert a.alerts.alertmanager.url != b.alerts.alertmanager.url


@pytest.mark.skipif(find_nats() is None, reason="nats-server is not installed")
@pytest.mark.parametrize("node", [1, 2, 3])
def test_nats_node_config_is_valid(node: int) -> None:
    """nats-server -t accepts each node's file (with its password variables set)."""
    nats = find_nats()
    assert nats is not None
    env = {**os.environ, "HALLWATCH_NATS_PASSWORD": "x" * 24, "SENSORS_NATS_PASSWORD": "y" * 24}
    out = run([nats, "-t", "-c", f"nats/nats{node}.conf"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    text = (HA / f"nats/nats{node}.conf").read_text()
    assert f"server_name: nats{node}" in text and "stream_replicas: 3" in text


def test_promtool_checks_the_pair_config_and_rules() -> None:
    """promtool accepts prometheus.yml (and the rule file it names)."""
    out = run([tool("promtool", package="prometheus"), "check", "config", "prometheus.yml"])
    assert out.returncode == 0, out.stdout + out.stderr


def test_pair_rules_count_each_hall_once() -> None:
    """promtool test rules: two instances reporting the same hall and outbox count once; one
    instance down for 2 minutes raises HallwatchPairDegraded."""
    out = run(
        [tool("promtool", package="prometheus"), "test", "rules", "hallwatch-pair-rules.test.yml"]
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rabbitmq_nodes_keep_sessions_as_quorum_queues() -> None:
    """rabbitmq.conf: three nodes, the MQTT plugin (and metrics) enabled, sessions as quorum
    queues, 2,000 in flight, no anonymous login; the proof's cluster runs with this file's
    mqtt settings."""
    conf = rabbit_conf()
    assert conf["mqtt.durable_queue_type"] == "quorum"
    assert conf["mqtt.prefetch"] == "2000"
    assert conf["mqtt.allow_anonymous"] == "false"
    nodes = [v for k, v in conf.items() if k.startswith("cluster_formation.classic_config.nodes.")]
    assert nodes == [f"rabbit@rabbit{i}" for i in (1, 2, 3)]
    plugins = (DEPLOY_RABBIT.parent / "enabled_plugins").read_text()
    assert "rabbitmq_mqtt" in plugins and "rabbitmq_prometheus" in plugins
    prom = yaml.safe_load((HA / "prometheus.yml").read_text())
    rabbit = [j for j in prom["scrape_configs"] if j["job_name"] == "rabbitmq"]
    port = conf["prometheus.tcp.port"]
    assert rabbit[0]["static_configs"][0]["targets"] == [
        f"rabbit{i}.hall.local:{port}" for i in (1, 2, 3)
    ]


def test_every_alert_is_defined_once_across_the_loaded_rule_files() -> None:
    """prometheus.yml loads the pair's rules and the single daemon's (a link to
    grafana/prometheus/hallwatch-rules.yml); no alert or record is defined in both."""
    prom = yaml.safe_load((HA / "prometheus.yml").read_text())
    assert (HA / "hallwatch-rules.yml").resolve() == ROOT / "grafana/prometheus/hallwatch-rules.yml"
    names: list[str] = []
    for f in prom["rule_files"]:
        for group in yaml.safe_load((HA / f).read_text())["groups"]:
            names += [r.get("alert") or r["record"] for r in group["rules"]]
    assert "HallwatchOutboxStuck" in names
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)
