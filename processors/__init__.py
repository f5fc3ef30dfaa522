"""The worker: Faust agents that run jobs against the LLM and publish every token."""
