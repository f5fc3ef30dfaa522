"""`sluice worker`: run the Faust worker in this process."""

from __future__ import annotations

import faust


def run() -> None:
    from processors.app import app

    worker = faust.Worker(app, loglevel="INFO")
    worker.execute_from_commandline()
