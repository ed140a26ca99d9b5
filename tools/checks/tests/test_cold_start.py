"""The cold-start bench's Runtime API emulator (as a runtime client speaks to it) and the Lambda cost
its bill counts.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import json
import threading
import unittest
import urllib.request

from tools.checks.bill import lambda_cost
from tools.checks.cold_start import Started


def runtime_client(base, answers):
    """What lambda_runtime does: take the next event, answer it, take the next one."""
    for answer in answers:
        with urllib.request.urlopen(f"{base}/2018-06-01/runtime/invocation/next", timeout=10) as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.load(response)
        kind = "error" if answer == "error" else "response"
        body = json.dumps({"echo": event}).encode()
        urllib.request.urlopen(urllib.request.Request(
            f"{base}/2018-06-01/runtime/invocation/{request_id}/{kind}", data=body, method="POST"), timeout=10)


class RuntimeApiEmulator(unittest.TestCase):
    def test_an_event_goes_to_the_process_and_its_answer_comes_back_with_times(self):
        with Started() as api:
            base = f"http://127.0.0.1:{api.server_address[1]}"
            client = threading.Thread(target=runtime_client, args=(base, ["ok", "error"]), daemon=True)
            client.start()
            first = api.invoke(b'{"n": 1}', timeout=10)
            second = api.invoke(b'{"n": 2}', timeout=10)
            client.join(10)
        self.assertEqual(first.answer, {"echo": {"n": 1}})
        self.assertEqual(second.answer, {"runtimeError": {"echo": {"n": 2}}})
        self.assertIsNotNone(api.first_next_at)
        self.assertLessEqual(first.handed_at, first.answered_at)

    def test_each_emulator_has_its_own_port_so_a_stopped_process_cannot_take_the_next_event(self):
        with Started() as one, Started() as other:
            self.assertNotEqual(one.server_address[1], other.server_address[1])


class Cost(unittest.TestCase):
    def test_lambda_bills_requests_and_each_started_millisecond_at_128_mb(self):
        # A million calls of 9.2 ms are billed 10 ms each: 10,000 s x 0.125 GB at the arm64 price.
        self.assertAlmostEqual(lambda_cost(1e6, 9.2), 0.20 + 10_000 * 0.125 * 0.0000133334, places=6)
