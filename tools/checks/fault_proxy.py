"""A loopback HTTP proxy that passes requests to one upstream, or fails them on command: the chaos run
puts one in front of the receiver (Tripletex sees 5xx), one in front of SQS (the receiver finds the queue
unreachable), and one in front of DynamoDB (the worker's writes are throttled now and then).

  python3 -m tools.checks.fault_proxy --port P --upstream http://127.0.0.1:U

Control (on the same port):
  POST /_proxy/mode {"mode": "pass"}                                  forward everything (the default)
  POST /_proxy/mode {"mode": "error", "status": 503, "rate": 1.0,
                     "body": "...", "contentType": "..."}             answer `rate` of requests with it
  POST /_proxy/mode {"mode": "refuse"}                                close every connection unanswered
  GET  /_proxy/stats                                                  counts of forwarded/failed/refused
"""

import argparse
import http.client
import json
import random
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port, upstream, seed=1):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.mode = {"mode": "pass"}
        self.random = random.Random(seed)
        self.stats = {"forwarded": 0, "failed": 0, "refused": 0}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), Handler)

    def handle_error(self, request, client_address):
        """A client that resets or drops its connection (the receiver under test, a refused request) is
        routine here: counted, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, TimeoutError)):
            with self.lock:
                self.stats["clientResets"] = self.stats.get("clientResets", 0) + 1
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle and delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server's names
        self.handle_any("GET")

    def do_POST(self):  # noqa: N802
        self.handle_any("POST")

    def do_PUT(self):  # noqa: N802
        self.handle_any("PUT")

    def do_DELETE(self):  # noqa: N802
        self.handle_any("DELETE")

    def answer(self, status, body=b"", content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self, method):
        proxy = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/_proxy/"):
            return self.control(method, body)
        with proxy.lock:
            mode = dict(proxy.mode)
            hit = proxy.random.random() < float(mode.get("rate", 1.0))
        if mode["mode"] == "refuse":
            with proxy.lock:
                proxy.stats["refused"] += 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if mode["mode"] == "error" and hit:
            with proxy.lock:
                proxy.stats["failed"] += 1
            return self.answer(int(mode.get("status", 503)), mode.get("body", "").encode(),
                               mode.get("contentType", "application/json"))
        return self.forward(method, body)

    def forward(self, method, body):
        proxy = self.server
        connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            connection.request(method, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            passed = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"content-type"}]
            with proxy.lock:
                proxy.stats["forwarded"] += 1
            self.answer(response.status, payload, response.getheader("Content-Type", "application/json"), passed)
        except OSError:
            self.answer(502, b'{"message": "upstream unreachable"}')
        finally:
            connection.close()

    def control(self, method, body):
        proxy = self.server
        if self.path == "/_proxy/mode" and method == "POST":
            with proxy.lock:
                proxy.mode = json.loads(body or b"{}")
            return self.answer(204)
        if self.path == "/_proxy/stats" and method == "GET":
            with proxy.lock:
                return self.answer(200, json.dumps(proxy.stats).encode())
        return self.answer(404)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    server = FaultProxy(args.port, args.upstream, args.seed)
    print(f"[fault-proxy] 127.0.0.1:{args.port} -> {args.upstream}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
