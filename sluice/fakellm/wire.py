"""OpenAI's chat-completions wire format: response bodies, stream chunks, SSE framing.

Field order and presence follow what api.openai.com sends, so clients (and byte-level
tests) cannot tell the simulator from the real API.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

SYSTEM_FINGERPRINT = "fp_sluice"
SSE_DONE = b"data: [DONE]\n\n"

FinishReason = Literal["stop", "length"]
JSON = dict[str, Any]


@dataclass(frozen=True)
class Usage:
    """Token counts of one completion."""

    prompt_tokens: int
    completion_tokens: int

    def as_json(self) -> JSON:
        """The ``usage`` object, with the detail breakdowns OpenAI includes."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


@dataclass(frozen=True)
class CompletionHeader:
    """The fields every chunk of one completion repeats."""

    model: str
    id: str = field(default_factory=lambda: "chatcmpl-" + secrets.token_urlsafe(21))
    created: int = field(default_factory=lambda: int(time.time()))

    def fields(self, obj: str) -> JSON:
        """The leading fields of a completion or chunk object."""
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}


def completion(header: CompletionHeader, content: str, finish: FinishReason, usage: Usage) -> JSON:
    """A non-streamed ``chat.completion`` object."""
    message: JSON = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    return {
        **header.fields("chat.completion"),
        "choices": [choice],
        "usage": usage.as_json(),
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def role_chunk(header: CompletionHeader, with_usage: bool) -> JSON:
    """The first chunk of a stream: the assistant role and empty content."""
    return _chunk(header, {"role": "assistant", "content": "", "refusal": None}, None, with_usage)


def content_chunk(header: CompletionHeader, token: str, with_usage: bool) -> JSON:
    """One token of content."""
    return _chunk(header, {"content": token}, None, with_usage)


def finish_chunk(header: CompletionHeader, finish: FinishReason, with_usage: bool) -> JSON:
    """The chunk that ends the choice: empty delta and its finish reason."""
    return _chunk(header, {}, finish, with_usage)


def usage_chunk(header: CompletionHeader, usage: Usage) -> JSON:
    """The last chunk when ``stream_options.include_usage`` is set: no choices, the usage."""
    return {
        **header.fields("chat.completion.chunk"),
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [],
        "usage": usage.as_json(),
    }


def _chunk(
    header: CompletionHeader, delta: JSON, finish: FinishReason | None, with_usage: bool
) -> JSON:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    chunk = {
        **header.fields("chat.completion.chunk"),
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [choice],
    }
    if with_usage:
        chunk["usage"] = None
    return chunk


def sse_event(payload: JSON) -> bytes:
    """One SSE event carrying ``payload`` as compact JSON, the way OpenAI frames it."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def error_body(message: str, error_type: str, param: str | None, code: str | None) -> JSON:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
