"""The local IAM refuses what a principal's policy does not allow, as AWS does, and names the action:
for each service the functions call, with the resources and the condition the template uses.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import json
import os
import tempfile
import unittest

import boto3
from botocore.exceptions import ClientError

from tools.localstack.local_iam import ACCOUNT, CannotTell, Call, decision
from tools.localstack.loopback import start_moto

REGION = "eu-north-1"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/registry"


class DecisionTest(unittest.TestCase):
    def test_an_allow_needs_action_and_resource_and_a_deny_wins(self):
        statements = [{"Effect": "Allow", "Action": ["dynamodb:Get*"], "Resource": TABLE},
                      {"Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": f"{TABLE}*",
                       "Condition": {"StringLike": {"dynamodb:LeadingKeys": ["secret#*"]}}}]
        self.assertIsNone(decision(statements, Call("dynamodb:getitem", TABLE, {"dynamodb:LeadingKeys": ["a"]})))
        self.assertIn("explicit deny", decision(statements, Call("dynamodb:GetItem", TABLE,
                                                                 {"dynamodb:LeadingKeys": ["secret#1"]})))
        self.assertIn("no identity-based policy allows the dynamodb:PutItem action",
                      decision(statements, Call("dynamodb:PutItem", TABLE)))
        self.assertIsNotNone(decision(statements, Call("dynamodb:GetItem", f"{TABLE}/index/byType")))

    def test_leading_keys_are_a_set_as_iam_takes_them(self):
        only_company = [{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": TABLE,
                         "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["company"]}}}]
        self.assertIsNone(decision(only_company, Call("dynamodb:Query", TABLE, {"dynamodb:LeadingKeys": ["company"]})))
        self.assertIsNotNone(decision(only_company, Call("dynamodb:Query", TABLE, {"dynamodb:LeadingKeys": ["run"]})))
        any_marker = [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE,
                       "Condition": {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": "marker#*"}}}]
        self.assertIsNone(decision(any_marker, Call("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": ["marker#7"]})))
        self.assertIsNotNone(decision(any_marker, Call("dynamodb:PutItem", TABLE)))

    def test_what_it_cannot_evaluate_is_refused_by_name_never_guessed(self):
        statements = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                       "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}}]
        with self.assertRaisesRegex(CannotTell, "IpAddress"):
            decision(statements, Call("s3:GetObject", "arn:aws:s3:::bucket/key"))


class EnforcedTest(unittest.TestCase):
    """A moto server with the local IAM in front, a principal `role-test` given one policy."""

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory()
        cls.policies = os.path.join(cls.folder.name, "iam.json")
        cls.denials = os.path.join(cls.folder.name, "denied.jsonl")
        cls.process, cls.endpoint = start_moto("--iam", cls.policies, "--iam-denials", cls.denials)
        admin = cls.client_as("local")
        admin["dynamodb"].create_table(
            TableName="registry", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}])
        cls.queue = admin["sqs"].create_queue(QueueName="work")["QueueUrl"]
        cls.other_queue = admin["sqs"].create_queue(QueueName="other")["QueueUrl"]
        admin["s3"].create_bucket(Bucket="payloads", CreateBucketConfiguration={"LocationConstraint": REGION})
        cls.secret_arn = admin["secretsmanager"].create_secret(Name="tokens", SecretString="{}")["ARN"]
        admin["secretsmanager"].create_secret(Name="others", SecretString="{}")
        statements = [
            {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": TABLE,
             "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["company"]}}},
            {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"], "Resource": TABLE},
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:work"},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::payloads/messages/*"},
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": cls.secret_arn},
        ]
        with open(cls.policies, "w", encoding="utf-8") as handle:
            json.dump({"principals": {"role-test": {"name": "test", "role": "TestRole", "statements": statements}}},
                      handle)
        cls.as_role = cls.client_as("role-test")

    @classmethod
    def tearDownClass(cls):
        cls.process.terminate()
        cls.process.wait()
        cls.folder.cleanup()

    @classmethod
    def client_as(cls, key):
        return {service: boto3.client(service, endpoint_url=cls.endpoint, region_name=REGION,
                                      aws_access_key_id=key, aws_secret_access_key="local")
                for service in ("dynamodb", "sqs", "s3", "secretsmanager")}

    def assert_denied(self, call, action, resource):
        with self.assertRaises(ClientError) as raised:
            call()
        error = raised.exception.response["Error"]
        self.assertIn("AccessDenied", error["Code"])
        self.assertIn(f"not authorized to perform: {action} on resource: {resource}", error["Message"])
        with open(self.denials, encoding="utf-8") as handle:
            last = json.loads(handle.read().splitlines()[-1])
        self.assertEqual((last["principal"], last["action"], last["resource"]), ("test", action, resource))

    def test_dynamodb_by_table_action_and_leading_key(self):
        dynamodb = self.as_role["dynamodb"]
        dynamodb.put_item(TableName="registry", Item={"pk": {"S": "company"}, "sk": {"S": "301"}})
        found = dynamodb.query(TableName="registry", KeyConditionExpression="#pk = :pk",
                               ExpressionAttributeNames={"#pk": "pk"},
                               ExpressionAttributeValues={":pk": {"S": "company"}})
        self.assertEqual(found["Count"], 1)
        self.assert_denied(lambda: dynamodb.query(TableName="registry", KeyConditionExpression="pk = :pk",
                                                  ExpressionAttributeValues={":pk": {"S": "run"}}),
                           "dynamodb:Query", TABLE)
        self.assert_denied(lambda: dynamodb.delete_item(TableName="registry",
                                                        Key={"pk": {"S": "company"}, "sk": {"S": "301"}}),
                           "dynamodb:DeleteItem", TABLE)
        self.assert_denied(lambda: dynamodb.scan(TableName="registry"), "dynamodb:Scan", TABLE)

    def test_sqs_by_queue(self):
        sqs = self.as_role["sqs"]
        sqs.send_message(QueueUrl=self.queue, MessageBody="{}")
        self.assert_denied(lambda: sqs.send_message(QueueUrl=self.other_queue, MessageBody="{}"),
                           "sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:other")
        self.assert_denied(lambda: sqs.receive_message(QueueUrl=self.queue),
                           "sqs:ReceiveMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:work")

    def test_s3_by_key_prefix_and_action(self):
        s3 = self.as_role["s3"]
        s3.put_object(Bucket="payloads", Key="messages/1", Body=b"x")
        self.assert_denied(lambda: s3.put_object(Bucket="payloads", Key="values/1", Body=b"x"),
                           "s3:PutObject", "arn:aws:s3:::payloads/values/1")
        self.assert_denied(lambda: s3.get_object(Bucket="payloads", Key="messages/1"),
                           "s3:GetObject", "arn:aws:s3:::payloads/messages/1")

    def test_secrets_by_name_resolved_to_their_arn(self):
        secrets = self.as_role["secretsmanager"]
        self.assertEqual(secrets.get_secret_value(SecretId="tokens")["SecretString"], "{}")
        other = self.client_as("local")["secretsmanager"].describe_secret(SecretId="others")["ARN"]
        self.assert_denied(lambda: secrets.get_secret_value(SecretId="others"), "secretsmanager:GetSecretValue", other)

    def test_keys_it_does_not_know_are_the_stacks_own_and_pass(self):
        self.client_as("local")["dynamodb"].scan(TableName="registry")


if __name__ == "__main__":
    unittest.main()
