"""A partition is committed only up to its oldest unfinished job."""

from __future__ import annotations

from processors.offsets import OffsetLedger

TP = ("jobs.normal", 0)


def test_a_later_job_finishing_first_does_not_commit_past_a_running_one() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    for offset in (10, 11, 12):
        assert ledger.begin(TP, offset)
    ledger.finish(TP, 11)
    ledger.finish(TP, 12)
    assert ledger.to_commit() == {TP: 10}
    ledger.finish(TP, 10)
    assert ledger.to_commit() == {TP: 13}


def test_nothing_to_commit_until_something_moved() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    ledger.begin(TP, 5)
    assert ledger.to_commit() == {TP: 5}
    ledger.committed({TP: 5})
    assert ledger.to_commit() == {}
    ledger.finish(TP, 5)
    assert ledger.to_commit() == {TP: 6}


def test_a_redelivered_message_is_recognised_running_or_finished() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    ledger.begin(TP, 1)
    ledger.begin(TP, 2)
    ledger.finish(TP, 2)
    assert not ledger.begin(TP, 1)
    assert not ledger.begin(TP, 2)
    ledger.finish(TP, 1)
    ledger.committed(ledger.to_commit())
    assert not ledger.begin(TP, 0)  # below the commit: long done
    assert ledger.begin(TP, 3)


def test_forgotten_partitions_are_neither_committed_nor_remembered() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    other = ("jobs.high", 3)
    ledger.begin(TP, 1)
    ledger.begin(other, 7)
    ledger.forget([other])
    assert ledger.to_commit() == {TP: 1}
    assert ledger.partitions() == {TP}
    assert ledger.begin(other, 7)
    assert ledger.running_count() == 2
