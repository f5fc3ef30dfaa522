"""The job-type registry: what each type asks the model, its defaults, and how its
answer is parsed into `parsed_response`. Pure code, shared by the worker and the api."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from schemas.jobs import JobType


class ParseOutcome(BaseModel):
    ok: bool
    parsed: dict[str, Any] | None = None
    error: str | None = None


Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")


class Finding(BaseModel):
    title: str
    severity: Severity
    location: str = ""
    recommendation: str = ""


class SecurityReport(BaseModel):
    findings: list[Finding]
    summary: str = ""


class GasReport(BaseModel):
    class Optimization(BaseModel):
        title: str
        estimated_gas_saved: int = Field(ge=0)

    optimizations: list[Optimization]


class Sentiment(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    score: float = Field(ge=-1.0, le=1.0)


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _json_object(text: str) -> dict[str, Any]:
    body = text.strip()
    if fenced := _FENCE.match(body):
        body = fenced.group(1)
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("the answer is JSON but not an object")
    return value


def _parse(text: str, model: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    try:
        return model.model_validate(_json_object(text)), None
    except (ValueError, ValidationError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"the answer does not match the {model.__name__} format: {reason}"


def parse_security(text: str) -> ParseOutcome:
    report, error = _parse(text, SecurityReport)
    if not isinstance(report, SecurityReport):
        return ParseOutcome(ok=False, error=error)
    counts: Counter[str] = Counter(f.severity for f in report.findings)
    parsed = report.model_dump()
    parsed["severity_breakdown"] = {s: counts.get(s, 0) for s in SEVERITIES}
    return ParseOutcome(ok=True, parsed=parsed)


def parse_gas(text: str) -> ParseOutcome:
    report, error = _parse(text, GasReport)
    if not isinstance(report, GasReport):
        return ParseOutcome(ok=False, error=error)
    parsed = report.model_dump()
    parsed["total_estimated_gas_saved"] = sum(o.estimated_gas_saved for o in report.optimizations)
    return ParseOutcome(ok=True, parsed=parsed)


def parse_sentiment(text: str) -> ParseOutcome:
    sentiment, error = _parse(text, Sentiment)
    if sentiment is None:
        return ParseOutcome(ok=False, error=error)
    return ParseOutcome(ok=True, parsed=sentiment.model_dump())


def parse_free_text(text: str) -> ParseOutcome:
    """Free-form answers have nothing to parse; they are always fine."""
    return ParseOutcome(ok=True, parsed=None)


@dataclass(frozen=True)
class JobTypeSpec:
    system_prompt: str
    default_model: str
    default_max_tokens: int
    parse: Callable[[str], ParseOutcome]


REGISTRY: dict[JobType, JobTypeSpec] = {
    JobType.security_analysis: JobTypeSpec(
        system_prompt=(
            "You are a smart-contract security auditor. Answer only with a JSON object: "
            '{"findings": [{"title": str, "severity": "critical|high|medium|low|info", '
            '"location": str, "recommendation": str}], "summary": str}.'
        ),
        default_model="gpt-4o",
        default_max_tokens=2000,
        parse=parse_security,
    ),
    JobType.gas_analysis: JobTypeSpec(
        system_prompt=(
            "You are a gas-optimisation expert for EVM contracts. Answer only with a JSON "
            'object: {"optimizations": [{"title": str, "estimated_gas_saved": int}]}.'
        ),
        default_model="gpt-4o-mini",
        default_max_tokens=1500,
        parse=parse_gas,
    ),
    JobType.sentiment_analysis: JobTypeSpec(
        system_prompt=(
            "Classify the sentiment of the text. Answer only with a JSON object: "
            '{"label": "positive|negative|neutral", "score": number between -1 and 1}.'
        ),
        default_model="gpt-4o-mini",
        default_max_tokens=200,
        parse=parse_sentiment,
    ),
    JobType.analysis: JobTypeSpec(
        system_prompt="You are a careful analyst. Answer clearly and concisely.",
        default_model="gpt-4o-mini",
        default_max_tokens=1000,
        parse=parse_free_text,
    ),
}


def spec_for(job_type: JobType) -> JobTypeSpec:
    return REGISTRY[job_type]
