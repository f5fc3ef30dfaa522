"""sluice doctor's verdicts: every failure says what to do, and the exit code follows."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sluice import doctor
from sluice.cli import app
from sluice.settings import Settings


def test_a_check_that_breaks_is_reported_as_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: Settings) -> list[doctor.Finding]:
        raise RuntimeError("boom")

    def fine(_: Settings) -> list[doctor.Finding]:
        return [doctor.Finding("kafka", True, "answers")]

    monkeypatch.setattr(doctor, "CHECKS", (fine, broken))
    findings = doctor.run_checks(Settings())
    assert [(f.check, f.ok) for f in findings] == [("kafka", True), ("broken", False)]


@pytest.mark.parametrize(("ok", "code"), [(True, 0), (False, 1)])
def test_exit_code_and_table(monkeypatch: pytest.MonkeyPatch, ok: bool, code: int) -> None:
    finding = doctor.Finding("postgres", ok, "detail here", "" if ok else "start it")
    monkeypatch.setattr(doctor, "CHECKS", (lambda _: [finding],))
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == code
    assert ("✓" if ok else "✗") in result.output and "postgres" in result.output
    if not ok:
        assert "start it" in result.output and "1 of 1 checks failed" in result.output


def test_a_service_that_does_not_answer_gets_a_fix() -> None:
    finding = doctor._http_ready("api", "http://127.0.0.1:1/readyz", "start the api")
    assert not finding.ok and finding.fix == "start the api" and "ConnectError" in finding.detail
