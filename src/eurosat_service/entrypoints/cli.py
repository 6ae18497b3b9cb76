"""What every command-line entrypoint shares: logging and turning errors into exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from eurosat_service.domain.errors import EurosatError, Interrupted

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_libraries("botocore", "boto3", "urllib3", "s3transfer", "PIL")


def quiet_libraries(*names: str) -> None:
    """Only WARNING and above from these libraries; from botocore's credential refreshers not even
    that: an expired or missing SSO login logs a WARNING with a traceback, then the error we
    report anyway."""
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)
    for refresher in ("botocore.credentials", "botocore.tokens"):
        logging.getLogger(refresher).setLevel(logging.ERROR)


def run(main: Callable[[], int | None]) -> None:
    """Run ``main``; a user-fixable error prints one line and exits non-zero, never a traceback."""
    try:
        code = main()
    except Interrupted as exc:  # Ctrl-C caught by a long run, which says what it kept
        print(exc, file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except EurosatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code or 0)
