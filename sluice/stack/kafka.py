"""Apache Kafka in KRaft mode from the official jars: fetch, configure, format, probe."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from sluice.stack.errors import StackError
from sluice.stack.probes import tcp_open

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
KAFKA_JAR = f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar"
KAFKA_HEAP = "768m"
POM = Path(__file__).with_name("kafka-pom.xml")
LOG4J_CONFIG = Path(__file__).with_name("log4j.properties")
LISTEN_HOST = "127.0.0.1"

# librdkafka reports every refused connection while the broker boots; probes only want yes/no.
_client_log = logging.getLogger("sluice.stack.kafka.client")
_client_log.addHandler(logging.NullHandler())
_client_log.propagate = False


@dataclass(frozen=True)
class KafkaLayout:
    """Where the local broker keeps its jars, config and data under the stack home."""

    root: Path

    @property
    def libs(self) -> Path:
        return self.root / "libs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def server_properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def is_formatted(self) -> bool:
        return (self.data / "meta.properties").exists()


def kafka_layout(home: Path) -> KafkaLayout:
    return KafkaLayout(home.resolve() / "kafka")


def broker_address(bootstrap: str) -> tuple[str, int]:
    """Host and port of the first broker in a bootstrap list such as ``127.0.0.1:9092``."""
    first = bootstrap.split(",")[0].strip()
    first = first.split("://", 1)[-1]
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise StackError(f"cannot read host:port from SLUICE_KAFKA_BOOTSTRAP={bootstrap!r}")
    return host.strip("[]"), int(port)


def server_properties(*, broker_port: int, controller_port: int, data_dir: Path) -> str:
    """server.properties of a single-node KRaft broker that is also its own controller."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LISTEN_HOST}:{controller_port}",
        "listeners": (
            f"PLAINTEXT://{LISTEN_HOST}:{broker_port},CONTROLLER://{LISTEN_HOST}:{controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://{LISTEN_HOST}:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        # Topics are created by the project with explicit settings, never on first use.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        # One broker: internal topics cannot have more replicas than that.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        # Consumers in tests and the demo should get partitions at once, not after 3 s.
        "group.initial.rebalance.delay.ms": "0",
    }
    header = "# Written by `sluice stack up` on every start; edits are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in settings.items())


def java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def _require_java() -> str:
    java = java_executable()
    if java is None:
        raise StackError("Kafka needs Java 17+: install a JRE (make system-deps) or set JAVA_HOME")
    return java


def fetch_jars(layout: KafkaLayout) -> bool:
    """Copy the broker's jars from Maven into layout.libs; False when they are already there."""
    if (layout.libs / KAFKA_JAR).is_file():
        return False
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("fetching Kafka needs Maven: install it (make system-deps)")
    # Copy into a side directory and rename, so an interrupted fetch never looks complete.
    staging = layout.root / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    layout.root.mkdir(parents=True, exist_ok=True)
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (staging / KAFKA_JAR).is_file():
        output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise StackError(f"fetching Kafka {KAFKA_VERSION} with Maven failed:\n{output}")
    shutil.rmtree(layout.libs, ignore_errors=True)
    staging.rename(layout.libs)
    return True


def _storage_tool(layout: KafkaLayout, *args: str) -> str:
    argv = [
        _require_java(),
        "-cp",
        f"{layout.libs}/*",
        # The tool's own log lines would be mixed into the output we parse.
        "-Dlog4j.configuration=file:/dev/null",
        "kafka.tools.StorageTool",
        *args,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise StackError(f"kafka-storage {args[0]} failed:\n{output}")
    return done.stdout


def write_config(layout: KafkaLayout, *, bootstrap: str, controller_port: int) -> None:
    """Write server.properties from the current settings, so port changes apply on restart."""
    _, broker_port = broker_address(bootstrap)
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.server_properties.write_text(
        server_properties(
            broker_port=broker_port, controller_port=controller_port, data_dir=layout.data
        )
    )


def format_storage(layout: KafkaLayout) -> bool:
    """Format the KRaft log directory on first start; False when it already holds a cluster."""
    if layout.is_formatted:
        return False
    lines = _storage_tool(layout, "random-uuid").split()
    if not lines:
        raise StackError("kafka-storage random-uuid printed no cluster id")
    _storage_tool(layout, "format", "-t", lines[-1], "-c", str(layout.server_properties))
    return True


def broker_argv(layout: KafkaLayout) -> list[str]:
    """The broker's command line; needs fetch_jars and write_config first."""
    return [
        java_executable() or "java",
        f"-Xmx{KAFKA_HEAP}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{LOG4J_CONFIG}",
        "-cp",
        f"{layout.libs}/*",
        "kafka.Kafka",
        str(layout.server_properties),
    ]


def prepare_broker(layout: KafkaLayout, *, bootstrap: str, controller_port: int) -> list[str]:
    """Everything before the first start: jars, config, storage. Returns what was done."""
    _require_java()
    done: list[str] = []
    if fetch_jars(layout):
        done.append(f"fetched Kafka {KAFKA_VERSION} jars")
    write_config(layout, bootstrap=bootstrap, controller_port=controller_port)
    if format_storage(layout):
        done.append("formatted storage")
    return done


def kafka_ready(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when the broker answers a metadata request and lists itself."""
    host, port = broker_address(bootstrap)
    if not tcp_open(host, port):
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap}, logger=_client_log)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)
