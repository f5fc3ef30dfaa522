from __future__ import annotations

import uuid

from sluice.jobids import is_job_id, job_id_time_ms, new_job_id


def test_job_id_is_uuid7_carrying_its_submission_time() -> None:
    job_id = new_job_id(now_ms=1_796_000_000_123)
    assert uuid.UUID(job_id).version == 7
    assert job_id_time_ms(job_id) == 1_796_000_000_123
    assert is_job_id(job_id)


def test_job_ids_sort_by_time_and_are_unique() -> None:
    ids = [new_job_id(now_ms=1_000 + i) for i in range(50)]
    assert ids == sorted(ids)
    assert len({new_job_id(now_ms=5) for _ in range(1000)}) == 1000


def test_other_strings_are_not_job_ids() -> None:
    assert not is_job_id("not-a-uuid")
    assert not is_job_id(str(uuid.uuid4()))
    assert not is_job_id(new_job_id().upper())
