"""What lands on jobs.dlq: the original bytes, where they came from, and why."""

from __future__ import annotations

import asyncio
from typing import Any

from schemas.events import DeadLetter
from schemas.topics import DLQ
from sinks.dead_letters import DeadLetterQueue, dead_letter
from sinks.pipeline import Origin, Rejected


def test_a_dead_letter_keeps_the_payload_position_and_reason() -> None:
    letter = dead_letter(Origin("tokens", 3, 41, b"job-9", b'{"job_id": "job-9"}'), "seq: missing")
    assert letter.job_id == "job-9"
    assert (letter.source_topic, letter.partition, letter.offset) == ("tokens", 3, 41)
    assert letter.reason == "seq: missing"
    assert letter.payload == '{"job_id": "job-9"}'
    assert DeadLetter.model_validate_json(letter.to_bytes()) == letter


def test_bytes_that_are_not_text_are_replaced_and_a_missing_key_is_none() -> None:
    letter = dead_letter(Origin("job-events", 0, 0, None, b"\xff\xfeok"), "undecodable")
    assert letter.job_id is None
    assert letter.payload == "\ufffd\ufffdok"


def test_a_tombstone_becomes_an_empty_payload() -> None:
    assert dead_letter(Origin("tokens", 0, 0, b"k", None), "empty").payload == ""


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append((topic, value, key))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


async def test_the_queue_sends_every_letter_keyed_by_job() -> None:
    producer = RecordingProducer()
    rejected = [
        Rejected(Origin("tokens", 0, 1, b"job-1", b"x"), "bad one"),
        Rejected(Origin("tokens", 0, 2, b"job-2", b"y"), "bad two"),
    ]
    await DeadLetterQueue(producer).send(rejected)
    assert [(topic, key) for topic, _, key in producer.sent] == [(DLQ, b"job-1"), (DLQ, b"job-2")]
    reasons = [DeadLetter.model_validate_json(value).reason for _, value, _ in producer.sent]
    assert reasons == ["bad one", "bad two"]
