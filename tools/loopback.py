"""Loopback helpers shared by the local tools and their tests: free ports, waiting for a listener, and a
moto server started for the caller (stopped with `.terminate()`)."""

import os
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listened on 127.0.0.1:{port} after {seconds}s") from None
            time.sleep(0.05)


def start_moto():
    """A moto server on a free loopback port: (process, endpoint URL)."""
    port = free_port()
    moto = os.environ.get("MOTO_SERVER", os.path.join(ROOT, ".venv/bin/moto_server"))
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"
