-- One row per streamed token. Replaying an event inserts the same key again,
-- and ReplacingMergeTree keeps one row per (job_id, attempt, seq): read with FINAL.
CREATE TABLE IF NOT EXISTS token_events
(
    job_id   String,
    attempt  UInt16,
    seq      UInt32,
    text     String,
    ts       DateTime64(3, 'UTC'),
    user_id  String DEFAULT ''
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (job_id, attempt, seq);
