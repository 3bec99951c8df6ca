"""The web console served at `/console` (docs/console.md): static HTML, CSS and JavaScript modules,
no build step; it talks to the same `/v1` API as the SDK, with the same key."""
