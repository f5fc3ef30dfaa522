"""Soak: hundreds of jobs through the real stack while faults hit them and processes die.

    python -m bench.soak [--jobs 500] [--fault-rate 0.1] [--seed 5]

Runs against the stack the environment configures (start it first: `make up`, or
`sluice stack up --with-app` with your SLUICE_* settings). A share of the jobs asks the
LLM simulator for a fault (mid-stream disconnect, 500, 503, 429 with Retry-After, a stall)
on its first attempt; a few fail on every attempt and must end in the dead-letter queue.
Mid-run the worker is SIGKILLed and restarted, and later the sinks process (which holds
the embedded ClickHouse) is SIGKILLed and restarted.

Every accepted job is then followed to its end in Postgres, ClickHouse and the DLQ, and
its response compared with the simulator's answer to the same request (deterministic).
The report, bench/results/soak.json and soak.md, counts jobs accepted, completed,
dead-lettered and lost (must be 0), and tokens duplicated in the results (must be 0).
Exit status 0 only when nothing was lost, doubled or wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg

from processors.job_types import chat_messages
from producers.dlq import read_dead_letters
from schemas.jobs import JobType
from sluice import accounts
from sluice.clickhouse import query_clickhouse_sync
from sluice.settings import Settings, get_settings
from sluice.stack.probes import tcp_open
from sluice.stack.procs import Supervisor
from sluice.stack.services import app_services

RESULTS = Path(__file__).parent / "results"
START = "/api/openai-streaming/start"
TERMINAL = {"completed", "failed", "cancelled"}
MODEL = "gpt-4o-mini"
JOBS_PER_USER = 15  # under the api's per-user limits (20 active, 60 a minute)

# Faults on the first attempt only: the job must complete, as attempt 2 (or later).
TRANSIENT: Rows = {
    "disconnect": {"sluice_fault": ["disconnect-after:5"]},
    "500": {"sluice_fault": ["500"]},
    "503": {"sluice_fault": ["503"]},
    "429": {"sluice_fault": ["429:1"]},
    "stall": {"sluice_fault": ["stall-after:3:4000"], "sluice_idle_timeout_s": [1.0]},
}
PERMANENT = "500-every-attempt"  # must end failed, in the DLQ

Rows = dict[str, dict[str, Any]]  # by job id


@dataclass
class PlannedJob:
    index: int
    prompt: str
    job_type: str
    fault: str | None
    metadata: dict[str, Any]
    expect: str  # "completed" or "dead_lettered"
    job_id: str | None = None
    expected_response: str | None = None
    expected_tokens: int = 0


@dataclass
class Chaos:
    at_s: float
    what: str
    detail: str = ""


@dataclass
class Run:
    total: int
    started: float = field(default_factory=time.monotonic)
    chaos: list[Chaos] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    milestones: dict[float, asyncio.Event] = field(default_factory=dict)

    def now(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def accept(self) -> None:
        self.accepted += 1
        for share, reached in self.milestones.items():
            if self.accepted >= share * self.total:
                reached.set()

    async def reached(self, share: float) -> None:
        """Until that share of the jobs has been accepted."""
        event = self.milestones.setdefault(share, asyncio.Event())
        if self.accepted >= share * self.total:
            event.set()
        await event.wait()


def plan(args: argparse.Namespace, max_tries: int) -> list[PlannedJob]:
    rng = random.Random(args.seed)
    faulty = set(rng.sample(range(args.jobs), round(args.jobs * args.fault_rate)))
    kinds = [*TRANSIENT, *TRANSIENT, PERMANENT]  # one in eleven faulty jobs never succeeds
    types = list(JobType)
    jobs: list[PlannedJob] = []
    for i in range(args.jobs):
        pace = {"sluice_tokens_per_second": args.tokens_per_second}
        fault, metadata, expect = None, dict(pace), "completed"
        if i in faulty:
            fault = kinds[len([j for j in jobs if j.fault]) % len(kinds)]
            if fault == PERMANENT:
                metadata["sluice_fault"] = ["500"] * max_tries
                expect = "dead_lettered"
            else:
                metadata.update(TRANSIENT[fault])
        prompt = f"Soak job {i} of run {args.run_id}: what keeps a stream of jobs reliable?"
        jobs.append(PlannedJob(i, prompt, types[i % len(types)].value, fault, metadata, expect))
    return jobs


async def expected_answers(s: Settings, jobs: list[PlannedJob], max_tokens: int) -> None:
    """The simulator's answer to each job's request: what a clean run streams, token for token."""
    client = openai.AsyncOpenAI(
        base_url=s.resolved_openai_base_url, api_key=s.resolved_openai_api_key, max_retries=3
    )
    gate = asyncio.Semaphore(16)

    async def one(job: PlannedJob) -> None:
        async with gate:
            answer = await client.chat.completions.create(
                model=MODEL,
                messages=chat_messages(JobType(job.job_type), job.prompt),
                max_tokens=max_tokens,
                temperature=0.7,
                extra_headers={"x-sluice-tokens-per-second": "0", "x-sluice-ttft-ms": "0"},
            )
            job.expected_response = answer.choices[0].message.content or ""
            job.expected_tokens = answer.usage.completion_tokens if answer.usage else 0

    await asyncio.gather(*(one(j) for j in jobs))


def user_tokens(s: Settings, count: int, run_id: str) -> list[str]:
    with psycopg.connect(s.resolved_database_url, autocommit=True) as conn:
        tokens = []
        for i in range(count):
            name = f"soak-{run_id}-{i}"
            accounts.ensure_user(conn, name)
            tokens.append(accounts.create_token(conn, name, name="soak").token)
        return tokens


async def submit_all(
    s: Settings, jobs: list[PlannedJob], tokens: list[str], rate: float, max_tokens: int, run: Run
) -> None:
    async with httpx.AsyncClient(base_url=s.api_url, timeout=30) as http:

        async def one(job: PlannedJob) -> None:
            token = tokens[job.index % len(tokens)]
            body = {
                "prompt": job.prompt,
                "job_type": job.job_type,
                "config": {"model": MODEL, "max_tokens": max_tokens},
                "metadata": job.metadata,
            }
            for _ in range(30):
                resp = await http.post(
                    START, json=body, headers={"Authorization": f"Bearer {token}"}
                )
                if resp.status_code == 202:
                    job.job_id = resp.json()["data"]["job_id"]
                    run.accept()
                    return
                if resp.status_code not in (429, 503):
                    break
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
            run.refused[str(resp.status_code)] += 1

        pending = []
        for job in jobs:
            pending.append(asyncio.create_task(one(job)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*pending)


def app_service(s: Settings, name: str) -> Any:
    return next(svc for svc in app_services(s, Supervisor(s.home)) if svc.name == name)


def crash_and_restart(s: Settings, name: str) -> str:
    """SIGKILL an app process of the stack, then start it again (blocking)."""
    supervisor = Supervisor(s.home)
    pid = supervisor.pid(name)
    if pid is None:
        return f"{name} was not running"
    os.kill(pid, signal.SIGKILL)
    service = app_service(s, name)
    deadline = time.monotonic() + 15
    while supervisor.is_running(name) or (service.port and tcp_open("127.0.0.1", service.port)):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    began = time.monotonic()
    service.up()
    return f"pid {pid} killed; back in {time.monotonic() - began:.1f} s"


async def chaos(
    s: Settings, jobs: list[PlannedJob], run: Run, kill_worker_at: float, kill_sinks_at: float
) -> None:
    """Kill the worker, then the sinks, once that share of the jobs has been accepted.

    The worker dies while it is busy: once at least a quarter of its slots stream a job.
    """
    busy = max(1, s.worker_concurrency // 4)
    for share, name in ((kill_worker_at, "worker"), (kill_sinks_at, "sinks")):
        await run.reached(share)
        streaming = await running_jobs(s, jobs)
        for _ in range(100):
            if name != "worker" or streaming >= busy:
                break
            await asyncio.sleep(0.2)
            streaming = await running_jobs(s, jobs)
        at = run.now()
        detail = await asyncio.to_thread(crash_and_restart, s, name)
        detail += f"; {streaming} jobs were streaming"
        run.chaos.append(Chaos(at, f"SIGKILL {name} and restart", detail))
        print(f"  [{at:6.1f}s] SIGKILL {name}: {detail}", flush=True)


async def running_jobs(s: Settings, jobs: list[PlannedJob]) -> int:
    """How many of the soak's jobs Postgres shows as streaming now."""
    ids = [j.job_id for j in jobs if j.job_id]
    rows = await asyncio.to_thread(postgres_rows, s, ids)
    return sum(1 for row in rows.values() if row["status"] == "running")


def postgres_rows(s: Settings, ids: list[str]) -> Rows:
    with psycopg.connect(s.resolved_database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT job_id, status, attempt, response, error_code,"
            " (streaming_stats->>'token_count')::int AS token_count"
            " FROM jobs WHERE job_id = ANY(%s)",
            (ids,),
        )
        names = [c.name for c in cur.description or []]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def clickhouse_rows(ids: list[str]) -> Rows:
    """Per job: its metrics row (newest attempt) and its token rows at that attempt."""
    rows: Rows = {}
    for chunk in range(0, len(ids), 200):
        part = ids[chunk : chunk + 200]
        found = query_clickhouse_sync(
            "SELECT m.job_id AS job_id, m.attempt AS attempt, m.status AS status,"
            " m.token_count AS token_count, t.token_rows AS token_rows, t.seqs AS seqs"
            " FROM (SELECT job_id, attempt, status, token_count FROM job_metrics FINAL"
            "       WHERE job_id IN {ids:Array(String)}) AS m"
            " LEFT JOIN (SELECT job_id, attempt, count() AS token_rows, uniqExact(seq) AS seqs"
            "       FROM token_events FINAL WHERE job_id IN {ids:Array(String)}"
            "       GROUP BY job_id, attempt) AS t"
            " ON m.job_id = t.job_id AND m.attempt = t.attempt",
            {"ids": part},
        )
        rows.update({r["job_id"]: r for r in found})
    return rows


async def settle(s: Settings, ids: list[str], limit_s: float, run: Run) -> tuple[Rows, Rows]:
    """Wait until every job has ended in Postgres and has its ClickHouse row, or time is up."""
    deadline = time.monotonic() + limit_s
    while True:
        pg = await asyncio.to_thread(postgres_rows, s, ids)
        ended = [i for i in ids if pg.get(i, {}).get("status") in TERMINAL]
        try:
            ch = await asyncio.to_thread(clickhouse_rows, ended)
        except Exception as exc:  # the sinks' query endpoint is restarting
            ch, note = {}, type(exc).__name__
        else:
            note = ""
        print(
            f"  [{run.now():6.1f}s] ended in Postgres {len(ended)}/{len(ids)},"
            f" in ClickHouse {len(ch)}/{len(ids)} {note}",
            flush=True,
        )
        if (len(ended) == len(ids) and len(ch) == len(ids)) or time.monotonic() > deadline:
            return pg, ch
        await asyncio.sleep(2)


def judge(
    jobs: list[PlannedJob], pg: Rows, ch: Rows, letters: set[str], run: Run
) -> dict[str, Any]:
    accepted = [j for j in jobs if j.job_id]
    outcome: Counter[str] = Counter()
    by_fault: dict[str, Counter[str]] = {}
    attempts: Counter[int] = Counter()
    duplicated = missing = wrong = unexpected = 0
    problems: list[str] = []
    for job in accepted:
        assert job.job_id is not None
        row, metrics = pg.get(job.job_id, {}), ch.get(job.job_id)
        status = row.get("status")
        dead = job.job_id in letters
        kind = "lost" if status not in TERMINAL else ("dead_lettered" if dead else status)
        outcome[kind] += 1
        by_fault.setdefault(job.fault or "none", Counter())[kind] += 1
        attempts[row.get("attempt") or 0] += 1
        if kind != job.expect:
            unexpected += 1
            problems.append(
                f"{job.job_id} ({job.fault or 'no fault'}): {kind}, expected {job.expect}"
            )
        if status != "completed":
            continue
        if row.get("response") != job.expected_response:
            wrong += 1
            problems.append(f"{job.job_id}: response differs from the simulator's answer")
        if metrics is None:
            missing += 1
            problems.append(f"{job.job_id}: no ClickHouse row")
            continue
        # Token rows of the final attempt in ClickHouse and the token count in Postgres,
        # against the clean answer's length: more is a duplicate, fewer a loss.
        want = job.expected_tokens
        rows, seqs = int(metrics["token_rows"] or 0), int(metrics["seqs"] or 0)
        pg_tokens = int(row.get("token_count") or 0)
        duplicated += max(0, rows - seqs) + max(0, seqs - want) + max(0, pg_tokens - want)
        missing += max(0, want - seqs) + max(0, want - pg_tokens)
    return {
        "accepted": len(accepted),
        "refused": dict(run.refused),
        "completed": outcome["completed"],
        "failed_not_dead_lettered": outcome["failed"],
        "dead_lettered": outcome["dead_lettered"],
        "cancelled": outcome["cancelled"],
        "lost": outcome["lost"],
        "duplicated_tokens": duplicated,
        "missing_tokens": missing,
        "wrong_responses": wrong,
        "unexpected_outcomes": unexpected,
        "retried_jobs": sum(n for a, n in attempts.items() if a > 1),
        "attempts": {str(a): n for a, n in sorted(attempts.items())},
        "by_fault": {k: dict(v) for k, v in sorted(by_fault.items())},
        "problems": problems[:50],
    }


def write_report(report: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    r = report["results"]
    lines = [
        "# Soak: jobs under faults and crashes",
        "",
        f"Run {report['run_id']}, {report['finished_at']}: {report['config']['jobs']} jobs,"
        f" {report['config']['fault_rate']:.0%} with an injected fault, the worker SIGKILLed and"
        " the sinks SIGKILLed mid-run (both restarted). Reproduce: `python -m bench.soak`.",
        "",
        "| | |",
        "|---|---|",
        *(
            f"| {name} | {r[key]} |"
            for name, key in (
                ("accepted", "accepted"),
                ("completed", "completed"),
                ("dead-lettered", "dead_lettered"),
                ("failed, not dead-lettered", "failed_not_dead_lettered"),
                ("**lost** (must be 0)", "lost"),
                ("**duplicated tokens** (must be 0)", "duplicated_tokens"),
                ("missing tokens", "missing_tokens"),
                ("responses unlike a clean run", "wrong_responses"),
                ("outcomes other than expected", "unexpected_outcomes"),
                ("jobs that needed more than one attempt", "retried_jobs"),
            )
        ),
        "",
        "Outcomes per injected fault (first attempt only, except `500-every-attempt`):",
        "",
        "| fault | outcomes |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in r["by_fault"].items()),
        "",
        f"Attempts per job (final attempt → jobs): {r['attempts']}",
        "",
        "Chaos:",
        "",
        *(f"- at {c['at_s']} s: {c['what']} ({c['detail']})" for c in report["chaos"]),
        "",
        f"Submitting took {report['timings']['submit_s']} s; every job had ended in Postgres"
        f" and ClickHouse {report['timings']['settle_s']} s later"
        f" ({report['timings']['total_s']} s in all).",
        "",
    ]
    (RESULTS / "soak.md").write_text("\n".join(lines))


async def soak(args: argparse.Namespace) -> int:
    s = get_settings()
    if not s.uses_simulator:
        raise SystemExit("the soak injects faults through the LLM simulator: unset OPENAI_API_KEY")
    async with httpx.AsyncClient(timeout=5) as http:
        (await http.get(f"{s.api_url}/healthz")).raise_for_status()
    jobs = plan(args, s.retry_max_tries)
    run = Run(total=len(jobs))
    print(f"soak {args.run_id}: {len(jobs)} jobs, {sum(1 for j in jobs if j.fault)} with a fault")
    await expected_answers(s, jobs, args.max_tokens)
    tokens = user_tokens(s, math.ceil(len(jobs) / JOBS_PER_USER), args.run_id)
    run.started = time.monotonic()
    chaos_task = asyncio.create_task(chaos(s, jobs, run, args.kill_worker_at, args.kill_sinks_at))
    await submit_all(s, jobs, tokens, args.submit_rate, args.max_tokens, run)
    submitted_s = run.now()
    print(f"  [{submitted_s:6.1f}s] accepted {sum(1 for j in jobs if j.job_id)}", flush=True)
    await chaos_task
    ids = [j.job_id for j in jobs if j.job_id]
    pg, ch = await settle(s, ids, args.timeout, run)
    letters = {
        stored.letter.job_id
        for stored in await asyncio.to_thread(read_dead_letters, s.kafka_bootstrap)
        if stored.letter is not None and stored.letter.job_id
    }
    results = judge(jobs, pg, ch, letters, run)
    total_s = run.now()
    report = {
        "run_id": args.run_id,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "config": {
            "jobs": args.jobs,
            "fault_rate": args.fault_rate,
            "seed": args.seed,
            "tokens_per_second": args.tokens_per_second,
            "max_tokens": args.max_tokens,
            "submit_rate_per_s": args.submit_rate,
            "worker_concurrency": s.worker_concurrency,
            "retry_max_tries": s.retry_max_tries,
        },
        "results": results,
        "chaos": [asdict(c) for c in run.chaos],
        "timings": {
            "submit_s": submitted_s,
            "settle_s": round(total_s - submitted_s, 2),
            "total_s": total_s,
        },
    }
    write_report(report)
    print(json.dumps({k: v for k, v in results.items() if k != "problems"}, indent=2))
    for problem in results["problems"]:
        print(f"  ! {problem}")
    ok = not (
        results["lost"]
        or results["duplicated_tokens"]
        or results["wrong_responses"]
        or results["missing_tokens"]
    )
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--tokens-per-second", type=float, default=20.0)
    parser.add_argument("--max-tokens", type=int, default=60)
    parser.add_argument("--submit-rate", type=float, default=25.0, help="jobs submitted a second")
    parser.add_argument("--kill-worker-at", type=float, default=0.35, help="share accepted")
    parser.add_argument("--kill-sinks-at", type=float, default=0.7, help="share accepted")
    parser.add_argument("--timeout", type=float, default=600.0, help="to settle, in seconds")
    args = parser.parse_args()
    args.run_id = uuid.uuid4().hex[:6]
    raise SystemExit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
