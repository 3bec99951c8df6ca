"""Entry point: ``python -m nullspace_agent --fd 3`` in a sandbox (``--socket PATH`` on a host).

The trusted server creates the listening unix socket and hands it in as an inherited fd, so the
sandbox can neither replace nor fill the place where the socket lives.

Start-up order matters for a cold sandbox: the boot kernel is launched first, with the stdlib
only (kernel_process.py); jupyter_client, starlette and uvicorn are imported while it starts.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import sys

from . import kernel_startup
from .config import (
    DEFAULT_RUNTIME_DIR,
    DEFAULT_TEMPLATE_JSON,
    MAX_CONTEXTS_ENV,
    MAX_RUNTIME_DIR,
    PRELOAD_ENV,
    AgentConfig,
    ConfigError,
    load_prestart,
    load_template,
    preload_modules,
    prestart_override,
    resolve_prestart,
)
from .kernel_process import Prelaunched, connection_file, prelaunch

log = logging.getLogger("nullspace.agent")

PR_SET_DUMPABLE = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nullspace_agent", description="nullspace in-sandbox agent")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="an inherited, listening unix socket")
    where.add_argument("--socket", help="bind a unix socket at this path (tests, host use)")
    parser.add_argument("--template-json", default=DEFAULT_TEMPLATE_JSON)
    parser.add_argument("--runtime-dir", default=DEFAULT_RUNTIME_DIR, help="kernel IPC files")
    parser.add_argument("--max-output-bytes", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--kernel-output", choices=["null", "inherit"], default="null")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> AgentConfig:
    kernels, workdir = load_template(args.template_json)
    boot_language = "python" if "python" in kernels else next(iter(kernels))
    prestart = resolve_prestart(
        load_prestart(args.template_json), kernels, boot_language, prestart_override()
    )
    runtime_dir = os.path.abspath(args.runtime_dir)
    if len(runtime_dir) > MAX_RUNTIME_DIR:
        raise ConfigError(f"--runtime-dir is too long for IPC socket paths: {runtime_dir}")
    os.makedirs(runtime_dir, mode=0o700, exist_ok=True)
    if args.max_output_bytes < 1:
        raise ConfigError("--max-output-bytes must be positive")
    if workdir is None or not os.path.isdir(workdir):
        if workdir is not None:
            log.warning("template workdir %s does not exist; using %s", workdir, os.getcwd())
        workdir = os.getcwd()
    return AgentConfig(
        kernels=kernels,
        workdir=workdir,
        runtime_dir=runtime_dir,
        max_output_bytes=args.max_output_bytes,
        startup_timeout=args.startup_timeout,
        kernel_output=args.kernel_output,
        boot_language=boot_language,
        prestart=prestart,
        preload=preload_modules(os.environ.get(PRELOAD_ENV)) if boot_language == "python" else (),
        max_contexts=max_contexts(os.environ.get(MAX_CONTEXTS_ENV)),
    )


def max_contexts(value: str | None) -> int:
    """`NULLSPACE_MAX_CONTEXTS` (set by the server), else the default."""
    try:
        return max(1, min(int(value or ""), 1000))
    except ValueError:
        return AgentConfig.max_contexts


def set_not_dumpable() -> None:
    """PR_SET_DUMPABLE 0: no core dumps, no ptrace/proc access by same-uid processes (the
    kernels run as the same user)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def prelaunch_boot_kernel(config: AgentConfig) -> Prelaunched | None:
    """Start the boot language's kernel now; the registry's first context adopts it."""
    language = config.boot_language
    try:
        return prelaunch(
            config.kernels[language],
            connection_file=connection_file(config.runtime_dir, 1),
            cwd=config.workdir,
            extra_arguments=kernel_startup.ipython_arguments() if language == "python" else [],
            oom_score_adj=config.oom_score_adj,
            kernel_output=config.kernel_output,
        )
    except OSError as exc:  # it starts the usual way, later
        log.warning("could not prelaunch the %s kernel: %s", language, exc)
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    set_not_dumpable()
    try:
        config = build_config(args)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    prelaunched = prelaunch_boot_kernel(config)

    import uvicorn

    from .app import create_app
    from .contexts import Registry

    app = create_app(Registry(config, prelaunched))
    uv = uvicorn.Config(
        app,
        fd=args.fd,
        uds=args.socket,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=300,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    uvicorn.Server(uv).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
