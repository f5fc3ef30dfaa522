"""`sluice worker`: run the Faust worker in this process."""

from __future__ import annotations

import faust


class Worker(faust.Worker):
    """A Faust worker that lets running jobs finish before it stops (SIGTERM, SIGINT).

    (Named like Faust's: the stack knows a worker is ready by its "[^Worker]: Ready" line.)

    It stops taking jobs, waits up to ``worker_shutdown_grace_s`` for the running ones,
    hands back the rest (their messages stay uncommitted, so they run again), commits,
    and only then lets Faust stop its consumer and producer.
    """

    async def on_stop(self) -> None:
        from processors.app import dispatcher, history
        from sluice.settings import get_settings

        await dispatcher.drain(get_settings().worker_shutdown_grace_s)
        await history.close()
        await super().on_stop()


def run() -> None:
    from processors.app import app
    from sluice.logs import logging_config

    worker = Worker(app, loglevel="INFO", logging_config=logging_config())
    worker.execute_from_commandline()
