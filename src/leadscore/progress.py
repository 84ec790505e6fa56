"""Progress bars on stderr, shown only when someone is watching.

`bar(...)` returns a tqdm bar that writes to stderr (never stdout: CLI output may be parsed)
and is disabled unless stderr is a terminal. ``LEADSCORE_PROGRESS=0`` turns every bar off,
``LEADSCORE_PROGRESS=1`` turns them on even without a terminal (CI logs, tests). A library
function takes ``progress: bool | None = None`` and passes it on: True / False decide,
None asks `enabled`. Bars redraw at most once a second (`mininterval`), and callers update
them per chunk, trial, fold or table, never per row. Descriptions are fixed labels: a bar
never shows lead data. tqdm is imported on the first bar, so that importing this module
(e.g. through `leadscore.modeling.metrics` in the exported scorer) costs nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

ENV = "LEADSCORE_PROGRESS"
_ON = {"1", "true", "yes", "on"}
_OFF = {"0", "false", "no", "off"}


def enabled(progress: bool | None = None) -> bool:
    """Whether to draw a bar: `progress` if given, else ``$LEADSCORE_PROGRESS`` (1 / 0),
    else whether stderr is a terminal."""
    if progress is not None:
        return bool(progress)
    env = os.environ.get(ENV, "").strip().lower()
    if env in _ON:
        return True
    if env in _OFF:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def bar(iterable: Iterable | None = None, *, progress: bool | None = None, desc: str | None = None,
        total: float | None = None, unit: str = "it", **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr (a wrapper of `iterable` or, without it, a bar to `update`),
    disabled unless `enabled(progress)`. Use it as a context manager so it always closes."""
    from tqdm import tqdm

    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr,
                disable=not enabled(progress), **kwargs)
