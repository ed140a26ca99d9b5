"""The simulator delivers webhooks as Tripletex does: the envelope filtered by fields, each auth method,
a verifiable HMAC signature, skipped versions, retries with growing intervals, disabling after failing
long enough, duplicates and drops on demand. Against a capturing HTTP receiver on loopback.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import base64
import hashlib
import hmac
import json
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tools.simulator import tripletex_simulator

COMPANY = 100


class CapturingReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.received = []
        self.failing = False
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), self.Handler)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            server = self.server
            with server.lock:
                server.received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": body, "at": time.monotonic()})
            self.send_response(503 if server.failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    def bodies(self):
        with self.lock:
            return [json.loads(r["body"]) for r in self.received]


class SimulatorSendsWebhooks(unittest.TestCase):
    def setUp(self):
        self.receiver = CapturingReceiver()
        threading.Thread(target=self.receiver.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.receiver.server_address[1]}"
        self.sim = tripletex_simulator.Simulator()
        self.hooks = self.sim.webhooks

    def tearDown(self):
        self.receiver.shutdown()
        self.receiver.server_close()

    def subscribe(self, event, path="/hook", **extra):
        return self.sim.create(COMPANY, {"event": event, "targetUrl": self.base.replace("http://", "http://" + extra.pop("userinfo", "")) + path,
                                         "fields": extra.pop("fields", "*"), **extra})

    def wait_for(self, condition, seconds=10):
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                self.fail("not reached in time")
            time.sleep(0.02)

    def settled(self):
        status = self.hooks.status()
        return status["pending"] == 0 and status["inFlight"] == 0

    def test_delivers_the_envelope_filtered_by_fields_with_the_custom_header(self):
        subscription = self.subscribe("product.create", fields="id,version,name",
                                      authHeaderName="X-Hook-Token", authHeaderValue="token-1")
        key = self.hooks.change(COMPANY, "product", "create")
        self.wait_for(lambda: len(self.receiver.received) == 1)
        request = self.receiver.received[0]
        self.assertEqual(request["headers"]["x-hook-token"], "token-1")
        body = json.loads(request["body"])
        self.assertEqual(body, {"subscriptionId": subscription["id"], "event": "product.create", "id": key[2],
                                "value": {"id": key[2], "version": 0, "name": f"product {key[2]}"}})

    def test_basic_auth_comes_from_the_target_url_and_a_query_token_stays_in_it(self):
        self.subscribe("customer.create", path="/t/acme?token=q-1", userinfo="tripletex:pw%401@")
        self.hooks.change(COMPANY, "customer", "create")
        self.wait_for(lambda: len(self.receiver.received) == 1)
        request = self.receiver.received[0]
        self.assertEqual(request["path"], "/t/acme?token=q-1")
        self.assertEqual(base64.b64decode(request["headers"]["authorization"][6:]), b"tripletex:pw@1")

    def test_an_hmac_subscription_signs_idempotency_key_and_body(self):
        self.subscribe("order.create", hmacSharedSecret="shared-secret-1")
        self.hooks.change(COMPANY, "order", "create")
        self.wait_for(lambda: len(self.receiver.received) == 1)
        request = self.receiver.received[0]
        key = request["headers"]["idempotency-key"]
        expected = base64.b64encode(hmac.new(b"shared-secret-1", key.encode() + b"&" + request["body"],
                                             hashlib.sha512).digest()).decode()
        self.assertEqual(request["headers"]["x-request-signature"], expected)

    def test_a_delete_carries_no_value_and_only_the_event_s_subscriptions_receive_it(self):
        self.subscribe("product.create")
        self.subscribe("product.delete")
        key = self.hooks.change(COMPANY, "product", "create")
        self.hooks.change(COMPANY, "product", "delete", key[2])
        self.wait_for(lambda: len(self.receiver.received) == 2)
        deletes = [b for b in self.receiver.bodies() if b["event"] == "product.delete"]
        self.assertEqual(deletes[0]["value"], None)
        self.assertEqual(deletes[0]["id"], key[2])
        self.assertEqual(self.hooks.truth()[0]["deleted"], True)

    def test_updates_in_quick_succession_skip_versions_but_the_last_one_arrives(self):
        self.subscribe("product.update")
        self.hooks.config.update({"reorderMaxSeconds": 0.3})  # deliveries wait a little: a burst coalesces
        key = self.hooks.change(COMPANY, "product", "create")
        for _ in range(5):
            self.hooks.change(COMPANY, "product", "update", key[2])
        self.wait_for(self.settled)
        versions = [b["value"]["version"] for b in self.receiver.bodies()]
        self.assertIn(5, versions)
        self.assertLess(len(versions), 5, "some versions skipped")

    def test_failed_deliveries_are_retried_with_growing_intervals_until_they_pass(self):
        self.subscribe("product.create")
        self.hooks.config.update({"timeScale": 0.001})  # 60 s -> 0.06 s, 300 s -> 0.3 s, ...
        self.receiver.failing = True
        self.hooks.change(COMPANY, "product", "create")
        self.wait_for(lambda: len(self.receiver.received) == 3)
        self.receiver.failing = False
        self.wait_for(self.settled)
        times = [r["at"] for r in self.receiver.received]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreater(gaps[1], gaps[0], "growing intervals")
        self.assertEqual(len(self.receiver.received), 4)
        self.assertEqual(self.hooks.status()["retries"], 3)
        answers = self.hooks.status()["answers"]
        self.assertEqual(answers.get("200"), 1, "the receiver's answers are counted by status")
        self.assertEqual(sum(answers.values()), 4)
        keys = {r["headers"].get("idempotency-key") for r in self.receiver.received}
        self.assertEqual(len(keys), 1, "one delivery, retried")

    def test_a_subscription_failing_long_enough_is_disabled_and_gets_nothing_more(self):
        subscription = self.subscribe("product.create")
        self.hooks.config.update({"timeScale": 0.0001, "disableAfterSeconds": 3000})  # 0.3 s of failure
        self.sim.webhooks.broken.add(subscription["id"])
        self.hooks.change(COMPANY, "product", "create")
        self.wait_for(lambda: self.sim.subscriptions[subscription["id"]]["status"] == "DISABLED_TOO_MANY_ERRORS")
        key = self.hooks.change(COMPANY, "product", "create")
        self.wait_for(self.settled)
        self.assertEqual(self.receiver.received, [], "a broken subscription's deliveries never arrive")
        missed = {(t["type"], t["id"]) for t in self.hooks.truth() if t["missedWhileDisabled"]}
        self.assertIn(("product", key[2]), missed)
        self.assertEqual(self.hooks.status()["subscriptionsDisabled"], 1)

    def test_duplicates_are_the_same_delivery_sent_again_and_drops_never_arrive(self):
        self.subscribe("product.create")
        self.hooks.config.update({"duplicateRate": 1.0, "maxCopies": 3, "seed": 7})
        self.hooks.change(COMPANY, "product", "create")
        self.wait_for(self.settled)
        received = self.receiver.received
        self.assertGreaterEqual(len(received), 2)
        self.assertEqual(len({r["body"] for r in received}), 1)
        self.assertEqual(len(received) - 1, self.hooks.status()["duplicatesSent"])
        self.hooks.config.update({"duplicateRate": 0, "dropRate": 1.0})
        before = len(received)
        self.hooks.change(COMPANY, "product", "create")
        self.wait_for(self.settled)
        self.assertEqual(len(self.receiver.received), before)
        self.assertEqual(self.hooks.status()["dropped"], 1)

    def test_a_duplicate_carries_its_original_s_body_even_when_the_original_was_coalesced(self):
        self.subscribe("product.update", hmacSharedSecret="shared-secret-1")  # signed: idempotency-key sent
        # Every delivery copied, and held back long enough for the burst to coalesce into the original.
        self.hooks.config.update({"duplicateRate": 1.0, "maxCopies": 3, "reorderMaxSeconds": 0.4, "seed": 3})
        key = self.hooks.change(COMPANY, "product", "create")
        for _ in range(6):
            self.hooks.change(COMPANY, "product", "update", key[2])
        self.wait_for(self.settled)
        by_key = {}
        for request in self.receiver.received:
            by_key.setdefault(request["headers"].get("idempotency-key"), set()).add(request["body"])
        self.assertNotIn(None, by_key)
        self.assertGreater(len(self.receiver.received), len(by_key), "duplicates were sent")
        for idempotency_key, bodies in by_key.items():
            self.assertEqual(len(bodies), 1, f"one idempotency-key, one body: {idempotency_key}")
        self.assertIn(6, [b["value"]["version"] for b in self.receiver.bodies()], "the last version arrives")

    def test_a_workload_is_seeded_and_deterministic(self):
        first = tripletex_simulator.Simulator()
        second = tripletex_simulator.Simulator()
        for sim in (first, second):
            sim.webhooks.run_workload([COMPANY, 200], changes=400, objects=40, rate=0, seed=42)
        strip = lambda sim: sorted((t["companyId"], t["type"], t["id"], t["version"], t["deleted"])  # noqa: E731
                                   for t in sim.webhooks.truth())
        self.assertEqual(strip(first), strip(second))
        self.assertEqual(first.webhooks.status()["changes"], 400)
        self.assertLessEqual(len(first.webhooks.truth()), 40)
        self.assertTrue(any(t["deleted"] for t in first.webhooks.truth()))
        self.assertTrue(any(t["version"] > 1 for t in first.webhooks.truth()))

    def test_a_workload_goes_on_past_objects_a_fault_deleted(self):
        sim = tripletex_simulator.Simulator()
        hooks = sim.webhooks
        change = hooks.change
        deleted_by_fault = []

        def a_fault_deletes_first(company, kind, verb, object_id=None, fields=None, deliver=True):
            # A deletion mid-listing lands just before the workload's next change of the object.
            if verb == "update" and len(deleted_by_fault) < 5 and object_id not in deleted_by_fault:
                change(company, kind, "delete", object_id, deliver=False)
                deleted_by_fault.append(object_id)
            return change(company, kind, verb, object_id, fields, deliver)

        hooks.change = a_fault_deletes_first
        hooks.run_workload([COMPANY], changes=300, objects=40, rate=0, seed=7)
        status = hooks.status()
        self.assertEqual(len(deleted_by_fault), 5)
        self.assertIsNone(status["workloadError"])
        self.assertGreaterEqual(status["changes"], 300, "every change the workload was asked for was made")
        self.assertFalse(status["workloadRunning"])

    def test_a_workload_that_dies_says_why(self):
        sim = tripletex_simulator.Simulator()

        def broken(*args, **kwargs):
            raise RuntimeError("disk full")

        sim.webhooks.change = broken
        with self.assertRaises(RuntimeError):
            sim.webhooks.run_workload([COMPANY], changes=10, objects=5, rate=0, seed=1)
        status = sim.webhooks.status()
        self.assertIn("stopped at 0 of 10 changes", status["workloadError"])
        self.assertIn("disk full", status["workloadError"])


if __name__ == "__main__":
    unittest.main()
