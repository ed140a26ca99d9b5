"""Writes the seed corpora of the fuzz targets (fuzz/fuzz_targets/) into a folder: the events/ files,
the envelopes inside them, each auth method's credentials as the local auth configuration has them,
and Tripletex answers taken from the simulator over loopback.

  python3 -m tools.checks.fuzz_seeds OUT_DIR

Each target reads its own sub-folder (OUT_DIR/<target>/). The auth and answer targets take a first
byte that picks what the rest is; the seeds carry it.
"""

import base64
import datetime
import hashlib
import hmac
import json
import pathlib
import sys
import threading
import urllib.error
import urllib.request

from tools.simulator.tripletex_simulator import Simulator, SimulatorServer

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONSUMER, EMPLOYEE = "local-dev-consumer-token", "local-dev-employee-token"

# The first byte of an auth seed: which method the rest is for (fuzz_targets/auth_methods.rs).
HEADER, BASIC, QUERY, HMAC = 0, 1, 2, 3
# The first byte of an answer seed (fuzz_targets/tripletex_answers.rs).
SUBSCRIPTIONS, SUBSCRIPTION, LISTED, OBJECTS, SESSION, EVENTS, ERROR = range(7)


def write(folder, name, data):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def event_seeds(out):
    for event in sorted((ROOT / "events/webhook-receiver").glob("*.json")):
        text = event.read_text()
        write(out / "receiver_request", event.name, text)
        body = json.loads(text).get("body")
        if body:
            write(out / "envelope", event.name, body)
    for event in sorted((ROOT / "events/webhook-worker").glob("*.json")):
        write(out / "worker_record", event.name, event.read_text())


def auth_seeds(out):
    folder = out / "auth_methods"
    for token in ("local-dev-header-token", "local-dev-header-token-previous", "wrong"):
        write(folder, f"header-{token}", bytes([HEADER]) + token.encode())
    for credential in ("tripletex:local-dev-basic-password", "tripletex:wrong", "no-colon"):
        header = "Basic " + base64.b64encode(credential.encode()).decode()
        write(folder, f"basic-{credential.replace(':', '-')}", bytes([BASIC]) + header.encode())
    for query in ("token=local-dev-query-token", "token=local-dev-query-token&token=x", "a=1&token=%6Cocal"):
        write(folder, f"query-{len(query)}", bytes([QUERY]) + query.encode())
    key, body = b"0b8d2c1e-5f7a-4a43-9d1e-2b3c4d5e6f70", b'{"subscriptionId":1,"event":"product.update","id":1,"value":{"id":1}}'
    signature = base64.b64encode(hmac.new(b"local-dev-hmac-secret", key + b"&" + body, hashlib.sha512).digest())
    write(folder, "hmac-signed", bytes([HMAC]) + signature + b"\0" + key + b"\0" + body)


class Client:
    def __init__(self, base):
        self.base, self.auth = base, None

    def call(self, method, path, body=None):
        request = urllib.request.Request(self.base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Content-Type", "application/json")
        if self.auth:
            request.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.read()
        except urllib.error.HTTPError as error:
            return error.read()


def answer_seeds(out):
    folder = out / "tripletex_answers"
    simulator = Simulator()
    simulator.add_company(100, CONSUMER, EMPLOYEE, [])
    server = SimulatorServer(0, simulator)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        client = Client(f"http://127.0.0.1:{server.server_address[1]}")
        tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
        session = client.call("PUT", f"/v2/token/session/:create?consumerToken={CONSUMER}"
                                     f"&employeeToken={EMPLOYEE}&expirationDate={tomorrow}")
        write(folder, "session", bytes([SESSION]) + session)
        token = json.loads(session)["value"]["token"]
        client.auth = "Basic " + base64.b64encode(f"0:{token}".encode()).decode()
        created = client.call("POST", "/v2/event/subscription", {
            "event": "customer.update", "targetUrl": "http://127.0.0.1:9/t/default", "fields": "id,version,name",
            "authHeaderName": "X-Tripletex-Webhook-Token", "authHeaderValue": "placeholder"})
        write(folder, "subscription", bytes([SUBSCRIPTION]) + created)
        write(folder, "subscriptions", bytes([SUBSCRIPTIONS]) + client.call("GET", "/v2/event/subscription?fields=*"))
        client.call("POST", "/_sim/objects", {"type": "customer", "companyId": 100, "count": 3})
        write(folder, "listed", bytes([LISTED]) + client.call("GET", "/v2/customer?fields=id,version&sorting=id"))
        write(folder, "objects", bytes([OBJECTS]) + client.call("GET", "/v2/customer?fields=*"))
        write(folder, "events", bytes([EVENTS]) + client.call("GET", "/v2/event"))
        write(folder, "not-found", bytes([ERROR]) + client.call("GET", "/v2/customer/999999"))
        write(folder, "validation", bytes([ERROR]) + client.call("POST", "/v2/event/subscription", {"event": "x"}))
    finally:
        server.shutdown()
        server.server_close()


def main():
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    out = pathlib.Path(sys.argv[1])
    event_seeds(out)
    auth_seeds(out)
    answer_seeds(out)
    (out / "sync_compare").mkdir(parents=True, exist_ok=True)
    write(out / "sync_compare", "empty", b"\0")
    for folder in sorted(out.iterdir()):
        print(f"{folder.name}: {len(list(folder.iterdir()))} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
