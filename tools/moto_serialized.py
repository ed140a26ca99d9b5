"""moto server that handles one request at a time.

moto's DynamoDB checks a condition and then writes without a lock, so two concurrent requests on one
item can interleave inside moto; real DynamoDB applies each conditional write to an item atomically.
Serving requests one at a time gives that per-item atomicity back, while clients still race freely
at request granularity: what a race test of our conditional writes needs. (Not for SQS long polls,
which would hold the only thread.)

Usage: moto_serialized.py -H 127.0.0.1 -p PORT
"""

import argparse
import os

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
