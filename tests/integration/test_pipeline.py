"""A job submitted over HTTP, end to end: Kafka, worker, WebSocket, Postgres, ClickHouse."""

from __future__ import annotations

import asyncio

import httpx
from confluent_kafka import Consumer, TopicPartition

from schemas.events import decode_token
from schemas.topics import TOKENS
from sluice.jobids import job_id_time_ms
from sluice.settings import get_settings
from tests.integration.conftest import feed, finished_job_feed, submit, tokens_of, wait_for


async def test_job_streams_over_websocket_and_lands_in_postgres_and_clickhouse(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    job_id = await submit(client, "Describe a Kafka partition.", priority="high")
    messages = await feed(api_url, job_id, alice_token)

    tokens = tokens_of(messages)
    assert tokens, "no token arrived over the WebSocket"
    assert [t["seq"] for t in tokens] == list(range(len(tokens))), "gap or reorder in the stream"
    assert messages[-1]["event"] == "streaming.completed"
    assert messages[-1]["data"]["token_count"] == len(tokens)
    text = "".join(t["token"] for t in tokens)

    result = await wait_for(client, f"/api/openai-streaming/{job_id}/results", lambda d: True)
    assert result["status"] == "completed"
    assert result["response"] == text
    assert result["token_usage"]["completion"] == len(tokens)
    assert result["performance_metrics"]["tokens_per_second"] > 0

    metrics = await wait_for(
        client,
        f"/api/openai-streaming/{job_id}/metrics",
        lambda d: d["job_metrics"] is not None and d["token_rows"] >= len(tokens),
    )
    assert metrics["token_rows"] == len(tokens)
    row = metrics["job_metrics"]
    assert row["status"] == "completed"
    assert row["priority"] == "high"
    assert row["completion_tokens"] == len(tokens)
    assert row["estimated_cost_usd"] > 0


async def test_two_jobs_at_once_never_mix_tokens(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    first, second = await asyncio.gather(
        submit(client, "Tell me about consumer groups."),
        submit(client, "Tell me about log compaction, in detail please."),
    )
    feeds = await asyncio.gather(
        feed(api_url, first, alice_token), feed(api_url, second, alice_token)
    )
    for job_id, messages in zip((first, second), feeds, strict=True):
        tokens = tokens_of(messages)
        assert {t["job_id"] for t in tokens} == {job_id}
        assert [t["seq"] for t in tokens] == list(range(len(tokens)))
        result = await wait_for(client, f"/api/openai-streaming/{job_id}/results", lambda d: True)
        assert result["response"] == "".join(t["token"] for t in tokens)
    texts = ["".join(t["token"] for t in tokens_of(m)) for m in feeds]
    assert texts[0] != texts[1]


async def test_subscriber_arriving_after_the_end_gets_the_whole_stream(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    job_id = await submit(client, "Why are logs better than queues?")
    live = await feed(api_url, job_id, alice_token)
    late = await feed(api_url, job_id, alice_token)
    assert late == live


def test_any_kafka_client_reads_one_event_per_token_in_order(alice_token: str) -> None:
    """What `kcat -C -t tokens` shows: keyed by job id, seq order per job."""
    job_id, _ = finished_job_feed(alice_token, "Explain offsets.")
    settings = get_settings()
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": job_id,
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(TOKENS, timeout=10).topics[TOKENS]
        start = job_id_time_ms(job_id) - 5000
        wanted = [TopicPartition(TOKENS, p, start) for p in meta.partitions]
        offsets = consumer.offsets_for_times(wanted, timeout=10)
        consumer.assign(offsets)
        seqs: list[int] = []
        idle = 0
        while idle < 3:
            msg = consumer.poll(1.0)
            if msg is None:
                idle += 1
                continue
            if msg.error() or msg.key() != job_id.encode():
                continue
            seqs.append(decode_token(msg.value()).seq)
    finally:
        consumer.close()
    assert seqs and seqs == list(range(len(seqs)))


async def test_bad_requests_are_refused_with_the_field_named(client: httpx.AsyncClient) -> None:
    cases = [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "priority": "whenever"}, "priority"),
        ({"prompt": "x", "job_type": "poem"}, "job_type"),
        ({"prompt": ["not", "text"]}, "prompt"),
    ]
    for payload, field in cases:
        resp = await client.post("/api/openai-streaming/start", json=payload)
        assert resp.status_code == 422, payload
        assert field in {d["field"] for d in resp.json()["error"]["details"]}
    resp = await client.post(
        "/api/openai-streaming/start",
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_json"
