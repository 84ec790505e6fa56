"""Importing Great Expectations safely beside pyspark.

GX imports `pyspark.sql.connect` when pyspark is installed, and pyspark's doctest guard
(`pyspark.sql.connect.utils.check_dependencies`) ends the process with `SystemExit(0)` when
`__main__` has neither a module spec nor a file and the Spark Connect extras are missing:
a pytest-xdist worker, an embedded interpreter. `import_gx` marks the interpreter as
interactive (`sys.ps1`) for the duration of that first import only.
"""

from __future__ import annotations

import functools
import sys
from typing import Any


@functools.cache
def import_gx() -> Any:
    """The `great_expectations` module (with `great_expectations.expectations` loaded)."""
    main = sys.modules.get("__main__")
    guard = (main is not None and getattr(main, "__spec__", None) is None
             and not hasattr(main, "__file__") and not hasattr(sys, "ps1"))
    if guard:
        sys.ps1 = ""
    try:
        import great_expectations as gx
        import great_expectations.expectations  # noqa: F401 - loaded under the same guard
    finally:
        if guard:
            del sys.ps1
    return gx
