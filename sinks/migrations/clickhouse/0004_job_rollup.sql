-- One row per attempt of a job, merged from both streams: the terminal event's figures
-- (from job_metrics) and the timestamp of every streamed token (from token_events).
--
-- Materialized views see every insert, including a replayed event that the raw tables'
-- ReplacingMergeTree would fold away at merge time. So this rollup is keyed by job and
-- attempt, and every column merges idempotently: the outcome keeps the latest-finishing
-- terminal event whole (max of a tuple led by finished_at), and the token timestamps are a
-- set of (seq, ts). Inserting the same event twice, in any order and any batch, changes
-- nothing. The views in 0005 pick each job's highest finished attempt. See docs/analytics.md.
CREATE TABLE IF NOT EXISTS job_rollup
(
    job_id       String,
    attempt      UInt16,
    outcome      SimpleAggregateFunction(max, Tuple(
        finished_at        DateTime64(3, 'UTC'),
        user_id            String,
        job_type           String,
        priority           String,
        model              String,
        status             String,
        error_code         String,
        finish_reason      String,
        usage_source       String,
        queue_wait_ms      Float64,
        ttft_ms            Nullable(Float64),
        duration_ms        Float64,
        prompt_tokens      UInt32,
        completion_tokens  UInt32,
        total_tokens       UInt32,
        token_count        UInt32,
        tokens_per_second  Float64,
        estimated_cost_usd Float64,
        submitted_at       DateTime64(3, 'UTC'),
        started_at         DateTime64(3, 'UTC'))),
    token_times  SimpleAggregateFunction(groupUniqArrayArray,
        Array(Tuple(seq UInt32, ts DateTime64(3, 'UTC'))))
)
ENGINE = AggregatingMergeTree
ORDER BY (job_id, attempt);

CREATE MATERIALIZED VIEW IF NOT EXISTS job_rollup_from_metrics TO job_rollup AS
SELECT
    job_id,
    attempt,
    tuple(
        finished_at, user_id, job_type, priority, model, status,
        ifNull(error_code, ''), ifNull(finish_reason, ''), usage_source,
        queue_wait_ms, ttft_ms, duration_ms,
        prompt_tokens, completion_tokens, total_tokens, token_count,
        tokens_per_second, estimated_cost_usd, submitted_at, started_at
    ) AS outcome
FROM job_metrics;

CREATE MATERIALIZED VIEW IF NOT EXISTS job_rollup_from_tokens TO job_rollup AS
SELECT
    job_id,
    attempt,
    groupUniqArray((seq, ts)) AS token_times
FROM token_events
GROUP BY job_id, attempt;
