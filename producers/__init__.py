"""Writing to Kafka: job submission, control commands, topic admin."""
