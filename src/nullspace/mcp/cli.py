"""`nullspace mcp` for the CLI (imports the MCP SDK only when run)."""

from __future__ import annotations

from typing import Annotated

import typer


def mcp(
    template: Annotated[str, typer.Option(help="Template of the session sandbox")] = "code-interpreter",
) -> None:
    """Serve nullspace to an AI agent over MCP (stdio). Register this command in the agent's MCP
    config; it uses the local server, or NULLSPACE_API_URL and NULLSPACE_API_KEY."""
    try:
        from .stdio import main
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise SystemExit(f"nullspace mcp needs the MCP SDK: pip install 'nullspace[mcp]' ({exc})") from exc
    main(template)
