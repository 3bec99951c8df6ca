"""Controlled network access for sandboxes: allow-lists by name, and secrets the sandbox never sees.

The trusted side of it: `service.EgressService` serves one proxy socket per sandbox
(`proxy.ProxyConnection`), checks names with `rules`, addresses with `addresses`, resolves with
`resolver`, intercepts TLS with a per-sandbox `ca.SandboxCA`, and swaps `secrets`. docs/egress.md.
"""
