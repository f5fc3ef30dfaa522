-- Whether a job's token counts, and so its cost, were reported by the provider's usage
-- chunk ('reported') or counted by the worker with the model's tokenizer because the
-- stream ended without one ('counted'). Rows written before the column existed were reported.
ALTER TABLE job_metrics ADD COLUMN IF NOT EXISTS usage_source LowCardinality(String) DEFAULT 'reported';
