"""The local broker's files: pinned pom, server.properties, first-start detection."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sluice.stack import kafka
from sluice.stack.errors import StackError


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_server_properties_make_a_single_node_kraft_broker(tmp_path: Path) -> None:
    props = _properties(
        kafka.server_properties(broker_port=9092, controller_port=9093, data_dir=tmp_path / "data")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "1"


def test_write_config_follows_the_bootstrap_port(tmp_path: Path) -> None:
    layout = kafka.kafka_layout(tmp_path)
    kafka.write_config(layout, bootstrap="127.0.0.1:29092", controller_port=29093)
    props = _properties(layout.server_properties.read_text())
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kafka" / "data")


@pytest.mark.parametrize(
    ("bootstrap", "expected"),
    [
        ("127.0.0.1:9092", ("127.0.0.1", 9092)),
        ("localhost:19092,other:9092", ("localhost", 19092)),
        ("PLAINTEXT://broker.internal:9094", ("broker.internal", 9094)),
        ("[::1]:9092", ("::1", 9092)),
    ],
)
def test_broker_address_reads_the_first_broker(bootstrap: str, expected: tuple[str, int]) -> None:
    assert kafka.broker_address(bootstrap) == expected


@pytest.mark.parametrize("bootstrap", ["", "localhost", "localhost:port"])
def test_broker_address_rejects_what_it_cannot_read(bootstrap: str) -> None:
    with pytest.raises(StackError, match="SLUICE_KAFKA_BOOTSTRAP"):
        kafka.broker_address(bootstrap)


def test_storage_is_formatted_only_once(tmp_path: Path) -> None:
    layout = kafka.kafka_layout(tmp_path)
    assert not layout.is_formatted
    layout.data.mkdir(parents=True)
    (layout.data / "meta.properties").write_text("cluster.id=x\n")
    assert layout.is_formatted
    assert kafka.format_storage(layout) is False  # no java needed: nothing to do


def test_jars_already_fetched_are_not_fetched_again(tmp_path: Path) -> None:
    layout = kafka.kafka_layout(tmp_path)
    layout.libs.mkdir(parents=True)
    (layout.libs / kafka.KAFKA_JAR).write_bytes(b"")
    assert kafka.fetch_jars(layout) is False


def test_pom_pins_the_broker_and_its_log_binding() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(kafka.POM).getroot()
    assert pom.findtext("m:packaging", namespaces=ns) == "pom"
    deps = {
        (d.findtext("m:groupId", namespaces=ns), d.findtext("m:artifactId", namespaces=ns)): (
            d.findtext("m:version", namespaces=ns)
        )
        for d in pom.iterfind("m:dependencies/m:dependency", ns)
    }
    assert deps == {
        ("org.apache.kafka", f"kafka_{kafka.SCALA_VERSION}"): kafka.KAFKA_VERSION,
        ("org.slf4j", "slf4j-reload4j"): "1.7.36",
    }


def test_broker_command_uses_the_fetched_jars_and_log_config(tmp_path: Path) -> None:
    layout = kafka.kafka_layout(tmp_path)
    argv = kafka.broker_argv(layout)
    assert argv[argv.index("-cp") + 1] == f"{layout.libs}/*"
    assert f"-Dlog4j.configuration=file:{kafka.LOG4J_CONFIG}" in argv
    assert kafka.LOG4J_CONFIG.is_file()
    assert argv[-2:] == ["kafka.Kafka", str(layout.server_properties)]
