"""Topic admin without a broker: what would be created, and how drift is reported."""

from __future__ import annotations

import pytest

from producers.topics import TopicState, configured_topic_specs, new_topic, topic_drift
from schemas.topics import DLQ, PRIORITY_TOPICS, TOKENS, TopicSpec
from sluice.settings import Settings


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SLUICE_TOKENS_PARTITIONS", "3")
    monkeypatch.setenv("SLUICE_JOBS_PARTITIONS", "2")
    monkeypatch.setenv("SLUICE_TOKENS_RETENTION_MS", "3600000")
    return Settings()


def test_specs_take_partitions_and_retention_from_settings(settings: Settings) -> None:
    specs = {spec.name: spec for spec in configured_topic_specs(settings)}
    assert set(PRIORITY_TOPICS) <= specs.keys()
    assert all(specs[name].partitions == 2 for name in PRIORITY_TOPICS)
    assert specs[TOKENS].partitions == 3
    assert specs[TOKENS].retention_ms == 3_600_000
    assert specs[DLQ].partitions == 1


def test_new_topic_carries_explicit_partitions_and_configs(settings: Settings) -> None:
    tokens = next(spec for spec in configured_topic_specs(settings) if spec.name == TOKENS)
    topic = new_topic(tokens)
    assert topic.topic == TOKENS
    assert topic.num_partitions == 3
    assert topic.replication_factor == -1  # the broker's default, not a guess
    assert topic.config == {
        "cleanup.policy": "delete",
        "retention.ms": "3600000",
        "compression.type": "zstd",
    }


def test_topic_matching_its_spec_has_no_drift() -> None:
    spec = TopicSpec("tokens", 6, 1000)
    state = TopicState("tokens", 6, {**spec.config(), "segment.bytes": "1073741824"})
    assert topic_drift(spec, state) == []


def test_drift_names_partitions_and_configs_that_differ() -> None:
    spec = TopicSpec("tokens", 6, 1000)
    state = TopicState("tokens", 3, {**spec.config(), "retention.ms": "5"})
    assert topic_drift(spec, state) == [
        "3 partitions, spec says 6",
        "retention.ms=5, spec says 1000",
    ]
