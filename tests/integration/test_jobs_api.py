"""The job lifecycle API as its users see it: every endpoint, auth, and isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest
import websockets

from sluice import accounts
from sluice.settings import get_settings
from tests.integration.conftest import (
    bearer,
    feed,
    mint_token,
    submit,
    tokens_of,
    user_name,
    wait_for,
    ws_url,
)

API = "/api/openai-streaming"


async def finished_job(client: httpx.AsyncClient, api_url: str, token: str, **fields: Any) -> str:
    job_id = await submit(client, fields.pop("prompt", "Summarise the log."), **fields)
    await feed(api_url, job_id, token)
    await wait_for(client, f"{API}/{job_id}/results", lambda d: True)
    return job_id


async def test_status_right_after_accept_is_never_404(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        job_id = await submit(client, "Quick status check, please.")
        resp = await client.get(f"{API}/{job_id}/status")
        assert resp.status_code == 200, resp.text
        assert resp.json()["data"]["status"] in ("queued", "running", "completed")


async def test_a_job_through_every_endpoint(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    resp = await client.post(
        f"{API}/start",
        json={"prompt": "Walk me through log compaction.", "priority": "low", "metadata": {"k": 1}},
    )
    assert resp.status_code == 202
    accepted = resp.json()["data"]
    assert accepted["status"] == "queued" and accepted["priority"] == "low"
    job_id = accepted["job_id"]

    early = await client.get(f"{API}/{job_id}/results")
    if early.status_code != 200:  # still running: results are refused, not faked
        assert early.status_code == 409
        assert early.json()["error"]["code"] == "job_not_finished"

    messages = await feed(api_url, job_id, alice_token)
    text = "".join(t["token"] for t in tokens_of(messages))

    stream = (await client.get(f"{API}/{job_id}/stream")).json()["data"]
    assert stream["partial_response"] == text
    assert stream["tokens_streamed"] == len(tokens_of(messages))
    assert stream["progress_percentage"] == 100.0
    assert stream["last_seq"] == len(tokens_of(messages)) - 1

    result = await wait_for(client, f"{API}/{job_id}/results", lambda d: True)
    assert result["response"] == text
    assert result["quality_metrics"]["estimated_cost_usd"] > 0
    assert result["quality_metrics"]["parse_ok"] is True
    perf = result["performance_metrics"]
    assert perf["ttft_ms"] > 0 and perf["duration_ms"] >= perf["ttft_ms"]
    usage = result["token_usage"]
    assert usage["total"] == usage["prompt"] + usage["completion"]

    status = (await client.get(f"{API}/{job_id}/status")).json()["data"]
    assert status["status"] == "completed" and status["attempt"] == 1
    assert status["submitted_at"] <= status["started_at"] <= status["completed_at"]

    listed = await wait_for(
        client,
        f"{API}/jobs?priority=low&limit=100",
        lambda d: any(j["job_id"] == job_id for j in d["jobs"]),
    )
    assert all(j["priority"] == "low" for j in listed["jobs"])

    again = await client.post(f"{API}/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_finished"


async def test_job_list_is_newest_first_with_cursor_pages(api_url: str, alice_token: str) -> None:
    token = mint_token(user_name("pager"))
    async with httpx.AsyncClient(base_url=api_url, headers=bearer(token), timeout=30) as c:
        ids = [await submit(c, f"Page test {i}.") for i in range(5)]
        await wait_for(c, f"{API}/jobs?limit=100", lambda d: len(d["jobs"]) == 5)
        seen: list[str] = []
        cursor = None
        while True:
            query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = (await c.get(f"{API}/jobs?{query}")).json()["data"]
            seen += [j["job_id"] for j in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(ids))
        bad = await c.get(f"{API}/jobs?cursor=bm9wZQ")
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("job_type", "check"),
    [
        (
            "security_analysis",
            lambda p: sum(p["severity_breakdown"].values()) == len(p["findings"]),
        ),
        ("sentiment_analysis", lambda p: p["label"] in ("positive", "negative", "neutral")),
        ("gas_analysis", lambda p: p["total_estimated_gas_saved"] >= 0),
    ],
)
async def test_job_types_fill_parsed_response(
    client: httpx.AsyncClient, api_url: str, alice_token: str, job_type: str, check: Any
) -> None:
    job_id = await finished_job(
        client, api_url, alice_token, job_type=job_type, prompt="contract C"
    )
    result = (await client.get(f"{API}/{job_id}/results")).json()["data"]
    assert result["quality_metrics"]["parse_ok"] is True, result["quality_metrics"]
    assert check(result["parsed_response"])


async def test_unparseable_answer_keeps_raw_text_and_says_why(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    # Cut at 5 tokens, the JSON answer is incomplete: the raw text stays, parse_ok is false.
    job_id = await finished_job(
        client, api_url, alice_token, job_type="security_analysis", config={"max_tokens": 5}
    )
    result = (await client.get(f"{API}/{job_id}/results")).json()["data"]
    quality = result["quality_metrics"]
    assert quality["parse_ok"] is False and quality["parse_error"]
    assert quality["truncated"] is True and quality["finish_reason"] == "length"
    assert result["response"] and result["parsed_response"] is None


async def test_missing_bad_and_revoked_tokens_get_401(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as anon:
        for headers in ({}, bearer("nonsense"), bearer("slc_000000000000_" + "x" * 43)):
            resp = await anon.post(f"{API}/start", json={"prompt": "hi"}, headers=headers)
            assert resp.status_code == 401
            assert resp.json()["error"]["code"] == "unauthorized"
            assert resp.headers["www-authenticate"] == "Bearer"
        name = user_name("revoked")
        token = mint_token(name)
        ok = await anon.get(f"{API}/jobs", headers=bearer(token))
        assert ok.status_code == 200
        with psycopg.connect(get_settings().resolved_database_url, autocommit=True) as conn:
            accounts.revoke_token(conn, accounts.parse_token(token).token_id)  # type: ignore[union-attr]
        revoked = await anon.get(f"{API}/jobs", headers=bearer(token))
        assert revoked.status_code == 401
        assert "revoked" in revoked.json()["error"]["message"]


async def test_another_users_job_is_exactly_like_a_missing_one(
    client: httpx.AsyncClient, api_url: str, alice_token: str, bob_token: str, admin_token: str
) -> None:
    job_id = await finished_job(client, api_url, alice_token)
    missing = "01a00000-0000-7000-8000-000000000000"
    async with httpx.AsyncClient(base_url=api_url, headers=bearer(bob_token), timeout=30) as bob:
        for method, path in [
            ("GET", "status"),
            ("GET", "stream"),
            ("GET", "results"),
            ("GET", "metrics"),
            ("POST", "cancel"),
        ]:
            theirs = await bob.request(method, f"{API}/{job_id}/{path}")
            nothing = await bob.request(method, f"{API}/{missing}/{path}")
            assert theirs.status_code == nothing.status_code == 404, path
            assert theirs.json()["error"]["code"] == nothing.json()["error"]["code"]
        listed = (await bob.get(f"{API}/jobs?limit=100")).json()["data"]["jobs"]
        assert job_id not in {j["job_id"] for j in listed}

    for token in (bob_token,):
        async with websockets.connect(
            ws_url(api_url, job_id), additional_headers=bearer(token)
        ) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404

    async with httpx.AsyncClient(base_url=api_url, headers=bearer(admin_token), timeout=30) as adm:
        assert (await adm.get(f"{API}/{job_id}/results")).status_code == 200
        listed = await wait_for(
            adm, f"{API}/jobs?limit=100", lambda d: job_id in {j["job_id"] for j in d["jobs"]}
        )
        assert len({j["user_id"] for j in listed["jobs"]}) >= 1
    admin_feed = await feed(api_url, job_id, admin_token)
    assert admin_feed[-1]["event"] == "streaming.completed"


async def test_websocket_accepts_a_token_query_parameter_and_refuses_none(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    job_id = await finished_job(client, api_url, alice_token)
    async with websockets.connect(ws_url(api_url, job_id) + f"?token={alice_token}") as ws:
        first = await asyncio.wait_for(ws.recv(), 10)
        assert '"event"' in str(first)
    async with websockets.connect(ws_url(api_url, job_id)) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_request_bounds_come_from_config(client: httpx.AsyncClient) -> None:
    cases = [
        ({"prompt": "x", "config": {"model": "not-a-model"}}, "config.model"),
        ({"prompt": "x", "config": {"max_tokens": 10**6}}, "config.max_tokens"),
        ({"prompt": "x" * (get_settings().max_prompt_chars + 1)}, "prompt"),
    ]
    for payload, field in cases:
        resp = await client.post(f"{API}/start", json=payload)
        assert resp.status_code == 422, payload
        assert resp.json()["error"]["details"][0]["field"] == field
