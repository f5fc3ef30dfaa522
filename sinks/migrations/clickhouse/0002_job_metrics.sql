-- One row per finished job. The version column is attempt, so a retried job's
-- highest attempt replaces the earlier ones: read with FINAL.
CREATE TABLE IF NOT EXISTS job_metrics
(
    job_id              String,
    attempt             UInt16,
    user_id             String,
    job_type            LowCardinality(String),
    priority            LowCardinality(String),
    model               LowCardinality(String),
    status              LowCardinality(String),
    queue_wait_ms       Float64,
    ttft_ms             Nullable(Float64),
    duration_ms         Float64,
    prompt_tokens       UInt32,
    completion_tokens   UInt32,
    total_tokens        UInt32,
    token_count         UInt32,
    tokens_per_second   Float64,
    estimated_cost_usd  Float64,
    finish_reason       LowCardinality(Nullable(String)),
    error_code          LowCardinality(Nullable(String)),
    submitted_at        DateTime64(3, 'UTC'),
    started_at          DateTime64(3, 'UTC'),
    finished_at         DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(attempt)
ORDER BY job_id;
