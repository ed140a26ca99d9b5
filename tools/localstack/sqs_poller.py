"""Local stand-in for Lambda's SQS event source mapping (moto cannot run Lambda code without Docker), and
for a table stream's (tools/localstack/stream_poller.py).

For each mapping the template declares (read from the local stack summary), it behaves as Lambda does:
- gathers up to BatchSize messages, waiting at most MaximumBatchingWindowInSeconds after the first;
- invokes the function (under `cargo lambda watch`) with an SQS event shaped like Lambda's;
- with ReportBatchItemFailures, deletes every message but the reported ones; a function error (or a
  report naming an unknown or empty id) deletes nothing;
- receives with the queue's own visibility timeout, so a message stays hidden while its invocation runs;
- leaves failed messages in flight: they come back after the visibility timeout, and moto moves them to
  the dead-letter queue once their receive count passes maxReceiveCount;
- an invocation that outlasts the function's timeout fails the batch, as Lambda's timeout does.

Usage: python3 -m tools.localstack.sqs_poller --stack .local/stack.json --lambda-url http://127.0.0.1:9000
       [--retry-after SECONDS] [--received-log PATH] [--as-function-roles] [--pollers N]
--received-log PATH appends a JSON line for each message at its first receipt (function, id, source
and tenant attributes, how long it had waited in the queue), for the load run's accounting and queue ages.
--retry-after compresses time for local runs: a failed message comes back after SECONDS instead of the
queue's whole visibility timeout (set on the failed ones only, after their invocation ended; a message
in flight is never exposed early).
Needs AWS_ENDPOINT_URL and the local credentials in the environment.
"""

import argparse
import hashlib
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.request

import boto3

from tools.localstack.loopback import endpoint_for
from tools.localstack.stream_poller import PipeMapping, StreamMapping

REGION = os.environ.get("AWS_REGION", "eu-north-1")


def log(text):
    print(f"[poller] {text}", flush=True)


def lambda_record(message, queue_arn):
    """An SQS message as Lambda hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class ReceivedLog:
    """One line per message at its first receipt; shared by the mappings' threads."""

    def __init__(self, path):
        self.handle = open(path, "a", encoding="utf-8", buffering=1) if path else None
        self.lock = threading.Lock()

    def first_receipts(self, function, messages):
        if self.handle is None:
            return
        now = time.time()
        with self.lock:
            for message in messages:
                attributes = message.get("Attributes", {})
                if attributes.get("ApproximateReceiveCount") != "1":
                    continue
                message_attributes = message.get("MessageAttributes", {})
                source = message_attributes.get("source", {}).get("StringValue")
                tenant = message_attributes.get("tenant", {}).get("StringValue")
                waited = now - int(attributes.get("SentTimestamp", now * 1000)) / 1000
                self.handle.write(json.dumps({"function": function, "messageId": message["MessageId"],
                                              "source": source, "tenant": tenant, "receivedAt": round(now, 3),
                                              "waitedSeconds": round(max(0.0, waited), 3)}) + "\n")


class Mapping:
    def __init__(self, source, sqs, lambda_url, retry_after, stop, received=None):
        self.function = source["function"]
        self.queue_url = source["queue_url"]
        self.batch_size = source["batch_size"]
        self.window = source["batching_window_seconds"]
        self.report_failures = source["report_batch_item_failures"]
        self.timeout = source.get("timeout_seconds", 900)
        self.sqs = sqs
        self.invoke_url = f"{lambda_url.rstrip('/')}/2015-03-31/functions/{self.function}/invocations"
        self.retry_after = retry_after
        self.stop = stop
        self.received = received or ReceivedLog(None)
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def gather(self):
        batch, deadline = [], None
        while len(batch) < self.batch_size and not self.stop.is_set():
            wait = 1 if deadline is None else max(0, min(1, deadline - time.monotonic()))
            request = {
                "QueueUrl": self.queue_url,
                "MaxNumberOfMessages": min(10, self.batch_size - len(batch)),
                "WaitTimeSeconds": int(wait),
                "AttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
            }
            messages = self.sqs.receive_message(**request).get("Messages", [])
            self.received.first_receipts(self.function, messages)
            if messages and deadline is None:
                deadline = time.monotonic() + self.window
            batch += messages
            if batch and time.monotonic() >= deadline:
                break
        return batch

    def invoke(self, batch):
        """Returns the ids to keep (retry); every id when the invocation itself failed."""
        ids = {m["MessageId"] for m in batch}
        event = {"Records": [lambda_record(m, self.queue_arn) for m in batch]}
        request = urllib.request.Request(self.invoke_url, data=json.dumps(event).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                failed_function = response.headers.get("X-Amz-Function-Error")
                payload = json.load(response)
        except (OSError, http.client.HTTPException, ValueError) as error:
            # Any way the call can fail (refused, reset, dropped without an answer, timed out, not
            # JSON) is a failed invocation: the batch comes back, as after a Lambda crash.
            log(f"{self.function}: invocation failed ({type(error).__name__}: {error}); the whole batch will be retried")
            return ids
        if failed_function or not isinstance(payload, dict):
            log(f"{self.function}: function error {payload}; the whole batch will be retried")
            return ids
        if not self.report_failures:
            return set()
        reported = {f.get("itemIdentifier") for f in payload.get("batchItemFailures", [])}
        if any(not identifier or identifier not in ids for identifier in reported):
            return ids  # as Lambda: an empty or unknown identifier fails the whole batch
        return reported

    def hide_for(self, seconds, messages):
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": seconds}
                for i, m in enumerate(messages[start:start + 10])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)

    def run(self):
        log(f"{self.function} <- {self.queue_url} (batch {self.batch_size}, window {self.window}s)")
        while not self.stop.is_set():
            try:
                batch = self.gather()
                if not batch:
                    continue
                keep = self.invoke(batch)
                done = [m for m in batch if m["MessageId"] not in keep]
                for start in range(0, len(done), 10):
                    entries = [
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start:start + 10])
                    ]
                    self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
                if self.retry_after is not None:
                    self.hide_for(self.retry_after, [m for m in batch if m["MessageId"] in keep])
                log(f"{self.function}: batch of {len(batch)}, {len(keep)} to retry")
            except Exception as error:  # noqa: BLE001 - a poller must outlive a passing fault
                log(f"{self.function}: {type(error).__name__}: {error}")
                self.stop.wait(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True)
    parser.add_argument("--lambda-url", required=True)
    parser.add_argument("--retry-after", type=int)
    parser.add_argument("--received-log")
    parser.add_argument("--pollers", type=int, default=1,
                        help="pollers per queue mapping, at most its MaximumConcurrency (Lambda starts five)")
    parser.add_argument("--as-function-roles", action="store_true",
                        help="poll each function's queue or stream with its role's local key (role-<function>)")
    args = parser.parse_args()
    received = ReceivedLog(args.received_log)

    with open(args.stack, encoding="utf-8") as handle:
        summary = json.load(handle)
    sources = summary["event_sources"]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def client(service, function=None):
        # Lambda polls a function's queue or stream with the function's role: so does this, with the
        # role's local key when the local IAM enforces the template's policies.
        keys = {"aws_access_key_id": f"role-{function}", "aws_secret_access_key": "local"} \
            if function and args.as_function_roles else {}
        return boto3.client(service, endpoint_url=endpoint_for(service), region_name=REGION, **keys)

    threads = []
    for s in sources:
        if "stream_arn" in s:
            mapping = StreamMapping(s, client("dynamodbstreams", s["function"]), client("sqs", s["function"]),
                                    args.lambda_url, stop)
            threads.append(threading.Thread(target=mapping.run, daemon=True))
            continue
        mapping = Mapping(s, client("sqs", s["function"]), args.lambda_url, args.retry_after, stop, received)
        # Lambda polls a queue with several pollers at once, each with its own batch, up to the
        # mapping's MaximumConcurrency: a message need not wait for the batch before it to end.
        pollers = max(1, min(args.pollers, s.get("maximum_concurrency") or args.pollers))
        threads += [threading.Thread(target=mapping.run, daemon=True) for _ in range(pollers)]
    streams = client("dynamodbstreams")
    events = client("events")
    threads += [threading.Thread(target=PipeMapping(pipe, streams, events, stop).run, daemon=True)
                for pipe in summary.get("pipes", [])]
    for thread in threads:
        thread.start()
    # Sleep, not stop.wait(): the signal handler sets `stop`, and would deadlock on the event's lock
    # if it interrupted this thread inside wait().
    while not stop.is_set():
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
