"""Code the agent runs *silently* in a kernel around a user run, one table entry per language.

Per-run environment variables (``envs`` on ``/execute``) are applied before the user code and
undone afterwards, all as silent executions (they do not bump ``execution_count``):

1. ``snapshot(keys)`` — a ``user_expressions`` entry evaluating to a JSON string
   ``{key: value-or-null}`` of the current values, so they can be restored exactly. Kernels
   without user expressions leave it ``None``; their variables are restored to the agent's own
   environment (the sandbox-level value) instead.
2. ``set(envs)`` — code that sets the variables.
3. ``restore(values)`` — code that sets each key to its value, or removes it when ``None``.

Every value is embedded through ``json.dumps`` plus the language's own string-literal rules, so
quotes, backslashes, newlines and non-ASCII text survive. Add a language by adding an entry.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvSnippets:
    set: Callable[[Mapping[str, str]], str]
    restore: Callable[[Mapping[str, str | None]], str]
    snapshot: Callable[[Sequence[str]], str] | None = None


def _py_literal(value: object) -> str:
    """A Python expression that evaluates to `value` (JSON text → a repr'd str → json.loads)."""
    return f"__import__('json').loads({json.dumps(value)!r})"


def _python_set(envs: Mapping[str, str]) -> str:
    return f"__import__('os').environ.update({_py_literal(dict(envs))})\n"


def _python_restore(values: Mapping[str, str | None]) -> str:
    # A comprehension keeps its loop variables local: nothing is left in the user's namespace.
    return (
        "[__import__('os').environ.pop(__ns_k, None) if __ns_v is None "
        "else __import__('os').environ.__setitem__(__ns_k, __ns_v) "
        f"for __ns_k, __ns_v in {_py_literal(dict(values))}.items()]\n"
    )


def _python_snapshot(keys: Sequence[str]) -> str:
    return (
        "__import__('json').dumps({__ns_k: __import__('os').environ.get(__ns_k) "
        f"for __ns_k in {_py_literal(list(keys))}}})"
    )


# -- the other languages: no snapshot (their kernels have no user_expressions), so a run's
# variables are restored to the sandbox-level value (the kernel's launch environment).


def _pairs(values: Mapping[str, str | None]) -> list[tuple[str, str | None]]:
    return list(values.items())


def _r_string(value: str) -> str:
    # A JSON string is an R string literal (R knows \" \\ \n \t \uXXXX); non-ASCII stays raw.
    return json.dumps(value, ensure_ascii=False)


def _r_set(envs: Mapping[str, str]) -> str:
    args = ", ".join(f"{_r_string(k)} = {_r_string(v)}" for k, v in envs.items())
    return f"invisible(do.call(Sys.setenv, list({args})))\n"


def _r_restore(values: Mapping[str, str | None]) -> str:
    lines = []
    unset = [k for k, v in values.items() if v is None]
    if unset:
        lines.append(f"invisible(Sys.unsetenv(c({', '.join(map(_r_string, unset))})))")
    kept = {k: v for k, v in values.items() if v is not None}
    if kept:
        lines.append(_r_set(kept).rstrip("\n"))
    return "\n".join(lines) + "\n"


def _js_set(envs: Mapping[str, str]) -> str:
    # Deno.env is the process environment: process.env (node compat) and subprocesses see it.
    # A block keeps the loop variables out of the REPL's scope.
    return f"{{ for (const [k, v] of Object.entries({json.dumps(dict(envs))})) Deno.env.set(k, v); }}\n"


def _js_restore(values: Mapping[str, str | None]) -> str:
    return (
        f"{{ for (const [k, v] of Object.entries({json.dumps(dict(values))})) "
        "{ if (v === null) Deno.env.delete(k); else Deno.env.set(k, v); } }\n"
    )


# Java: System.getenv() is an unmodifiable view of a map inside java.lang.ProcessEnvironment;
# the Java kernelspec opens java.base/java.lang and java.util (templates/_kernels.py) so that
# this snippet can update that map: System.getenv, ProcessBuilder children and, as in E2B,
# System.getProperty all see the value. Without the opens, only the properties change.
_JAVA_ENV = """new Object() {
  void apply(String[][] pairs) {
    java.util.Map<String, String> env = null;
    try {
      java.lang.reflect.Field f = Class.forName("java.lang.ProcessEnvironment").getDeclaredField("theUnmodifiableEnvironment");
      f.setAccessible(true);
      Object view = f.get(null);
      java.lang.reflect.Field m = view.getClass().getDeclaredField("m");
      m.setAccessible(true);
      @SuppressWarnings("unchecked") java.util.Map<String, String> inner = (java.util.Map<String, String>) m.get(view);
      env = inner;
    } catch (Exception e) { }
    for (String[] p : pairs) {
      if (p[1] == null) { System.clearProperty(p[0]); if (env != null) env.remove(p[0]); }
      else { System.setProperty(p[0], p[1]); if (env != null) env.put(p[0], p[1]); }
    }
  }
}.apply(new String[][] {%s});
"""


def _java_string(value: str | None) -> str:
    # json.dumps (ASCII) is a valid Java literal: \uXXXX only for non-ASCII, never for " or \.
    return "null" if value is None else json.dumps(value, ensure_ascii=True)


def _java_apply(values: Mapping[str, str | None]) -> str:
    pairs = ", ".join(f"{{{_java_string(k)}, {_java_string(v)}}}" for k, v in _pairs(values))
    return _JAVA_ENV % pairs


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _bash_set(envs: Mapping[str, str]) -> str:
    return "".join(f"export {_sh_quote(f'{k}={v}')}\n" for k, v in envs.items())


def _bash_restore(values: Mapping[str, str | None]) -> str:
    return "".join(
        f"unset {_sh_quote(k)}\n" if v is None else f"export {_sh_quote(f'{k}={v}')}\n"
        for k, v in values.items()
    )


ENV_SNIPPETS: dict[str, EnvSnippets] = {
    "python": EnvSnippets(set=_python_set, restore=_python_restore, snapshot=_python_snapshot),
    "r": EnvSnippets(set=_r_set, restore=_r_restore),
    "javascript": EnvSnippets(set=_js_set, restore=_js_restore),
    "typescript": EnvSnippets(set=_js_set, restore=_js_restore),
    "java": EnvSnippets(set=_java_apply, restore=_java_apply),
    "bash": EnvSnippets(set=_bash_set, restore=_bash_restore),
}


def parse_snapshot(user_expression: object) -> dict[str, str | None] | None:
    """Decode the ``user_expressions`` result of `snapshot` (a repr'd JSON string)."""
    if not isinstance(user_expression, dict) or user_expression.get("status") != "ok":
        return None
    text = (user_expression.get("data") or {}).get("text/plain")
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError):
        return None
    if not isinstance(value, dict):
        return None
    return {str(k): (v if isinstance(v, str) else None) for k, v in value.items()}
