"""Local stand-in for Lambda's DynamoDB stream event source mapping (started by tools.localstack.sqs_poller).

As Lambda does for a table's stream (moto serves DynamoDB Streams):
- reads each shard in order from its oldest record (TRIM_HORIZON), up to BatchSize records a batch,
  waiting MaximumBatchingWindowInSeconds when there is nothing;
- invokes the function with a stream event shaped like Lambda's;
- with ReportBatchItemFailures, retries from the record the answer names (its SequenceNumber); a
  function error retries the whole batch;
- skips moto's extra record of a bare key before an UpdateItem's first image (DynamoDB has none);
- after MaximumRetryAttempts failed tries of a batch, sends a record of it to the on-failure
  destination (an SQS queue) and goes on past it.
"""

import datetime
import http.client
import json
import urllib.request


def log(text):
    print(f"[stream] {text}", flush=True)


def lambda_record(record, stream_arn):
    """A record as boto3 returns it, made JSON as Lambda delivers it."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime.datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {"eventID": record["eventID"], "eventName": record["eventName"], "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": record.get("awsRegion", "eu-north-1"),
            "dynamodb": change, "eventSourceARN": stream_arn}


class StreamMapping:
    def __init__(self, source, streams, sqs, lambda_url, stop):
        self.function = source["function"]
        self.stream_arn = source["stream_arn"]
        self.batch_size = source["batch_size"]
        self.window = max(1, source["batching_window_seconds"])
        self.retries = source.get("maximum_retry_attempts", -1)
        self.on_failure = source.get("on_failure_queue_url")
        self.report_failures = source["report_batch_item_failures"]
        self.timeout = source.get("timeout_seconds", 60)
        self.streams, self.sqs, self.stop = streams, sqs, stop
        self.invoke_url = f"{lambda_url.rstrip('/')}/2015-03-31/functions/{self.function}/invocations"

    def invoke(self, records):
        """The sequence number to retry from, or None when the batch is done."""
        event = {"Records": [lambda_record(r, self.stream_arn) for r in records]}
        request = urllib.request.Request(self.invoke_url, data=json.dumps(event).encode(), method="POST")
        first = records[0]["dynamodb"]["SequenceNumber"]
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                failed = response.headers.get("X-Amz-Function-Error")
                payload = json.load(response)
        except (OSError, http.client.HTTPException, ValueError) as error:
            log(f"{self.function}: invocation failed ({type(error).__name__}: {error})")
            return first
        if failed or not isinstance(payload, dict):
            log(f"{self.function}: function error {payload}")
            return first
        reported = [f.get("itemIdentifier") for f in payload.get("batchItemFailures", [])] if self.report_failures else []
        known = [r["dynamodb"]["SequenceNumber"] for r in records]
        if any(identifier not in known for identifier in reported):
            return first
        return min(reported, key=known.index) if reported else None

    def shard(self, shard_id):
        iterator = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id,
                                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        pending, tries = [], 0
        while not self.stop.is_set() and iterator:
            if not pending:
                page = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
                iterator = page.get("NextShardIterator")
                # moto records an UpdateItem that makes an item as two INSERTs, the first of the bare
                # key; DynamoDB records one, with the whole image. The bare one is not passed on.
                pending = [r for r in page.get("Records", [])
                           if r["dynamodb"].get("NewImage") != r["dynamodb"].get("Keys")]
                if not pending:
                    self.stop.wait(self.window)
                    continue
            retry_from = self.invoke(pending)
            if retry_from is None:
                log(f"{self.function}: batch of {len(pending)} applied")
                pending, tries = [], 0
                continue
            tries += 1
            at = next(i for i, r in enumerate(pending) if r["dynamodb"]["SequenceNumber"] == retry_from)
            pending = pending[at:]
            if 0 <= self.retries < tries:
                log(f"{self.function}: {len(pending)} records failed {tries} times; to the on-failure destination")
                if self.on_failure:
                    self.sqs.send_message(QueueUrl=self.on_failure, MessageBody=json.dumps({
                        "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": self.function},
                        "DDBStreamBatchInfo": {"streamArn": self.stream_arn,
                                               "startSequenceNumber": pending[0]["dynamodb"]["SequenceNumber"],
                                               "endSequenceNumber": pending[-1]["dynamodb"]["SequenceNumber"],
                                               "batchSize": len(pending)}}))
                pending, tries = [], 0
            else:
                self.stop.wait(1)

    def run(self):
        log(f"{self.function} <- {self.stream_arn} (batch {self.batch_size})")
        while not self.stop.is_set():
            try:
                shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
                # moto keeps one open shard per table; each is read to its end in order.
                for shard in shards:
                    self.shard(shard["ShardId"])
            except Exception as error:  # noqa: BLE001 - a poller must outlive a passing fault
                log(f"{self.function}: {type(error).__name__}: {error}")
                self.stop.wait(1)


class PipeMapping(StreamMapping):
    """Local stand-in for an EventBridge Pipe from a table's stream to an event bus: each record put
    on the bus as the pipe does (its detail the stream record, with the pipe's source and detail
    type), in order, a batch retried from its first record the bus did not take."""

    def __init__(self, pipe, streams, events, stop):
        self.function = f"pipe {pipe['pipe']}"
        self.stream_arn = pipe["stream_arn"]
        self.batch_size = min(pipe["batch_size"], 10)  # PutEvents takes 10 entries at most
        self.window = 1
        self.retries = -1
        self.on_failure = None
        self.report_failures = True
        self.streams, self.events, self.stop = streams, events, stop
        self.bus, self.source, self.detail_type = pipe["event_bus_arn"], pipe["source"], pipe["detail_type"]

    def invoke(self, records):
        entries = [{"EventBusName": self.bus, "Source": self.source, "DetailType": self.detail_type,
                    "Detail": json.dumps(lambda_record(record, self.stream_arn))} for record in records]
        try:
            answer = self.events.put_events(Entries=entries)
        except Exception as error:  # noqa: BLE001 - a pipe retries what the bus did not take
            log(f"{self.function}: PutEvents failed ({type(error).__name__}: {error})")
            return records[0]["dynamodb"]["SequenceNumber"]
        failed = [at for at, entry in enumerate(answer.get("Entries", [])) if entry.get("ErrorCode")]
        return records[failed[0]]["dynamodb"]["SequenceNumber"] if failed else None
