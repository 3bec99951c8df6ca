"""Executed by ipykernel at start (``--IPKernelApp.exec_files``) in the user's namespace.

Loads this directory as the private package ``_nullspace_kernel`` (without putting it on
``sys.path``) and installs the display hooks. It leaves no names behind in the namespace, and a
failure only costs the extras (rich charts, tables), never the kernel.
"""


def __nullspace_setup() -> None:
    import importlib.util
    import os
    import sys

    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    name = "_nullspace_kernel"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(here, "__init__.py"), submodule_search_locations=[here]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    display = importlib.import_module(name + ".display")
    display.install(shell)


try:
    __nullspace_setup()
except Exception as __nullspace_error:  # noqa: BLE001
    import sys as __nullspace_sys

    print(
        f"nullspace: rich display hooks not installed: {__nullspace_error!r}", file=__nullspace_sys.__stderr__
    )
    del __nullspace_sys
finally:
    del __nullspace_setup
