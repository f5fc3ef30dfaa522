"""Sinks: lifecycle events and tokens from Kafka into Postgres rows and ClickHouse tables."""
