"""The in-sandbox agent: an HTTP server on a unix socket driving one Jupyter kernel per context.

It runs on the *template's* Python, bind-mounted as the top-level package ``nullspace_agent``
(``python -m nullspace_agent --fd 3``), so every module here uses relative imports only and
imports nothing but the stdlib, jupyter_client, starlette and uvicorn.

Modules:

* ``messages``  Jupyter message → NDJSON event (pure functions, output caps)
* ``snippets``  per-language code run silently around a run (per-run env vars)
* ``config``    template.json, language names, tunables
* ``kernels``   one kernel process + client; message routing by parent id
* ``contexts``  contexts, default contexts per language, the run state machine
* ``artifacts`` files a run created or changed under its cwd (the ``artifacts`` event)
* ``kernel_startup/``  runs *inside* IPython kernels, not in the agent: chart, table and plotly
  display hooks (may import matplotlib/pandas/plotly there, lazily)
* ``languages`` per-language kernel quirks: TCP for Deno/JJava, late-output settle, error names,
  prestarting default contexts in the background
* ``bash_kernel`` runs *as* the Bash kernel (stdlib + pyzmq), not in the agent
* ``web``       what every route shares: JSON request bodies, NDJSON responses that notice a
  disconnecting client
* ``app``       the Starlette app (endpoints, error bodies)
* ``__main__``  argparse + uvicorn on an inherited fd or a socket path
"""
