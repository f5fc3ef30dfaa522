"""Deterministic, LLM-looking answers and token counts.

The same (messages, seed, model) always gives the same tokens, so tests and
replays can compare answers exactly; a different prompt gives a different answer.
Tokens look like a BPE tokenizer's output: words with their leading space, some
words split into pieces, punctuation as its own token.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Sequence

from sluice.fakellm.formats import structured_answer
from sluice.fakellm.protocol import ChatMessage

MIN_ANSWER_TOKENS = 40
# Sentences are added until the answer reaches a target length drawn up to this value;
# the last sentence can overshoot it by ~30 tokens, so answers stay under ~160 tokens.
MAX_TARGET_TOKENS = 130


def _spaced(words: str) -> tuple[str, ...]:
    """Word tokens as a BPE vocabulary holds them: with their leading space."""
    return tuple(f" {w}" for w in words.split())


_DETERMINERS = _spaced("the each every this that one")
_ADJECTIVES = _spaced(
    "durable ordered partitioned idempotent small separate new reliable slow fast single"
    " late replicated compact busy"
)
_NOUNS = _spaced(
    "Kafka broker topic partition consumer producer offset record stream worker token job"
    " model prompt answer log event client server queue batch replica leader group key"
    " message result request retry schema"
)
_VERBS = _spaced(
    "stores reads writes keeps sends commits replays orders tracks handles delivers retries"
    " emits consumes streams checks balances buffers records forwards"
)
_PREPOSITIONS = _spaced("in on to from with for after before by")
_ADVERBS = _spaced("quickly safely again later first once always")
_CONNECTIVES = _spaced("and but so while because")
_OPENERS = tuple(_spaced(o) for o in ("In practice", "First", "Then", "However", "Finally"))

# Rarer words come out of a BPE tokenizer in pieces; these mimic that.
_PIECES: dict[str, tuple[str, ...]] = {
    " idempotent": (" idem", "pot", "ent"),
    " partitioned": (" partition", "ed"),
    " replicated": (" replic", "ated"),
    " replica": (" replic", "a"),
    " balances": (" bal", "ances"),
    " buffers": (" buff", "ers"),
    " schema": (" sch", "ema"),
}

_WORD = re.compile(r"[A-Za-z]{5,}")


def answer_tokens(
    messages: Sequence[ChatMessage], seed: int | None, model: str, length: int | None = None
) -> list[str]:
    """The full natural answer to a conversation, as a list of tokens ending with ".".

    Its length is between ``MIN_ANSWER_TOKENS`` and roughly 160 tokens; callers cut
    it at ``max_tokens``.
    """
    rng = random.Random(_fingerprint(messages, seed, model))
    structured = structured_answer(messages, rng)
    if structured is not None:
        return structured
    nouns = _NOUNS + _prompt_words(messages)
    target = length or rng.randint(MIN_ANSWER_TOKENS, MAX_TARGET_TOKENS)
    words: list[str] = []
    while len(words) < target:
        words.extend(_sentence(rng, nouns))
    words[0] = words[0].lstrip()  # an answer's first token carries no leading space
    return [piece for word in words for piece in _PIECES.get(word, (word,))]


def count_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """An approximation of the prompt's token count (no real tokenizer involved).

    About 4 tokens per 3 words, plus the few tokens each message's role markers
    cost in OpenAI's chat format.
    """
    per_message = (3 + math.ceil(len(m.text().split()) * 4 / 3) for m in messages)
    return sum(per_message) + 3


def _fingerprint(messages: Sequence[ChatMessage], seed: int | None, model: str) -> int:
    payload = json.dumps(
        {
            "model": model,
            "seed": seed,
            "messages": [m.model_dump(mode="json", exclude_none=True) for m in messages],
        },
        sort_keys=True,
    )
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:8], "big")


def _prompt_words(messages: Sequence[ChatMessage]) -> tuple[str, ...]:
    """A few longer words of the last user message, so answers echo the prompt's topic."""
    user_texts = [m.text() for m in messages if m.role == "user"]
    if not user_texts:
        return ()
    found = dict.fromkeys(w.lower() for w in _WORD.findall(user_texts[-1]))
    return tuple(f" {w}" for w in list(found)[:8])


def _sentence(rng: random.Random, nouns: Sequence[str]) -> list[str]:
    words = _clause(rng, nouns)
    if rng.random() < 0.4:
        words += [",", rng.choice(_CONNECTIVES), *_clause(rng, nouns)]
    if rng.random() < 0.25:
        words = [*rng.choice(_OPENERS), ",", *words]
    else:
        words[0] = " " + words[0][1:].capitalize()
    return [*words, "."]


def _clause(rng: random.Random, nouns: Sequence[str]) -> list[str]:
    words = [*_noun_phrase(rng, nouns), rng.choice(_VERBS), *_noun_phrase(rng, nouns)]
    if rng.random() < 0.35:
        words += [rng.choice(_PREPOSITIONS), *_noun_phrase(rng, nouns)]
    if rng.random() < 0.2:
        words.append(rng.choice(_ADVERBS))
    return words


def _noun_phrase(rng: random.Random, nouns: Sequence[str]) -> list[str]:
    words = [rng.choice(_DETERMINERS)]
    if rng.random() < 0.3:
        words.append(rng.choice(_ADJECTIVES))
    words.append(rng.choice(nouns))
    return words
