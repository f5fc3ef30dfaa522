"""What one benchmark run measures, and the private stack it measures it on.

The bench never shares a stack with a developer: it has its own home and moves every
port of the stack by one offset (10000 by default: Kafka on 19092, the api on 18000).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# The stack's default ports, as in sluice.settings; the bench adds its offset to each.
DEFAULT_PORTS: dict[str, int] = {
    "KAFKA_BOOTSTRAP": 9092,
    "KAFKA_CONTROLLER_PORT": 9093,
    "POSTGRES_PORT": 5433,
    "FAKE_LLM_PORT": 8089,
    "API_PORT": 8000,
    "WORKER_WEB_PORT": 6066,
    "SINKS_QUERY_PORT": 8090,
}

# Settings a developer may have exported that would point the bench at other services.
FOREIGN_SETTINGS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "DATABASE_URL",
    "SLUICE_DATABASE_URL",
    "SLUICE_OPENAI_API_KEY",
    "SLUICE_OPENAI_BASE_URL",
    "SLUICE_CLICKHOUSE_URL",
    "SLUICE_API_HOST",
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LIFTED_LIMIT = 1_000_000


@dataclass(frozen=True)
class StackPorts:
    offset: int = 10_000

    def port(self, name: str) -> int:
        return DEFAULT_PORTS[name] + self.offset

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port('KAFKA_BOOTSTRAP')}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port('API_PORT')}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.port('FAKE_LLM_PORT')}/v1"

    def env(self) -> dict[str, str]:
        """The SLUICE_* port variables of this block."""
        out = {f"SLUICE_{name}": str(self.port(name)) for name in DEFAULT_PORTS}
        out["SLUICE_KAFKA_BOOTSTRAP"] = self.bootstrap
        return out


@dataclass(frozen=True)
class BenchConfig:
    """Everything a run depends on; recorded in the results so a run can be repeated."""

    name: str
    home: Path
    ports: StackPorts
    concurrency: tuple[int, ...] = (10, 100, 300)
    tokens: int = 100  # M: tokens per job
    rate: float = 20.0  # R: tokens/s per stream in the throttled scenarios
    ttft_ms: int = 150  # the simulator's time to first token in the throttled scenarios
    min_jobs: int = 30  # each throttled scenario runs at least this many jobs (in waves)
    unthrottled_s: float = 12.0  # length of each unthrottled closed-loop scenario
    kafka_s: float = 6.0  # length of the bare-Kafka max-rate loop
    kafka_paced_s: float = 4.0  # length of each bare-Kafka loop paced like a scenario
    submissions: int = 300  # HTTP submissions in the submit-rate scenario
    submit_concurrency: int = 32
    profile: bool = True
    scenarios: tuple[str, ...] = (
        "throttled",
        "submissions",
        "unthrottled",
        "kafka",
        "publish",
        "profile",
    )
    keep_stack: bool = False
    quick: bool = False
    results_dir: Path = RESULTS_DIR
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def worker_concurrency(self) -> int:
        """Enough Faust actors that no throttled job waits for a free one."""
        return max(64, max(self.concurrency) + 16)

    @property
    def ideal_completion_s(self) -> float:
        return self.ttft_ms / 1000 + self.tokens / self.rate

    def stack_env(self) -> dict[str, str]:
        """The environment of every stack command: own home, own ports, room for the load.

        The per-user limits are lifted: the bench is one user submitting hundreds of jobs,
        and measures the pipeline, not the limiter's refusals.
        """
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_SETTINGS}
        env.update(self.ports.env())
        env.update(
            {
                "SLUICE_HOME": str(self.home.resolve()),
                "SLUICE_WORKER_CONCURRENCY": str(self.worker_concurrency),
                "SLUICE_SUBMISSIONS_PER_MINUTE": str(LIFTED_LIMIT),
                "SLUICE_MAX_ACTIVE_JOBS_PER_USER": str(LIFTED_LIMIT),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env


def quick_overrides() -> dict[str, object]:
    """--quick: the same scenarios, smaller, in about two minutes."""
    return {
        "concurrency": (10, 100),
        "tokens": 50,
        "min_jobs": 20,
        "unthrottled_s": 5.0,
        "kafka_s": 4.0,
        "kafka_paced_s": 3.0,
        "submissions": 100,
        "profile": False,
        "quick": True,
    }
