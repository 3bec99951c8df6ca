"""uvicorn's HTTP protocol with JSON errors: a request uvicorn cannot parse (bad request line,
bad header, bad chunk) is answered like every other error, `{"code", "message"}`, not with
uvicorn's plain-text "Invalid HTTP request received."."""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is optional for uvicorn
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def _body(msg: str) -> bytes:
    return json.dumps({"code": "invalid_argument", "message": f"malformed HTTP request: {msg}"}).encode()


class JSONErrorsH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        body = _body(msg)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


if HttpToolsProtocol is not None:

    class JSONErrorsHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            body = _body(msg)
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in self.server_state.default_headers:
                head.extend([name, b": ", value, b"\r\n"])
            head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
            self.transport.write(b"".join([*head, body]))
            self.transport.close()

    PROTOCOL: type = JSONErrorsHttpToolsProtocol
else:  # pragma: no cover
    PROTOCOL = JSONErrorsH11Protocol
