"""nullspace as an MCP server: `nullspace mcp` (stdio) and `/mcp` on the server (streamable HTTP).

Needs the `mcp` extra (`pip install 'nullspace[mcp]'`). Modules: `tools` (the tools, once for
both transports), `access` (where a call connects, the session sandbox), `content` (runs and
files as MCP content), `http` (the server mount), `stdio` (the command), `_asgi` (in-process
streaming transport).
"""
