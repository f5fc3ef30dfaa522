"""Typed settings for every sluice process, read once from the environment.

Env vars are prefixed ``SLUICE_``; the standard ``OPENAI_*`` and ``DATABASE_URL``
are read under their usual names so existing deployments need no renaming.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sluice.pricing import DEFAULT_PRICES_PER_MILLION


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLUICE_", extra="ignore")

    home: Path = Field(default=Path(".sluice"), description="where the local stack keeps data")

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    tokens_partitions: int = 6
    tokens_retention_ms: int = 7 * 24 * 3600 * 1000
    jobs_partitions: int = 6

    # Postgres: DATABASE_URL wins; otherwise the local stack's server.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SLUICE_DATABASE_URL")
    )
    postgres_port: int = 5433

    # ClickHouse: chdb://<dir> (embedded, default) or http(s)://host:8123
    clickhouse_url: str | None = None
    clickhouse_batch_rows: int = 5000
    clickhouse_flush_seconds: float = 0.5
    sinks_query_port: int = 8090

    # LLM: OpenAI or any compatible server; the simulator when no key is configured.
    openai_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "SLUICE_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "SLUICE_OPENAI_BASE_URL")
    )
    fake_llm_port: int = 8089
    fake_llm_tokens_per_second: float = 40.0
    fake_llm_ttft_ms: int = 150

    # api
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # live feed: records buffered per subscriber before a slow one is cut off (resumable)
    feed_buffer_records: int = 2000
    # a WebSocket client that takes longer than this to accept a message is closed,
    # with the sequence number to resume after
    feed_send_timeout_s: float = 10.0
    # Postgres connections per api process (auth, admission, reads)
    api_db_pool_size: int = 20
    # kernel send buffer per api connection, in bytes (0: the kernel's autotuning)
    api_send_buffer_bytes: int = 0
    # per-user limits, enforced in Postgres so they hold across api replicas
    submissions_per_minute: int = 60
    max_active_jobs_per_user: int = 20
    # a job admitted longer ago than this no longer counts as active, even if it never ended
    active_job_window_s: int = 2 * 3600
    # request bounds
    max_prompt_chars: int = 100_000
    max_tokens_limit: int = 16_384
    allowed_models: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRICES_PER_MILLION),
        description="models a job may ask for (default: the priced ones); '[\"*\"]' for any",
    )

    # worker
    worker_concurrency: int = 64
    worker_web_port: int = 6066

    # retries and faults
    retry_max_tries: int = Field(default=3, ge=1, description="attempts a job may fail")
    retry_backoff_initial_s: float = Field(default=1.0, gt=0)
    retry_backoff_max_s: float = Field(default=60.0, gt=0)
    retry_after_max_s: float = Field(default=300.0, gt=0, description="cap on a Retry-After")
    job_timeout_s: float = Field(default=1800.0, gt=0, description="from a job's first start")
    llm_idle_timeout_s: float = Field(default=60.0, gt=0, description="no chunk for this long")
    worker_shutdown_grace_s: float = Field(default=6.0, ge=0, description="SIGTERM: finish")
    worker_session_timeout_s: float = Field(default=10.0, ge=6, description="crash detection")
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_min_calls: int = Field(default=8, ge=1)
    breaker_window_s: float = Field(default=30.0, gt=0)
    breaker_open_s: float = Field(default=10.0, gt=0)
    worker_status_urls: list[str] | None = Field(
        default=None, description="workers' status pages; default: the local worker"
    )

    # scheduling (worker_concurrency above is the slot count); caps of 0 mean none
    starvation_every: int = Field(
        default=10, ge=0, description="every Nth slot goes to an older lower-priority job"
    )
    max_running_per_user: int = Field(default=0, ge=0, description="slots one user may hold")
    max_running_per_model: int = Field(default=0, ge=0, description="slots one model may hold")
    model_rate_limits: dict[str, tuple[int, int]] = Field(
        default_factory=dict,
        description='client-side (requests/min, tokens/min) per model, e.g. {"gpt-4o":[500,30000]}',
    )

    @property
    def resolved_worker_status_urls(self) -> list[str]:
        if self.worker_status_urls is not None:
            return self.worker_status_urls
        return [f"http://127.0.0.1:{self.worker_web_port}"]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"postgresql://sluice@127.0.0.1:{self.postgres_port}/sluice"

    @property
    def resolved_clickhouse_url(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.home / 'clickhouse').resolve()}"

    @property
    def clickhouse_is_embedded(self) -> bool:
        return self.resolved_clickhouse_url.startswith("chdb://")

    @property
    def uses_simulator(self) -> bool:
        return not self.openai_api_key

    @property
    def resolved_openai_base_url(self) -> str | None:
        if self.openai_base_url:
            return self.openai_base_url
        if self.uses_simulator:
            return f"http://127.0.0.1:{self.fake_llm_port}/v1"
        return None

    @property
    def resolved_openai_api_key(self) -> str:
        return self.openai_api_key or "sk-sluice-simulator"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
