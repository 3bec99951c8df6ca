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


ENV_SNIPPETS: dict[str, EnvSnippets] = {
    "python": EnvSnippets(set=_python_set, restore=_python_restore, snapshot=_python_snapshot),
    # "r", "javascript", "typescript", "bash", "java": add entries here (see e2b-protocol §4.7).
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
