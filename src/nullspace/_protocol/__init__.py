"""The wire contract shared by the SDK, the server and the agent (stdlib only)."""
