"""A stand-in for the internet, run inside a network namespace of its own by tests/integration/
test_egress.py and bench/egress.py: HTTP on 80 and 8080, HTTPS on 443 (a certificate from the
fixture's own CA), and DNS on UDP 53. Every HTTP request it receives is appended to
``DIR/requests.jsonl``, so tests can check what reached "the internet".

    python egress_internet.py DIR IP RECORDS_JSON

RECORDS_JSON maps names to a list of IPv4 answers; a name with several answers gives the first
one to the first A query, the next one to the next query, and so on (DNS rebinding), the last
one forever after.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

DIR = Path(sys.argv[1])
IP = sys.argv[2]
RECORDS: dict[str, list[str]] = json.loads(sys.argv[3])
LOCK = threading.Lock()
ASKED: dict[str, int] = {}
BLOB = bytes(range(256)) * 4096  # 1 MiB


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()  # headers and body go out in two writes: no Nagle wait between them
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _record(self, body: bytes) -> dict[str, object]:
        entry = {
            "port": self.server.server_address[1], "method": self.command, "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode("latin-1"),
        }
        with LOCK, open(DIR / "requests.jsonl", "a") as log:
            log.write(json.dumps(entry) + "\n")
        return entry

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        entry = self._record(self.rfile.read(length) if length else b"")
        if self.path.startswith("/bytes/"):
            size = int(self.path.split("/")[2])
            self._send(200, (BLOB * (size // len(BLOB) + 1))[:size], "application/octet-stream")
        elif self.path.startswith("/simple/"):
            links = "".join(f'<a href="/packages/{p.name}">{p.name}</a>' for p in sorted(DIR.glob("*.whl")))
            self._send(200, f"<html><body>{links}</body></html>".encode(), "text/html")
        elif self.path.startswith("/packages/"):
            self._send(200, (DIR / Path(self.path).name).read_bytes(), "application/octet-stream")
        else:
            self._send(200, json.dumps(entry).encode())

    do_POST = do_GET
    do_PUT = do_GET


def serve_http(port: int, tls: bool) -> None:
    server = ThreadingHTTPServer((IP, port), Handler)
    server.daemon_threads = True
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(DIR / "server.pem", DIR / "server.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def serve_dns() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((IP, 53))
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            query = dns.message.from_wire(data)
        except Exception:
            continue
        reply = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        answers = RECORDS.get(name)
        if answers is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            with LOCK:
                n = ASKED.get(name, 0)
                ASKED[name] = n + 1
            address = answers[min(n, len(answers) - 1)]
            reply.answer.append(dns.rrset.from_text(question.name, 0, dns.rdataclass.IN, dns.rdatatype.A, address))
        sock.sendto(reply.to_wire(), peer)


def main() -> None:
    for port, tls in ((80, False), (8080, False), (443, True)):
        threading.Thread(target=serve_http, args=(port, tls), daemon=True).start()
    threading.Thread(target=serve_dns, daemon=True).start()
    (DIR / "ready").write_text("ok")
    threading.Event().wait()


if __name__ == "__main__":
    main()
