-- What analytics read: one row per finished job (its highest finished attempt) with every
-- figure, and one row per gap between two consecutive tokens of that attempt. Both read
-- job_rollup only, never token_events. Time columns are UTC; buckets use finished_at.
CREATE VIEW IF NOT EXISTS jobs AS
SELECT
    job_id,
    attempt,
    o.user_id AS user_id,
    o.job_type AS job_type,
    o.priority AS priority,
    o.model AS model,
    o.status AS status,
    nullIf(o.error_code, '') AS error_code,
    nullIf(o.finish_reason, '') AS finish_reason,
    o.usage_source AS usage_source,
    o.queue_wait_ms AS queue_wait_ms,
    o.ttft_ms AS ttft_ms,
    o.duration_ms AS duration_ms,
    o.prompt_tokens AS prompt_tokens,
    o.completion_tokens AS completion_tokens,
    o.total_tokens AS total_tokens,
    o.token_count AS token_count,
    o.tokens_per_second AS tokens_per_second,
    o.estimated_cost_usd AS estimated_cost_usd,
    o.submitted_at AS submitted_at,
    o.started_at AS started_at,
    o.finished_at AS finished_at,
    length(times) AS streamed_tokens,
    arrayMap(
        g -> toFloat64(g),
        arrayPopFront(arrayDifference(arrayMap(t -> toUnixTimestamp64Milli(t.ts), times)))
    ) AS token_gaps_ms
FROM
(
    SELECT
        job_id,
        attempt,
        max(outcome) AS o,
        arraySort(groupUniqArrayArray(token_times)) AS times
    FROM job_rollup
    GROUP BY job_id, attempt
    HAVING o.status != ''
    ORDER BY job_id ASC, attempt DESC
    LIMIT 1 BY job_id
);

CREATE VIEW IF NOT EXISTS token_gaps AS
SELECT
    job_id,
    attempt,
    user_id,
    job_type,
    priority,
    model,
    status,
    finished_at,
    seq,
    gap_ms
FROM jobs
ARRAY JOIN
    token_gaps_ms AS gap_ms,
    arrayEnumerate(token_gaps_ms) AS seq;
