"""The nullspace server: one ASGI app (control plane + proxy to each sandbox's agent)."""
