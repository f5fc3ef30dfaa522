"""Shared package: settings, the `sluice` CLI, the local stack and the LLM simulator."""
