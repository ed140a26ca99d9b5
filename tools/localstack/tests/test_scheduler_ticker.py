"""The local scheduler invokes a function with its schedule's Input, and a failed invocation (however
it fails) costs that tick only: the schedule goes on, as EventBridge Scheduler's does.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import json
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tools.localstack import scheduler_ticker

SCHEDULE = {"name": "KeeperSchedule", "function": "subscription-keeper", "expression": "rate(5 minutes)",
            "input": json.dumps({"source": "scheduler", "time": "<aws.scheduler.scheduled-time>",
                                 "schedule": "<aws.scheduler.schedule-arn>"})}


class StandInFunction(ThreadingHTTPServer):
    """Drops the first calls it is told to without a word, then answers like the keeper."""

    def __init__(self):
        self.events = []
        self.drops_left = 0
        super().__init__(("127.0.0.1", 0), self.Handler)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.server.drops_left > 0:
                self.server.drops_left -= 1
                self.close_connection = True
                return
            self.server.events.append((self.path, event))
            payload = json.dumps({"totals": {"seen": 1}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass


class TickerTest(unittest.TestCase):
    def setUp(self):
        self.function = StandInFunction()
        threading.Thread(target=self.function.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.function.server_address[1]}"

    def tearDown(self):
        self.function.shutdown()
        self.function.server_close()

    def test_a_tick_sends_the_schedules_input_with_its_context_filled_in(self):
        scheduler_ticker.tick(SCHEDULE, self.url)
        [(path, event)] = self.function.events
        self.assertEqual(path, "/2015-03-31/functions/subscription-keeper/invocations")
        self.assertEqual(event["schedule"], "arn:aws:scheduler:eu-north-1:123456789012:schedule/default/KeeperSchedule")
        self.assertRegex(event["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_a_dropped_invocation_costs_one_tick_and_the_next_goes_through(self):
        self.function.drops_left = 1
        scheduler_ticker.tick(SCHEDULE, self.url)  # must not raise: the schedule's thread lives on
        self.assertEqual(self.function.events, [])
        scheduler_ticker.tick(SCHEDULE, self.url)
        self.assertEqual(len(self.function.events), 1)

    def test_a_refused_invocation_costs_one_tick(self):
        self.function.shutdown()
        self.function.server_close()
        scheduler_ticker.tick(SCHEDULE, self.url)  # nothing listens: logged, not raised
        self.function = StandInFunction()  # for tearDown
        threading.Thread(target=self.function.serve_forever, daemon=True).start()


if __name__ == "__main__":
    unittest.main()
