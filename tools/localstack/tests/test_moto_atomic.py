"""The local stack's DynamoDB is atomic, as AWS's is: of two concurrent conditional writes to one item
whose condition only one can meet, exactly one is accepted, and a read never sees an item half written.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import threading
import time
import unittest

import boto3
from botocore.config import Config

from tools.localstack.loopback import start_moto
from tools.localstack.moto_atomic import AtomicDynamoDB

ROUNDS = 60


def client(endpoint):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-north-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(max_pool_connections=20, retries={"max_attempts": 1}))


def conditional_writes_race(endpoint, rounds=ROUNDS):
    """Per round, two threads write one new item with `attribute_not_exists(pk)`; returns the number of
    rounds in which both writes were accepted."""
    dynamodb = client(endpoint)
    dynamodb.create_table(TableName="race", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    both_accepted = 0
    for n in range(rounds):
        accepted = []
        start = threading.Barrier(2)

        def write(writer):
            start.wait()
            try:
                dynamodb.update_item(
                    TableName="race", Key={"pk": {"S": f"item-{n}"}},
                    UpdateExpression="SET #w = :w, #a = :a, #b = :b, #c = :c",
                    ConditionExpression="attribute_not_exists(pk)",
                    ExpressionAttributeNames={"#w": "writer", "#a": "a", "#b": "b", "#c": "c"},
                    ExpressionAttributeValues={":w": {"S": writer}, ":a": {"S": writer}, ":b": {"S": writer},
                                               ":c": {"S": writer}})
                accepted.append(writer)
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass

        threads = [threading.Thread(target=write, args=(w,)) for w in ("one", "two")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(accepted) == 2:
            both_accepted += 1
        item = dynamodb.get_item(TableName="race", Key={"pk": {"S": f"item-{n}"}}, ConsistentRead=True)["Item"]
        values = {item[name]["S"] for name in ("writer", "a", "b", "c")}
        assert len(values) == 1, f"round {n}: item mixes two writes: {item}"
    return both_accepted


class CheckThenWrite:
    """A WSGI app with moto's flaw made certain: it checks for the item, yields the GIL, then writes."""

    def __init__(self):
        self.items = {}
        self.accepted = 0

    def __call__(self, environ, start_response):
        key = environ["PATH_INFO"]
        if key not in self.items:
            time.sleep(0.01)
            self.items[key] = threading.get_ident()
            self.accepted += 1
        start_response("200 OK", [])
        return [b"{}"]


def concurrently(app, target, requests=8):
    environ = {"PATH_INFO": "/item", "HTTP_X_AMZ_TARGET": target}
    threads = [threading.Thread(target=lambda: list(app(dict(environ), lambda *_: None))) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class AtomicDynamoDBTest(unittest.TestCase):
    def test_the_middleware_lets_one_dynamodb_request_in_at_a_time(self):
        unguarded = CheckThenWrite()
        concurrently(unguarded, "DynamoDB_20120810.UpdateItem")
        self.assertGreater(unguarded.accepted, 1, "the flaw shows without the middleware")
        guarded = CheckThenWrite()
        concurrently(AtomicDynamoDB(guarded), "DynamoDB_20120810.UpdateItem")
        self.assertEqual(guarded.accepted, 1)

    def test_the_middleware_leaves_other_services_concurrent(self):
        app = CheckThenWrite()
        concurrently(AtomicDynamoDB(app), "AmazonSQS.ReceiveMessage")
        self.assertGreater(app.accepted, 1)

    def test_two_concurrent_conditional_writes_are_never_both_accepted(self):
        process, endpoint = start_moto()
        try:
            self.assertEqual(conditional_writes_race(endpoint), 0)
        finally:
            process.terminate()
            process.wait()

    def test_sqs_stays_concurrent_beside_a_long_poll(self):
        process, endpoint = start_moto()
        try:
            sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="eu-north-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
            url = sqs.create_queue(QueueName="polled")["QueueUrl"]
            poll = threading.Thread(target=lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3))
            poll.start()
            # While the long poll holds a connection, DynamoDB and SQS still answer.
            dynamodb = client(endpoint)
            dynamodb.list_tables()
            boto3.client("sqs", endpoint_url=endpoint, region_name="eu-north-1", aws_access_key_id="testing",
                         aws_secret_access_key="testing").send_message(QueueUrl=url, MessageBody="x")
            poll.join(timeout=10)
            self.assertFalse(poll.is_alive())
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    unittest.main()
