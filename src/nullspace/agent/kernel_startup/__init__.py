"""Code that runs *inside* every IPython kernel, not in the agent: rich-output hooks.

The agent only needs `ipython_arguments()` (stdlib only). The kernel runs ``startup.py`` through
``--IPKernelApp.exec_files`` at start; it loads this directory as the private package
``_nullspace_kernel`` and calls ``display.install()``, which adds to every display bundle:

* ``application/vnd.nullspace.chart+json`` for matplotlib and plotly figures (``charts*.py``,
  schema in docs/charts.md);
* ``application/vnd.dataresource+json`` (Table Schema) for pandas DataFrames and Series;
* ``text/html`` + chart for ``plotly`` figures shown with ``fig.show()``;
* ``display(image)`` for PIL's ``Image.show()``.

Nothing here imports matplotlib, pandas, plotly or PIL up front: the hooks look at
``sys.modules`` or wait for the import (``imports.py``), so a kernel starts as fast as before.
Every hook swallows its own errors: a figure it cannot understand gives ``{"type": "unknown"}``,
never an exception in the user's run.
"""

from __future__ import annotations

import os

STARTUP_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "startup.py")


def ipython_arguments() -> list[str]:
    """Extra command-line arguments for an ipykernel so that it loads our hooks at start."""
    return [f"--IPKernelApp.exec_files={STARTUP_FILE}"]
