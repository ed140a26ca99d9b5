"""The fault proxy forwards, fails on command, and takes a client's connection reset quietly.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import contextlib
import io
import json
import socket
import struct
import threading
import time
import unittest
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tools.checks.fault_proxy import FaultProxy
from tools.localstack.loopback import free_port


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), self.Handler)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass


class FaultProxyTest(unittest.TestCase):
    def setUp(self):
        self.upstream = Upstream()
        threading.Thread(target=self.upstream.serve_forever, daemon=True).start()
        self.port = free_port()
        self.proxy = FaultProxy(self.port, f"http://127.0.0.1:{self.upstream.server_address[1]}")
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()

    def tearDown(self):
        for server in (self.proxy, self.upstream):
            server.shutdown()
            server.server_close()

    def post(self, path, body):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def test_forwards_then_fails_on_command(self):
        self.assertEqual(self.post("/x", b"hello"), (200, b"hello"))
        self.post("/_proxy/mode", json.dumps({"mode": "error", "status": 503}).encode())
        self.assertEqual(self.post("/x", b"hello")[0], 503)

    def test_a_client_reset_is_counted_not_printed_as_a_traceback(self):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            for _ in range(3):
                client = socket.create_connection(("127.0.0.1", self.port))
                # Promise a body, send part of it, then reset the connection (RST, not FIN).
                client.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
            deadline = time.monotonic() + 5
            while self.proxy.stats.get("clientResets", 0) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        self.assertEqual(self.proxy.stats.get("clientResets"), 3)
        self.assertNotIn("Traceback", stderr.getvalue())
        self.assertEqual(self.post("/x", b"still there"), (200, b"still there"))


if __name__ == "__main__":
    unittest.main()
