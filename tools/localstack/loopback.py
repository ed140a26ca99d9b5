"""Loopback helpers shared by the local tools and their tests: free ports, waiting for a listener, and a
moto server started for the caller (stopped with `.terminate()`)."""

import os
import socket
import subprocess
import sys
import time

# The project root: tools/localstack/loopback.py is three levels down.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# The SDKs' per-service endpoint variables (AWS_ENDPOINT_URL_<SERVICE>): with one moto per service
# (`scripts/run --fairness`), each client goes to its service's own; else to the one moto.
SERVICE_ENDPOINT_VARIABLES = {
    "sqs": "SQS", "dynamodb": "DYNAMODB", "dynamodbstreams": "DYNAMODB_STREAMS", "s3": "S3",
    "secretsmanager": "SECRETS_MANAGER", "events": "EVENTBRIDGE",
}


def endpoint_for(service, default=None):
    """Where `service` is reached: its own variable's endpoint when set, else `default` (else
    AWS_ENDPOINT_URL)."""
    variable = SERVICE_ENDPOINT_VARIABLES.get(service)
    fallback = default or os.environ.get("AWS_ENDPOINT_URL")
    return os.environ.get(f"AWS_ENDPOINT_URL_{variable}", fallback) if variable else fallback


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


def start_postgres(directory):
    """A throwaway PostgreSQL (tools/postgres/serve.sh) on a free loopback port, its data in
    `directory`, stopped once this process is gone: (process, URL)."""
    port = free_port()
    process = subprocess.Popen([os.path.join(ROOT, "tools/postgres/serve.sh"), directory, str(port), str(os.getpid())],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, f"postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"


def start_moto(*options):
    """A moto server on a free loopback port, its DynamoDB atomic as the real one (moto_atomic.py),
    with moto_atomic's `options` (the local IAM's): (process, endpoint URL)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools/localstack/moto_atomic.py"),
                                "-H", "127.0.0.1", "-p", str(port), *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"
