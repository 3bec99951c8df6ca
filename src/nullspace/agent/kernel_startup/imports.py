"""Post-import hooks: run a function on a module right after it is first imported.

The kernel must not import matplotlib or PIL at start (seconds of start-up for every context),
yet a few of their functions need a wrapper before user code calls them (``Axes.bxp`` records box
plot statistics; ``PIL.Image.Image.show`` displays). A meta-path finder wraps the loader of the
named modules; if a module is already imported, its hook runs at once. A failing hook is ignored.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

Hook = Callable[[ModuleType], None]


def _run(hook: Hook, module: ModuleType) -> None:
    try:
        hook(module)
    except Exception:
        pass


class _HookedLoader(importlib.abc.Loader):
    """Delegates to the real loader, then runs the hooks (module.__loader__ stays the real one)."""

    def __init__(self, loader: Any, hooks: list[Hook]) -> None:
        self._loader = loader
        self._hooks = hooks

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        for hook in self._hooks:
            _run(hook, module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, ...
        return getattr(self._loader, name)


class PostImportFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.hooks: dict[str, list[Hook]] = {}
        self._lock = threading.RLock()
        self._searching: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        with self._lock:
            if fullname not in self.hooks or fullname in self._searching:
                return None
            self._searching.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)  # the other finders, through sys.meta_path
        except Exception:
            spec = None
        finally:
            with self._lock:
                self._searching.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        with self._lock:
            hooks = self.hooks.pop(fullname, None)
        if not hooks:
            return None
        spec.loader = _HookedLoader(spec.loader, hooks)
        return spec


_FINDER = PostImportFinder()


def when_imported(name: str, hook: Hook) -> None:
    """Run `hook(module)` once `name` is imported (now, if it already is)."""
    module = sys.modules.get(name)
    if module is not None:
        _run(hook, module)
        return
    with _FINDER._lock:
        _FINDER.hooks.setdefault(name, []).append(hook)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
