-- depends: 0001_jobs
-- Users and their API tokens. Tokens are stored only as SHA-256 hashes of their
-- secret part: a token is 256 bits of randomness, so a slow password hash adds nothing.
CREATE TABLE IF NOT EXISTS users (
    user_id     text PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS api_tokens (
    token_id      text PRIMARY KEY,
    user_id       text NOT NULL REFERENCES users (user_id),
    name          text NOT NULL DEFAULT '',
    secret_hash   bytea NOT NULL,
    scopes        text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS api_tokens_user_idx ON api_tokens (user_id);

-- Every job the api accepted, written in the same transaction that checks the
-- caller's limits, so the limits hold across any number of api replicas.
CREATE TABLE IF NOT EXISTS job_admissions (
    job_id       text PRIMARY KEY,
    user_id      text NOT NULL,
    admitted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS job_admissions_user_time_idx ON job_admissions (user_id, admitted_at DESC);
