"""The server's recent warnings and errors, as the console's server view shows them."""

from __future__ import annotations

import logging

from nullspace.server import recent_errors


def test_warnings_and_errors_of_nullspace_loggers_are_kept_newest_first() -> None:
    handler = recent_errors.install()
    try:
        log = logging.getLogger("nullspace.server.somewhere")
        log.setLevel(logging.INFO)
        log.info("routine")
        log.warning("pool refill failed for %s", "code-interpreter")
        try:
            raise OSError("disk full")
        except OSError:
            log.exception("could not start sandbox")
        logging.getLogger("elsewhere").error("not ours")
        kept = handler.recent()
        assert [r["message"] for r in kept] == [
            "could not start sandbox (OSError: disk full)",
            "pool refill failed for code-interpreter",
        ]
        assert kept[0]["level"] == "ERROR" and kept[0]["logger"] == "nullspace.server.somewhere"
        for i in range(300):
            log.warning("w%d", i)
        assert len(handler.recent()) == recent_errors.KEEP and handler.recent()[0]["message"] == "w299"
    finally:
        recent_errors.uninstall(handler)
