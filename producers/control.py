"""Control commands for running jobs, on `jobs.control`: every worker reads every one."""

from __future__ import annotations

from producers.submit import JobSubmitter
from schemas.events import CancelRequested
from schemas.topics import CONTROL


class ControlProducer:
    """Shares the api's durable producer: a command is acknowledged only once Kafka has it."""

    def __init__(self, submitter: JobSubmitter) -> None:
        self._submitter = submitter

    async def request_cancel(self, job_id: str, user_id: str) -> CancelRequested:
        command = CancelRequested(job_id=job_id, user_id=user_id)
        await self._submitter.send_durably(CONTROL, command.key(), command.to_bytes())
        return command
