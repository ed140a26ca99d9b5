"""The local poller behaves like Lambda's SQS event source mapping, against a real moto server and a
stand-in function that fails chosen records.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import json
import os
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

from tools.localstack import sqs_poller
from tools.localstack.loopback import start_moto


class StandInFunction(ThreadingHTTPServer):
    """Answers invocations like a function with ReportBatchItemFailures, failing bodies it is told to."""

    def __init__(self):
        self.invocations = []
        self.failing_bodies = set()
        self.crashes_left = 0
        self.hangs_left = 0
        self.drops_left = 0
        self.delay_seconds = 0
        super().__init__(("127.0.0.1", 0), self.Handler)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server = self.server
            server.invocations.append(event["Records"])
            if server.drops_left > 0:
                server.drops_left -= 1
                self.close_connection = True  # no answer at all: the runtime went away mid-call
                return
            if server.hangs_left > 0:
                server.hangs_left -= 1
                time.sleep(3)  # longer than the function's timeout
                return
            time.sleep(server.delay_seconds)
            if server.crashes_left > 0:
                server.crashes_left -= 1
                body, headers = {"errorType": "Panic", "errorMessage": "boom"}, {"X-Amz-Function-Error": "Unhandled"}
            else:
                failed = [r["messageId"] for r in event["Records"] if r["body"] in server.failing_bodies]
                body, headers = {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}, {}
            payload = json.dumps(body).encode()
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass


class PollerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moto, cls.endpoint = start_moto()
        cls.sqs = boto3.client("sqs", endpoint_url=cls.endpoint, region_name="eu-north-1",
                               aws_access_key_id="local", aws_secret_access_key="local")

    @classmethod
    def tearDownClass(cls):
        cls.moto.terminate()
        cls.moto.wait(10)

    def setUp(self):
        name = f"q{time.monotonic_ns()}"
        self.dlq = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue = self.sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        })["QueueUrl"]
        self.function = StandInFunction()
        threading.Thread(target=self.function.serve_forever, daemon=True).start()
        self.stop = threading.Event()

    def tearDown(self):
        self.stop.set()
        self.function.shutdown()
        self.function.server_close()

    def start_poller(self, batch_size=10, window=0, retry_after=None, timeout=1, received=None):
        source = {"function": "webhook-worker", "queue_url": self.queue, "batch_size": batch_size,
                  "batching_window_seconds": window, "report_batch_item_failures": True,
                  "timeout_seconds": timeout}
        lambda_url = f"http://127.0.0.1:{self.function.server_address[1]}"
        mapping = sqs_poller.Mapping(source, self.sqs, lambda_url, retry_after, self.stop, received)
        threading.Thread(target=mapping.run, daemon=True).start()

    def send(self, *bodies):
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.queue, MessageBody=body,
                                  MessageAttributes={"tenant": {"DataType": "String", "StringValue": "default"}})

    def count(self, queue):
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def wait_until(self, condition, seconds=20):
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                self.fail("condition not reached in time")
            time.sleep(0.1)

    def test_batches_messages_with_their_attributes_and_deletes_the_successful_ones(self):
        self.send(*[f"m{i}" for i in range(5)])
        self.start_poller(batch_size=10, window=1)
        self.wait_until(lambda: self.count(self.queue) == 0)
        records = [r for batch in self.function.invocations for r in batch]
        self.assertEqual(sorted(r["body"] for r in records), [f"m{i}" for i in range(5)])
        self.assertLessEqual(len(self.function.invocations), 2, "gathered within the batching window")
        record = records[0]
        self.assertEqual(record["eventSource"], "aws:sqs")
        self.assertEqual(record["messageAttributes"]["tenant"]["stringValue"], "default")
        self.assertEqual(record["attributes"]["ApproximateReceiveCount"], "1")

    def test_the_received_log_has_each_message_once_at_its_first_receipt_with_its_wait(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "received.jsonl")
            self.send("m0", "m1")
            self.start_poller(batch_size=10, window=0, retry_after=0, received=sqs_poller.ReceivedLog(path))
            self.wait_until(lambda: self.count(self.queue) == 0)
            with open(path, encoding="utf-8") as handle:
                lines = [json.loads(line) for line in handle]
        self.assertEqual(len(lines), 2)
        self.assertEqual(len({line["messageId"] for line in lines}), 2)
        for line in lines:
            self.assertEqual(line["function"], "webhook-worker")
            self.assertGreaterEqual(line["waitedSeconds"], 0)

    def test_respects_the_batch_size(self):
        self.send(*[f"m{i}" for i in range(7)])
        self.start_poller(batch_size=3, window=1)
        self.wait_until(lambda: self.count(self.queue) == 0)
        self.assertTrue(all(len(batch) <= 3 for batch in self.function.invocations))

    def test_a_message_stays_hidden_while_its_invocation_runs_longer_than_the_retry_delay(self):
        self.function.delay_seconds = 2.5
        self.send("slow-but-fine")
        self.start_poller(retry_after=1, timeout=10)
        self.wait_until(lambda: len(self.function.invocations) == 1)
        time.sleep(1.5)  # past the retry delay, inside the invocation
        visible = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["ApproximateNumberOfMessages"])
        self.assertEqual(visible["Attributes"]["ApproximateNumberOfMessages"], "0", "still in flight")
        self.wait_until(lambda: self.count(self.queue) == 0)
        deliveries = [r for batch in self.function.invocations for r in batch]
        self.assertEqual(len(deliveries), 1)

    def test_a_failed_item_comes_back_after_the_visibility_timeout_then_goes_to_the_dead_letter_queue(self):
        self.function.failing_bodies = {"poison"}
        self.send("fine", "poison")
        self.start_poller(retry_after=1)
        self.wait_until(lambda: self.count(self.dlq) == 1)
        deliveries = [r for batch in self.function.invocations for r in batch if r["body"] == "poison"]
        self.assertEqual([r["attributes"]["ApproximateReceiveCount"] for r in deliveries], ["1", "2"])
        fine = [r for batch in self.function.invocations for r in batch if r["body"] == "fine"]
        self.assertEqual(len(fine), 1, "a successful record is deleted, not redelivered")
        self.assertEqual(self.count(self.queue), 0)

    def test_a_function_error_retries_the_whole_batch(self):
        self.function.crashes_left = 1
        self.send("a", "b")
        self.start_poller(retry_after=1)
        self.wait_until(lambda: self.count(self.queue) == 0)
        self.assertEqual(self.count(self.dlq), 0)
        bodies = sorted(r["body"] for batch in self.function.invocations for r in batch)
        self.assertEqual(bodies, ["a", "a", "b", "b"], "both records delivered again after the crash")

    def test_an_invocation_that_outlasts_the_function_timeout_fails_the_batch(self):
        self.function.hangs_left = 1
        self.send("slow")
        self.start_poller(retry_after=1)
        self.wait_until(lambda: self.count(self.queue) == 0)
        deliveries = [r for batch in self.function.invocations for r in batch]
        self.assertEqual([r["attributes"]["ApproximateReceiveCount"] for r in deliveries], ["1", "2"])
        self.assertEqual(self.count(self.dlq), 0)

    def test_an_invocation_whose_connection_drops_is_retried_after_the_retry_delay(self):
        self.function.drops_left = 1
        self.send("dropped")
        self.start_poller(retry_after=1, timeout=10)
        # Within far less than the queue's 30 s visibility timeout: the batch was given back.
        self.wait_until(lambda: self.count(self.queue) == 0, seconds=10)
        deliveries = [r for batch in self.function.invocations for r in batch]
        self.assertEqual([r["attributes"]["ApproximateReceiveCount"] for r in deliveries], ["1", "2"])


if __name__ == "__main__":
    unittest.main()
