"""The local stack: Kafka, Postgres, ClickHouse and the LLM simulator for development and tests."""
