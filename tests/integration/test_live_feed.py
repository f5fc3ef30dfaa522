"""The live feed resumes without gaps: late joins, reconnects, api restarts, replicas, SSE,
and slow clients cut off with their resume point while fast ones keep full speed."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.integration.conftest import (
    ApiProcess,
    bearer,
    feed,
    spawn_api,
    submit,
    tokens_of,
    wait_for,
    ws_url,
)

API = "/api/openai-streaming"
SLOW_JOB = {"metadata": {"sluice_tokens_per_second": 25}}  # about 3 s of streaming


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ApiProcess]]:
    logs = tmp_path_factory.mktemp("feed-replicas")
    # 3 s: long for a stalled reader, short of what a busy CI machine makes a fast one wait.
    settings = {"SLUICE_FEED_SEND_TIMEOUT_S": "3", "SLUICE_API_SEND_BUFFER_BYTES": "16384"}
    apis = [spawn_api(logs, **settings) for _ in range(2)]
    try:
        yield apis
    finally:
        for api in apis:
            api.stop()


async def read_tokens(
    url: str, job_id: str, token: str, count: int | None, starting_after: int | None = None
) -> list[dict[str, Any]]:
    """Up to `count` messages (None: to the end) from one connection, then disconnect."""
    target = ws_url(url, job_id)
    if starting_after is not None:
        target += f"?starting_after={starting_after}"
    got: list[dict[str, Any]] = []
    async with (
        asyncio.timeout(60),
        websockets.connect(target, additional_headers=bearer(token)) as ws,
    ):
        async for raw in ws:
            got.append(json.loads(raw))
            tokens = [m for m in got if m["event"] == "token.streamed"]
            if count is not None and len(tokens) >= count:
                break
    return got


def assert_whole_stream(messages: list[dict[str, Any]], response: str) -> None:
    tokens = tokens_of(messages)
    assert [t["sequence_number"] for t in tokens] == list(range(len(tokens))), "gap or repeat"
    assert "".join(t["token"] for t in tokens) == response
    assert messages[-1]["event"] == "streaming.completed"


async def result_text(client: httpx.AsyncClient, job_id: str) -> str:
    result = await wait_for(client, f"{API}/{job_id}/results", lambda d: True)
    text: str = result["response"]
    return text


async def test_mid_stream_join_gets_every_token_from_the_first(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    job_id = await submit(client, "Join me in the middle.", **SLOW_JOB)
    early = asyncio.create_task(feed(api_url, job_id, alice_token))
    await asyncio.sleep(1.5)  # well into the stream
    late = await feed(api_url, job_id, alice_token)
    assert late == await early
    assert_whole_stream(late, await result_text(client, job_id))


async def test_reconnect_with_starting_after_gets_the_rest_exactly_once(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    job_id = await submit(client, "Reconnect to me.", **SLOW_JOB)
    first = await read_tokens(api_url, job_id, alice_token, count=7)
    last = tokens_of(first)[-1]["sequence_number"]
    rest = await read_tokens(api_url, job_id, alice_token, count=None, starting_after=last)
    combined = tokens_of(first) + tokens_of(rest)
    assert_whole_stream([*first, *rest], await result_text(client, job_id))
    assert len(combined) == len({t["sequence_number"] for t in combined})


async def test_client_switches_between_replicas_mid_stream(
    client: httpx.AsyncClient, alice_token: str, replicas: list[ApiProcess]
) -> None:
    job_id = await submit(client, "Switch replicas while I stream.", **SLOW_JOB)
    one = await read_tokens(replicas[0].url, job_id, alice_token, count=5)
    after = tokens_of(one)[-1]["sequence_number"]
    two = await read_tokens(replicas[1].url, job_id, alice_token, count=5, starting_after=after)
    after = tokens_of(two)[-1]["sequence_number"]
    three = await read_tokens(replicas[0].url, job_id, alice_token, None, starting_after=after)
    assert_whole_stream([*one, *two, *three], await result_text(client, job_id))


async def test_stream_resumes_after_its_api_process_restarts(
    client: httpx.AsyncClient, alice_token: str, replicas: list[ApiProcess]
) -> None:
    api = replicas[1]
    job_id = await submit(client, "Restart the api under me.", **SLOW_JOB)
    before = await read_tokens(api.url, job_id, alice_token, count=5)
    api.kill()
    api.start()
    after = tokens_of(before)[-1]["sequence_number"]
    rest = await read_tokens(api.url, job_id, alice_token, None, starting_after=after)
    assert_whole_stream([*before, *rest], await result_text(client, job_id))


async def sse_events(
    url: str, job_id: str, token: str, count: int | None, last_event_id: str | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    headers = bearer(token) | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    events: list[tuple[str, str, dict[str, Any]]] = []
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream("GET", f"{url}{API}/{job_id}/events", headers=headers) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in resp.aiter_lines():
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            events.append((fields["id"], fields["event"], json.loads(fields["data"])))
            fields = {}
            tokens = [e for e in events if e[1] == "token.streamed"]
            if count is not None and len(tokens) >= count:
                break
    return events


async def test_sse_resumes_from_last_event_id(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    job_id = await submit(client, "Stream me as server-sent events.", **SLOW_JOB)
    first = await sse_events(api_url, job_id, alice_token, count=6)
    last_id = first[-1][0]
    rest = await sse_events(api_url, job_id, alice_token, None, last_event_id=last_id)
    messages = [{"event": e, "data": d} for _, e, d in [*first, *rest]]
    assert_whole_stream(messages, await result_text(client, job_id))


def small_window_socket(port: int) -> socket.socket:
    """A client socket with a tiny receive buffer: a reader that stops reading stalls fast."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_slow_client_is_cut_off_with_its_resume_point_while_a_fast_one_keeps_up(
    client: httpx.AsyncClient, alice_token: str, replicas: list[ApiProcess]
) -> None:
    # This replica's connections have a small kernel send buffer, so a reader that stops
    # is felt sooner; loopback still absorbs several hundred kilobytes, hence ~2 MB here.
    api = replicas[0]
    big = {
        "config": {"max_tokens": 8000},
        "metadata": {"sluice_answer_tokens": 8000, "sluice_tokens_per_second": 2000},
    }
    async with httpx.AsyncClient(base_url=api.url, headers=bearer(alice_token)) as on_replica:
        job_id = await submit(on_replica, "A long answer, fast.", **big)
    slow = await websockets.connect(
        ws_url(api.url, job_id),
        sock=small_window_socket(api.port),
        additional_headers=bearer(alice_token),
        max_queue=1,
    )
    started = time.monotonic()
    fast = await read_tokens(api.url, job_id, alice_token, count=None)
    fast_took = time.monotonic() - started
    response = await result_text(client, job_id)
    assert_whole_stream(fast, response)
    assert fast_took < 60, f"the fast client was slowed down: {fast_took:.1f}s"

    await asyncio.sleep(4)  # the slow client has still read nothing: past the send timeout
    got: list[dict[str, Any]] = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(30):
            async for raw in slow:
                got.append(json.loads(raw))
    delivered = tokens_of(got)
    last = delivered[-1]["sequence_number"] if delivered else -1
    assert len(delivered) < len(tokens_of(fast)), "the slow client was not cut off"
    frame = closed.value.rcvd
    if frame is not None:  # the close frame got through the full buffers: it names the point
        assert frame.code == 4408
        assert int(frame.reason.split("resume_after=")[1]) == last
    resume_after = last  # either way the client resumes after the last token it holds

    rest = await read_tokens(api.url, job_id, alice_token, None, starting_after=resume_after)
    assert_whole_stream([*got, *rest], response)
