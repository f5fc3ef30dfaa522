from __future__ import annotations

import json

from sluice.job_types import parse_free_text, parse_gas, parse_security, parse_sentiment


def test_security_findings_get_a_severity_breakdown() -> None:
    answer = json.dumps(
        {
            "findings": [
                {"title": "a", "severity": "high"},
                {"title": "b", "severity": "high"},
                {"title": "c", "severity": "low"},
            ],
            "summary": "3",
        }
    )
    outcome = parse_security(answer)
    assert outcome.ok
    assert outcome.parsed is not None
    assert outcome.parsed["severity_breakdown"] == {
        "critical": 0,
        "high": 2,
        "medium": 0,
        "low": 1,
        "info": 0,
    }


def test_fenced_json_is_accepted() -> None:
    outcome = parse_sentiment('```json\n{"label": "positive", "score": 0.8}\n```')
    assert outcome.ok and outcome.parsed == {"label": "positive", "score": 0.8}


def test_unparseable_answers_say_why() -> None:
    for parse, text in [
        (parse_security, '{"findings": [{"title": "x", "severity": "apocalyptic"}]}'),
        (parse_sentiment, '{"label": "positive", "score": 7}'),
        (parse_gas, "not json at all"),
        (parse_security, '["a list", "not an object"]'),
        (parse_sentiment, '{"label": "posit'),
    ]:
        outcome = parse(text)
        assert not outcome.ok and outcome.parsed is None
        assert outcome.error


def test_free_text_always_parses() -> None:
    assert parse_free_text("anything").ok
