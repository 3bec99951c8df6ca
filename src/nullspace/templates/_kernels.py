"""Per-language kernel installation for the template builder (the "kernels" step).

Every language of a spec's ``[kernels]`` table gets a kernelspec under
``/opt/venv/share/jupyter/kernels/<kernelspec>/kernel.json`` with an absolute argv, so the agent
(which runs on ``/opt/venv/bin/python``) finds it without any ``JUPYTER_PATH``. All of it is
written from the host as plain files: no code from the rootfs runs here, and nothing needs the
network. The packages themselves come from the spec's ``apt``/``pip`` lists:

=========== ======================== ==================================================
language    kernelspec (builtin)     packages
=========== ======================== ==================================================
python      ``python3``              pip ``ipykernel`` (see `_python.configure_python_kernel`)
r           ``ir``                   apt ``r-base-core r-cran-irkernel`` (IRkernel)
javascript  ``deno``                 pip ``deno`` (the binary; ``deno jupyter --kernel``)
typescript  the javascript kernel    (Deno runs TypeScript natively)
java        ``java``                 apt ``openjdk-17-jdk-headless``, pip ``jjava``
bash        ``nullspace-bash``       none: our kernel, shipped with the agent
            ``bash``                 pip ``bash_kernel`` (the stock kernel)
=========== ======================== ==================================================

A language without a setup function here (a custom kernel) must bring its own kernelspec.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import _python
from nullspace.templates._process import BuildLog
from nullspace.templates._rootfs import inside, write_json

__all__ = ["BASH_KERNEL_PATH", "KERNEL_SETUP", "PRESTART", "configure_kernels", "prestart_languages"]

KERNELS_DIR = f"{_python.VENV}/share/jupyter/kernels"
AGENT_LIB = "/opt/nullspace/lib"  # = nullspace.runtime.policy.AGENT_LIB (bound read-only in every sandbox)
BASH_KERNEL_PATH = f"{AGENT_LIB}/nullspace_agent/bash_kernel.py"
"""Our Bash kernel runs from the agent's read-only mount: it ships (and updates) with the agent."""

DENO_DIR = "/tmp/.deno"  # Deno's cache must be writable; /tmp is a per-sandbox tmpfs

# JVM flags for JJava: C1 only and the serial GC start the JVM ~0.5 s faster and keep it
# small (fewer GC/compiler threads count against the pids limit); the add-opens let the
# per-run env snippet update the map behind System.getenv() (agent/snippets.py).
JAVA_FLAGS: tuple[str, ...] = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",  # no /tmp/hsperfdata_* files
    "-Djava.awt.headless=true",
    "--add-opens", "jdk.jshell/jdk.jshell=ALL-UNNAMED",  # what jjava's own launcher adds
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
)  # fmt: skip

TCP_ONLY = {"nullspace": {"transport": "tcp"}}
"""Kernelspec metadata for kernels without IPC (unix socket) support, Deno and JJava (JeroMQ):
the agent connects to them over TCP on the sandbox's own loopback (agent/languages.py)."""

PRESTART: tuple[str, ...] = ("bash",)
"""Languages whose kernels are cheap enough to start ahead of need in every sandbox that is used;
written to template.json ``prestart``. Only Bash (~15 MiB idle): prestarting JavaScript and R
too held ~260 MiB more in *every* used sandbox (325 instead of ~80 MiB, bench/density.py), for a
~0.6 s / ~1.1 s first run that most sandboxes never make. They, TypeScript and Java start on
first use; a sandbox opts in with ``envs={"NULLSPACE_PRESTART": "r,javascript"}``."""


def _write_spec(rootfs: Path, kernelspec: str, data: dict) -> None:
    write_json(inside(rootfs, f"{KERNELS_DIR}/{kernelspec}/kernel.json"), data)


def _require(rootfs: Path, path: str, language: str, package: str) -> None:
    if not inside(rootfs, path).exists():
        raise TemplateBuildError(f"language {language!r} needs {package} ({path} is missing)")


# IRkernel::main(), plus two changes made on the executor object (its class is locked):
# the visible value of the last expression is an execute_result (the main result, as in IPython;
# stock IRkernel sends display_data), and an error is named after its condition class
# ("simpleError") with the bare message as its value (stock: "ERROR", "Error in ...: msg").
R_START = """\
local({
  kernel <- IRkernel:::Kernel$new(connection_file = commandArgs(trailingOnly = TRUE)[[1]])
  executor <- kernel$executor
  env <- as.environment(executor)
  patch <- function(name, fn) {
    eval(call("$", executor, name))  # installs the method (and what it may call) first
    environment(fn) <- env
    if (bindingIsLocked(name, env)) unlockBinding(name, env)
    assign(name, fn, envir = env)
  }
  patch("handle_value", function(obj, visible) {
    set_last_value(obj)
    if (!visible) return()
    mimebundle <- prepare_mimebundle_kernel(obj, .self$handle_display_error)
    if (is.null(mimebundle$data)) return()
    if (length(intersect(class(obj), getOption("jupyter.pager_classes"))) > 0) {
      page(mimebundle)
    } else {
      send_response("execute_result", current_request, "iopub",
                    c(mimebundle, list(execution_count = execution_count)))
    }
  })
  patch("handle_error", function(e) {
    estr <- resilient_to_str(e)
    tryCatch({
      calls <- head(sys.calls()[-seq_len(nframe + 1L)], -3)
      calls <- skip_repeated(calls)
      msg <- tryCatch(conditionMessage(e), error = function(e2) estr)
      err <<- list(ename = class(e)[[1]], evalue = msg,
                   traceback = as.list(c(paste0(estr, "Traceback:\\n"), format_stack(calls))))
      if (!is_silent()) send_response("error", current_request, "iopub", err)
    }, error = function(e2) log_error("Error in handle_error! %s", resilient_to_str(e2)))
  })
  kernel$run()
})
"""


def configure_r(rootfs: Path, kernelspec: str) -> None:
    """IRkernel from Debian, started through `R_START` (``IRkernel::installspec()`` would write
    ``-e IRkernel::main()``)."""
    _require(rootfs, "/usr/bin/R", "r", "apt 'r-base-core'")
    _require(rootfs, "/usr/lib/R/site-library/IRkernel", "r", "apt 'r-cran-irkernel'")
    start = f"{KERNELS_DIR}/{kernelspec}/nullspace_start.R"
    path = inside(rootfs, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(R_START)
    path.chmod(0o644)
    _write_spec(
        rootfs,
        kernelspec,
        {
            "argv": ["/usr/bin/R", "--no-echo", "--no-save", "--no-restore", "-f", start,
                     "--args", "{connection_file}"],
            "display_name": "R",
            "language": "R",
            "interrupt_mode": "signal",
        },
    )  # fmt: skip


def configure_deno(rootfs: Path, kernelspec: str) -> None:
    """Deno's built-in Jupyter kernel (what ``deno jupyter --install`` writes, with our paths)."""
    deno = f"{_python.VENV}/bin/deno"
    _require(rootfs, deno, "javascript", "pip 'deno'")
    _write_spec(
        rootfs,
        kernelspec,
        {
            "argv": [deno, "jupyter", "--kernel", "--conn", "{connection_file}"],
            "display_name": "Deno",
            "language": "typescript",
            # SIGINT kills deno; an interrupt_request stops running JavaScript (not a pending
            # await: a run stuck in one outlives the interrupt and its context is restarted).
            "interrupt_mode": "message",
            # TCP only; and it may publish output just after its idle status: the agent waits
            # for 10 ms of quiet before it ends a run (agent/languages.py, iopub_settle)
            "metadata": {"nullspace": {**TCP_ONLY["nullspace"], "settle": 0.01}},
            "env": {
                "DENO_DIR": DENO_DIR,
                "DENO_NO_UPDATE_CHECK": "1",
                "DENO_NO_PROMPT": "1",
                "NO_COLOR": "1",
            },
        },
    )


def configure_java(rootfs: Path, kernelspec: str) -> None:
    """JJava, started directly: its launcher jar would start a second JVM (+0.5–1 s)."""
    _require(rootfs, "/usr/bin/java", "java", "apt 'openjdk-17-jdk-headless'")
    jar = f"{KERNELS_DIR}/java/jjava.jar"  # where the jjava wheel puts it
    _require(rootfs, jar, "java", "pip 'jjava'")
    _write_spec(
        rootfs,
        kernelspec,
        {
            "argv": ["/usr/bin/java", *JAVA_FLAGS, "-jar", jar, "{connection_file}"],
            "display_name": "Java (JJava)",
            "language": "java",
            "interrupt_mode": "message",
            "metadata": TCP_ONLY,
            "env": {},
        },
    )


def configure_bash(rootfs: Path, kernelspec: str) -> None:
    """``nullspace-bash`` (ours, see agent/bash_kernel.py) or the stock ``bash_kernel``."""
    if kernelspec == "nullspace-bash":
        argv = [f"{_python.VENV}/bin/python", "-I", BASH_KERNEL_PATH, "-f", "{connection_file}"]
        name = "Bash (nullspace)"
    else:
        if _python.installed_version(rootfs, "bash_kernel") is None:
            raise TemplateBuildError(
                f"language 'bash' with kernelspec {kernelspec!r} needs pip 'bash_kernel' "
                "(or use kernelspec 'nullspace-bash', which needs nothing)"
            )
        argv = [f"{_python.VENV}/bin/python", "-m", "bash_kernel", "-f", "{connection_file}"]
        name = "Bash"
    _write_spec(
        rootfs,
        kernelspec,
        {
            "argv": argv,
            "display_name": name,
            "language": "bash",
            "interrupt_mode": "signal",
            "env": {"PS1": "$ ", "PAGER": "cat", "GIT_PAGER": "cat", "TERM": "dumb"},
        },
    )


KERNEL_SETUP: Mapping[str, Callable[[Path, str], None]] = {
    "python": _python.configure_python_kernel,
    "r": configure_r,
    "javascript": configure_deno,
    "typescript": configure_deno,
    "java": configure_java,
    "bash": configure_bash,
}
"""Language → function that writes (and checks) its kernelspec."""


def configure_kernels(rootfs: Path, kernels: Mapping[str, str], log: BuildLog) -> None:
    """Configure every kernel named in the spec (each kernelspec once)."""
    done: set[str] = set()
    for language, kernelspec in kernels.items():
        log.line(f"kernel {language}: {kernelspec}")
        if kernelspec in done:
            continue
        setup = KERNEL_SETUP.get(language)
        if setup is not None:
            setup(rootfs, kernelspec)
        else:
            _python.require_kernelspec(rootfs, language, kernelspec)
        done.add(kernelspec)
    for path in sorted(inside(rootfs, KERNELS_DIR).glob("*/kernel.json")):
        try:
            argv = json.loads(path.read_text()).get("argv") or ["?"]
        except ValueError:
            argv = ["(unreadable)"]
        log.line(f"kernelspec {path.parent.name}: {argv[0]}")


def prestart_languages(kernels: Mapping[str, str]) -> list[str]:
    """The template's languages that the agent starts ahead of need (template.json ``prestart``)."""
    return [language for language in PRESTART if language in kernels]
