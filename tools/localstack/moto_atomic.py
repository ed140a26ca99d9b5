"""moto server whose DynamoDB applies each request atomically, as real DynamoDB does.

moto's DynamoDB checks a condition and then writes, attribute by attribute, without a lock: two
concurrent conditional writes to one item can both pass the condition (and the older one can land
last), and a read can see an item half written. Real DynamoDB applies each write to an item
atomically. This server is moto's own app, threaded, with one lock around every DynamoDB request, so
the local stack and the race tests see DynamoDB's guarantee. Every other service (SQS long polls
included) stays concurrent.

With --iam FILE (the principals `local_stack create --iam-file` writes), a request signed with a
function's role key or the operator's runs only if that policy allows it (tools/localstack/local_iam.py);
each refusal is appended to --iam-denials.

Usage: python3 tools/localstack/moto_atomic.py -H 127.0.0.1 -p PORT [--iam FILE --iam-denials LOG]
"""

import argparse
import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class AtomicDynamoDB:
    """WSGI middleware: DynamoDB requests (JSON protocol, `X-Amz-Target: DynamoDB_...`) one at a time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                # The body is produced inside the lock: moto does its work while it is iterated.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--iam", help="the principals and their policies to enforce")
    parser.add_argument("--iam-denials", help="where each refusal is appended, one JSON line")
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = AtomicDynamoDB(DomainDispatcherApplication(create_backend_app))
    if args.iam:
        # Run as a script, this file's folder is first on the path; the enforcer is beside it.
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        from tools.localstack.local_iam import LocalIam

        app = LocalIam(app, args.iam, args.iam_denials or os.devnull)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
