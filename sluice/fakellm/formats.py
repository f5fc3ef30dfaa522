"""Structured answers: when a system prompt asks for one of sluice's JSON formats, the
simulator answers in that format, so each job type's parser can be exercised here.

The format is recognised by the keys the system prompt names, the way a model reads
an instruction; any other prompt gets free text.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence

from sluice.fakellm.protocol import ChatMessage

_TOKEN = re.compile(r"\s?\w+|\s?[^\w\s]|\s+")
_SEVERITIES = ("critical", "high", "medium", "low", "info")
_ISSUES = (
    "Reentrancy in withdraw",
    "Unchecked return value of transfer",
    "Integer overflow in reward maths",
    "Missing access control on setOwner",
    "Timestamp dependence in lottery draw",
    "Unbounded loop over holders",
)
_SAVINGS = (
    "Pack storage variables into one slot",
    "Cache array length outside the loop",
    "Use calldata instead of memory for arguments",
    "Mark constants as immutable",
    "Replace require strings with custom errors",
)


def _security(rng: random.Random) -> dict[str, object]:
    picks = rng.sample(_ISSUES, rng.randint(1, 4))
    findings = [
        {
            "title": title,
            "severity": rng.choice(_SEVERITIES),
            "location": f"Contract.sol:{rng.randint(10, 400)}",
            "recommendation": "Apply the checks-effects-interactions pattern.",
        }
        for title in picks
    ]
    return {"findings": findings, "summary": f"{len(findings)} findings."}


def _gas(rng: random.Random) -> dict[str, object]:
    picks = rng.sample(_SAVINGS, rng.randint(1, 4))
    return {
        "optimizations": [
            {"title": t, "estimated_gas_saved": rng.randint(2, 200) * 100} for t in picks
        ]
    }


def _sentiment(rng: random.Random) -> dict[str, object]:
    label = rng.choice(("positive", "negative", "neutral"))
    score = {"positive": 0.7, "negative": -0.7, "neutral": 0.0}[label] + rng.uniform(-0.2, 0.2)
    return {"label": label, "score": round(score, 2)}


_FORMATS: tuple[tuple[tuple[str, ...], Callable[[random.Random], dict[str, object]]], ...] = (
    (('"findings"', '"severity"'), _security),
    (('"optimizations"', '"estimated_gas_saved"'), _gas),
    (('"label"', '"score"'), _sentiment),
)


def structured_answer(messages: Sequence[ChatMessage], rng: random.Random) -> list[str] | None:
    """The answer's tokens in the JSON format the system prompt asks for, if it asks for one."""
    system = " ".join(m.text() for m in messages if m.role in ("system", "developer"))
    for keys, build in _FORMATS:
        if all(k in system for k in keys):
            return _TOKEN.findall(json.dumps(build(rng)))
    return None
