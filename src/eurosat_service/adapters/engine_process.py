"""What the container-engine adapters share: running the engine's CLI with a progress bar (and a
watchdog for a build or push that stops printing), and staging extra files into a build context
for one build only."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from eurosat_service.domain.errors import BuildError

# "Step 3/17 : RUN ..." (docker's legacy builder), "STEP 3/17: RUN ..." (buildah, podman),
# "#7 [build 3/6] RUN ..." (BuildKit, --progress=plain)
BUILD_STEP = re.compile(r"^(?:\[\d+/\d+\] )?(?:Step|STEP) (\d+)/(\d+) ?: ?(.*)$|^#\d+ \[[^\]]*?(\d+)/(\d+)\] (.*)$")
PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
LAYER_STATE = re.compile(r"^([0-9a-f]{12}): (Preparing|Waiting|Pushing|Pushed|Layer already exists|Mounted from.*)")
COPIED_BLOB = re.compile(r"^Copying blob (?:sha256:)?([0-9a-f]{12})")  # buildah/podman: one line per blob
DENIED = ("denied", "unauthorized", "authentication required", "invalid username", "401", "403", "forbidden")
# A build or push that prints nothing for this long is taken as hung (a RUN step waiting on the
# network, a registry that stopped answering) and stopped. Long silences are normal: a saturated
# machine took 16 min for a whole push (docs/container.md), so the default leaves room for that
# (setting: ``EUROSAT_IMAGE_IDLE_TIMEOUT_S``).
DEFAULT_IDLE_TIMEOUT = 30 * 60.0


class StreamedCommand:
    """Runs a command, feeding each output line to ``on_line``; keeps the last lines for errors.

    ``idle_timeout`` (seconds, default 30 min): when the
    command prints nothing for that long, it is killed with its children and ``run`` raises a
    ``BuildError``, so a hung build or push cannot block the job forever.
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None, tail: int = 40,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.tail: deque[str] = deque(maxlen=tail)
        self.idle_timeout = idle_timeout

    def run(self, on_line, stdin: str | None = None) -> int:
        try:
            proc = subprocess.Popen(
                self.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, text=True, bufsize=1,
                process_group=0,  # its own group, so a kill also reaches the children holding the pipe
            )
        except FileNotFoundError as exc:
            raise BuildError(f"{self.argv[0]} is not installed ({exc})") from None
        watchdog = _IdleWatchdog(proc, self.idle_timeout)
        try:
            if stdin is not None:
                proc.stdin.write(stdin)
                proc.stdin.close()
            for raw in proc.stdout:
                watchdog.saw_output()
                line = raw.rstrip()
                if line:
                    self.tail.append(line)
                    on_line(line)
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            watchdog.stop()
            proc.wait()
        if watchdog.fired:
            raise BuildError(
                f"`{' '.join(self.argv[:3])} ...` printed nothing for {self.idle_timeout:g} s and was stopped "
                f"(a step waiting on the network, or a registry that stopped answering?); set "
                f"EUROSAT_IMAGE_IDLE_TIMEOUT_S (seconds) to wait longer. Last output:\n{self.output()}")
        return proc.returncode

    def output(self) -> str:
        return "\n".join(self.tail)


class _IdleWatchdog:
    """Kills ``proc`` (and its process group) once no output came for ``seconds``."""

    def __init__(self, proc: subprocess.Popen, seconds: float) -> None:
        self.proc = proc
        self.seconds = seconds
        self.fired = False
        self._last = time.monotonic()
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, name="idle-watchdog", daemon=True).start()

    def saw_output(self) -> None:
        self._last = time.monotonic()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(min(1.0, self.seconds / 10)):
            if time.monotonic() - self._last >= self.seconds:
                self.fired = True
                _kill_group(self.proc)
                return


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def run_quiet(argv: Sequence[str], env: Mapping[str, str] | None = None, stdin: str | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(argv), env={**os.environ, **(env or {})}, input=stdin, capture_output=True,
                              text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise BuildError(f"{argv[0]} is not installed ({exc})") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"`{' '.join(argv[:3])} ...` did not finish within {timeout:.0f}s") from None


class BuildProgress:
    """A bar over the Dockerfile's steps; the current instruction is shown beside it."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.bar = tqdm(desc=label, unit="step", disable=not enabled, dynamic_ncols=True, leave=True)

    def __call__(self, line: str) -> None:
        match = BUILD_STEP.match(line)
        if not match:
            return
        step, total, text = (match[1], match[2], match[3]) if match[1] else (match[4], match[5], match[6])
        if self.bar.total != int(total):
            self.bar.total = int(total)
        self.bar.n = int(step)
        self.bar.set_postfix_str(text[:60], refresh=True)

    def close(self) -> None:
        self.bar.close()


class PushProgress:
    """A bar over the image's layers: one tick per layer pushed or already in the registry."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.bar = tqdm(desc=label, unit="layer", total=0, disable=not enabled, dynamic_ncols=True, leave=True)
        self.layers: set[str] = set()
        self.done: set[str] = set()
        self.digest: str | None = None

    def __call__(self, line: str) -> None:
        if match := PUSHED_DIGEST.search(line):
            self.digest = match[1]
        if match := COPIED_BLOB.match(line):
            self.layers.add(match[1])
            self.done.add(match[1])
            self.bar.total, self.bar.n = len(self.layers), len(self.done)
            self.bar.refresh()
        if match := LAYER_STATE.match(line):
            layer, state = match[1], match[2]
            if layer not in self.layers:
                self.layers.add(layer)
                self.bar.total = len(self.layers)
            if state in ("Pushed", "Layer already exists") or state.startswith("Mounted"):
                self.done.add(layer)
            self.bar.n = len(self.done)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def looks_denied(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in DENIED)


def push_with_progress(argv: Sequence[str], tool: str, destination: str, show_progress: bool,
                       idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> tuple[PushProgress, str]:
    """Run an engine's push with a layer bar; a failure is a ``BuildError`` that names a denied push."""
    command = StreamedCommand(argv, idle_timeout=idle_timeout)
    progress = PushProgress(show_progress, f"{tool} push {destination.rsplit('/', 1)[-1]}")
    try:
        code = command.run(progress)
    finally:
        progress.close()
    output = command.output()
    if code != 0:
        if looks_denied(output):
            raise BuildError(f"the registry denied the push of {destination}: check that the credentials "
                             f"may push to this repository (ecr:InitiateLayerUpload, ecr:PutImage):\n{output}")
        raise BuildError(f"{tool} push {destination} failed (exit {code}):\n{output}")
    return progress, output


@contextlib.contextmanager
def stage_files(context: Path, files: Mapping[str, Path] | None) -> Iterator[None]:
    """Copy ``files`` (name in the context -> source) into ``context`` for one build; remove them
    afterwards, whatever happens (one left by a killed run is simply replaced)."""
    placed: list[Path] = []
    try:
        for name, source in (files or {}).items():
            target = context / name
            if not Path(source).is_file():
                raise BuildError(f"{source} does not exist (staged into the build context as {name})")
            shutil.copyfile(source, target)
            placed.append(target)
        yield
    finally:
        for target in placed:
            target.unlink(missing_ok=True)
