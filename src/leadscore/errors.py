"""What can go wrong, and the one exit-code table every command and stage uses.

Every expected failure is a subclass of one of four base errors; its exit code comes from
the base, so `leadscore score`, `leadscore flat` and `dvc repro` mean the same thing by the
same number:

| code | meaning                                                                  | base error   |
|------|--------------------------------------------------------------------------|--------------|
| 0    | ok                                                                       |              |
| 1    | bad input or failed validation (file, column, rows named)                | `InputError` |
| 2    | usage or configuration (params.yaml, a mapping key, a CLI option)        | `ConfigError`|
| 3    | model missing or mismatched (no scorer, wrong signature)                 | `ModelError` |
| 4    | refused by a guard (leakage, too few positives, a failed promotion gate) | `GuardError` |
| 5    | internal error (a bug: rerun with `-v` for the traceback)                |              |

Messages never quote row values, so they carry no personal data.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import ClassVar

EXIT_OK, EXIT_INPUT, EXIT_CONFIG, EXIT_MODEL, EXIT_GUARD, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "ok",
    EXIT_INPUT: "bad input or failed validation",
    EXIT_CONFIG: "usage or configuration error",
    EXIT_MODEL: "model missing or mismatched",
    EXIT_GUARD: "refused by a guard (leakage, too few positives, promotion gate)",
    EXIT_INTERNAL: "internal error",
}


class LeadscoreError(Exception):
    """Base of every expected failure; `exit_code` says what kind it is."""

    exit_code: ClassVar[int] = EXIT_INTERNAL


class InputError(LeadscoreError, ValueError):
    """Bad input data: the message names the file, column and rows (never their values)."""

    exit_code = EXIT_INPUT


class ConfigError(LeadscoreError, ValueError):
    """A wrong key or value in params.yaml, a mapping or a command-line option."""

    exit_code = EXIT_CONFIG


class ModelError(LeadscoreError, RuntimeError):
    """The model is missing, unreadable or does not match the data."""

    exit_code = EXIT_MODEL


class GuardError(LeadscoreError, ValueError):
    """A guard refused to go on: leakage, too few positives, a failed promotion gate."""

    exit_code = EXIT_GUARD


def exit_code_for(err: BaseException) -> int:
    """The exit code of an exception: its base error's, 1 for a missing file, else 5."""
    if isinstance(err, LeadscoreError):
        return err.exit_code
    if isinstance(err, FileNotFoundError):
        return EXIT_INPUT
    return EXIT_INTERNAL


_EMAILISH = re.compile(r"[^\s'\"(),;]+@[^\s'\"(),;]+")


def safe_error_text(err: BaseException, limit: int = 200) -> str:
    """First line of an error, with e-mail-like tokens redacted.

    Driver errors (DuckDB's CSV reader, say) can quote the offending line; only the first
    line is kept and anything that looks like an address is masked.
    """
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return _EMAILISH.sub("<redacted>", first)[:limit]


@contextlib.contextmanager
def exit_on_error(log: logging.Logger) -> Iterator[None]:
    """Turn any exception into a logged message and `SystemExit(code)`; never a traceback.

    Expected failures log their message; anything else is an internal error (exit 5) whose
    traceback is logged at debug level only (`-v`).
    """
    try:
        yield
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as err:
        if not isinstance(err, LeadscoreError) and isinstance(getattr(err, "exit_code", None), int):
            raise  # click's own exits and usage errors carry their code
        code = exit_code_for(err)
        if code == EXIT_INTERNAL:
            log.error("internal error (%s): %s. Rerun with -v for the traceback.",
                      type(err).__name__, safe_error_text(err))
            log.debug("traceback", exc_info=True)
        elif isinstance(err, FileNotFoundError):
            log.error("%s", safe_error_text(err, limit=500))
        else:
            log.error("%s", err)
        raise SystemExit(code) from None
