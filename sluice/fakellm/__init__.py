"""An OpenAI-compatible chat-completions simulator.

It speaks the same wire format as the OpenAI API (JSON completions and SSE chunk
streams ending in ``[DONE]``) with deterministic text, a configurable
time-to-first-token and tokens/sec, and per-request fault injection, so the
pipeline can be developed, tested and benchmarked without a real model.
"""
