-- One row per job: its latest known state. Every column but job_id and status
-- is nullable because lifecycle events may arrive in any order.
CREATE TABLE IF NOT EXISTS jobs (
    job_id              text PRIMARY KEY,
    job_type            text,
    user_id             text,
    priority            text,
    status              text NOT NULL,
    attempt             integer,
    prompt              text,
    response            text,
    parsed_response     jsonb,
    config              jsonb,
    metadata            jsonb,
    token_usage         jsonb,
    processing_time_ms  double precision,
    streaming_stats     jsonb,
    error_message       text,
    error_code          text,
    submitted_at        timestamptz,
    started_at          timestamptz,
    completed_at        timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    last_event_id       text
);

-- A user's jobs, newest first.
CREATE INDEX IF NOT EXISTS jobs_user_submitted_idx ON jobs (user_id, submitted_at DESC);

-- Dashboards list jobs by status, most recently changed first.
CREATE INDEX IF NOT EXISTS jobs_status_updated_idx ON jobs (status, updated_at DESC);
