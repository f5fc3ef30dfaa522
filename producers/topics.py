"""Topic admin: the project's topics, created with explicit partitions, retention and cleanup.

DESIGN.md forbids relying on broker auto-create, so every topic is made here first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # documented, not in __all__
    AdminClient,
    ConfigResource,
    NewTopic,
)

from schemas.topics import TopicSpec, topic_specs
from sluice.settings import Settings, get_settings

log = logging.getLogger(__name__)

# -1 asks the broker for its default: 1 on the local stack, the cluster's choice elsewhere.
BROKER_DEFAULT_REPLICATION = -1


class TopicAdminError(RuntimeError):
    """The broker refused or did not answer a topic admin request."""


@dataclass(frozen=True)
class TopicState:
    """A topic as the broker has it: partition count and the configs we set."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def configured_topic_specs(settings: Settings | None = None) -> list[TopicSpec]:
    """The topics of schemas.topics with partitions and retention from the settings."""
    s = settings or get_settings()
    return topic_specs(
        tokens_partitions=s.tokens_partitions,
        jobs_partitions=s.jobs_partitions,
        tokens_retention_ms=s.tokens_retention_ms,
    )


def new_topic(spec: TopicSpec) -> NewTopic:
    return NewTopic(
        spec.name,
        num_partitions=spec.partitions,
        replication_factor=BROKER_DEFAULT_REPLICATION,
        config=spec.config(),
    )


def _admin(bootstrap: str) -> AdminClient:
    # librdkafka logs through Python logging rather than straight to stderr.
    return AdminClient({"bootstrap.servers": bootstrap}, logger=log)


def _existing_topics(admin: AdminClient, timeout: float) -> set[str]:
    try:
        return set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as e:
        raise TopicAdminError(f"cannot list topics: {e.args[0].str()}") from e


def ensure_topics(bootstrap: str, specs: Sequence[TopicSpec], timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet and return their names; leave existing ones alone."""
    admin = _admin(bootstrap)
    existing = _existing_topics(admin, timeout)
    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [new_topic(spec) for spec in missing],
        request_timeout=timeout,
        operation_timeout=timeout,  # wait until the topics are usable, not just accepted
    )
    created: list[str] = []
    for spec in missing:
        try:
            futures[spec.name].result()
        except KafkaException as e:
            error: KafkaError = e.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # created meanwhile by another process: that is what we wanted
            raise TopicAdminError(f"cannot create topic {spec.name}: {error.str()}") from e
        created.append(spec.name)
    return created


def describe_topics(
    bootstrap: str, names: Sequence[str], timeout: float = 10.0
) -> dict[str, TopicState]:
    """The broker's view of the named topics that exist; absent names are left out."""
    admin = _admin(bootstrap)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as e:
        raise TopicAdminError(f"cannot list topics: {e.args[0].str()}") from e
    present = [name for name in names if name in metadata.topics]
    if not present:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in present]
    configs = admin.describe_configs(resources, request_timeout=timeout)
    states: dict[str, TopicState] = {}
    for resource, future in configs.items():
        try:
            entries = future.result()
        except KafkaException as e:
            raise TopicAdminError(
                f"cannot describe topic {resource.name}: {e.args[0].str()}"
            ) from e
        states[resource.name] = TopicState(
            name=resource.name,
            partitions=len(metadata.topics[resource.name].partitions),
            config={key: str(entry.value) for key, entry in entries.items()},
        )
    return states


def topic_drift(spec: TopicSpec, state: TopicState) -> list[str]:
    """How an existing topic differs from its spec, in words; empty when it matches."""
    drift: list[str] = []
    if state.partitions != spec.partitions:
        drift.append(f"{state.partitions} partitions, spec says {spec.partitions}")
    for key, wanted in spec.config().items():
        actual = state.config.get(key)
        if actual is not None and actual != wanted:
            drift.append(f"{key}={actual}, spec says {wanted}")
    return drift
