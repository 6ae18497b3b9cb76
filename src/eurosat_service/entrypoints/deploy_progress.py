"""How `deploy` shows progress: one line per step, and a tqdm bar per wait (stable, inactive, ...).

Without a terminal (CI logs) the bar becomes a plain line every ``LINE_EVERY`` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

from tqdm import tqdm

LABELS = {
    "stable": "waiting for the service to be stable",
    "inactive": "waiting for the service to be deleted",
    "security group": "waiting for network interfaces to release the security group",
}
LINE_EVERY = 30.0


class WaitBars:
    """A ``ProgressCallback`` that draws a time bar (elapsed of timeout) with the task counts."""

    def __init__(self, interactive: bool | None = None) -> None:
        self._bar: tqdm | None = None
        self._stage = ""
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._last_line = float("-inf")

    def step(self, message: str) -> None:
        self.close()
        print(f"  - {message}", flush=True)

    def __call__(self, stage: str, values: Mapping[str, float]) -> None:
        counts = (f"{values['running']:.0f}/{values['desired']:.0f} running, {values.get('pending', 0):.0f} pending"
                  if "desired" in values else "")
        if not self.interactive:
            if stage != self._stage or time.monotonic() - self._last_line >= LINE_EVERY:
                self._stage, self._last_line = stage, time.monotonic()
                print(f"  . {LABELS.get(stage, stage)}: {values.get('elapsed', 0):.0f}/"
                      f"{values.get('timeout', 0):.0f} s {counts}", file=sys.stderr, flush=True)
            return
        if stage != self._stage or self._bar is None:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=round(values.get("timeout", 0)), unit="s", desc=LABELS.get(stage, stage),
                             bar_format="{desc}: {n}/{total} s |{bar}|{postfix}", leave=False)
        self._bar.n = min(round(values.get("elapsed", 0)), self._bar.total)
        if counts:
            self._bar.set_postfix_str(counts, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._stage = ""

    def __enter__(self) -> WaitBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
