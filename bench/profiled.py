"""Run a sluice service with pyinstrument armed: `python -m bench.profiled <service> <out>`.

The first PROFILE_SIGNAL starts sampling; the second stops it and writes <out> (the call
tree, then functions by own time) and the raw session next to it, for `pyinstrument
--load`. So a profile covers exactly the load the bench applied. A real-time signal is
used because Faust (mode) and uvicorn own SIGINT, SIGTERM and SIGUSR1.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

from pyinstrument import Profiler

PROFILE_SIGNAL = signal.SIGRTMIN + 4
INTERVAL_S = 0.001
FLAT_LINES = 45


class SignalledProfiler:
    def __init__(self, out: Path) -> None:
        self._out = out
        self._profiler: Profiler | None = None

    def toggle(self, signum: int, frame: FrameType | None) -> None:
        if self._profiler is None:
            self._profiler = Profiler(interval=INTERVAL_S, async_mode="disabled")
            # The outermost frame as the profile's root: every sample shares it, whereas the
            # handler's own frame is on no other stack.
            root = frame
            while root is not None and root.f_back is not None:
                root = root.f_back
            self._profiler.start(caller_frame=root, target_description=f"sluice {self._out.stem}")
            return
        profiler, self._profiler = self._profiler, None
        profiler.stop().save(str(self._out.with_suffix(".pyisession")))  # for `pyinstrument --load`
        tree = profiler.output_text(unicode=True, show_all=False)
        flat = "\n".join(profiler.output_text(unicode=True, flat=True).splitlines()[:FLAT_LINES])
        text = f"{tree}\nFunctions by own time (top {FLAT_LINES}):\n{flat}\n"
        partial = self._out.with_suffix(".partial")
        partial.write_text(text)
        partial.replace(self._out)  # appears whole, so a reader never sees half a report


def main() -> None:
    service, out = sys.argv[1], Path(sys.argv[2])
    signal.signal(PROFILE_SIGNAL, SignalledProfiler(out).toggle)
    sys.argv = ["sluice", service]
    from sluice.cli import app

    app()


if __name__ == "__main__":
    main()
