"""The local stack is the template's own: every queue, table and secret the translated template declares
exists in moto with the declared properties (redrive, keys, stream, protection), and each function's
environment and event source point at those very resources.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import json
import os
import re
import unittest

import boto3

from tools.localstack.local_stack import OPERATOR_KEY, LocalStack, without
from tools.localstack.sam_translate import translate
from tools.localstack.loopback import ROOT, start_moto

RECEIVER_URL = "http://127.0.0.1:9000/lambda-url/webhook-receiver/"


class LocalStackMatchesTemplate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moto, endpoint = start_moto()
        client = lambda service: boto3.client(  # noqa: E731
            service, endpoint_url=endpoint, region_name="eu-north-1",
            aws_access_key_id="local", aws_secret_access_key="local")
        cls.sqs, cls.dynamodb, cls.secrets = client("sqs"), client("dynamodb"), client("secretsmanager")

        cls.template = translate(os.path.join(ROOT, "infra/template.yaml"))
        with open(os.path.join(ROOT, "infra/local/receiver-auth.json"), encoding="utf-8") as handle:
            auth = handle.read()
        cls.stack = LocalStack(cls.template, endpoint, "local", {"ReceiverAuthSecret": auth},
                               {"TripletexApiBaseUrl": "http://127.0.0.1:8700/v2"},
                               {"WebhookReceiver": RECEIVER_URL})
        cls.stack.create_all()

    @classmethod
    def tearDownClass(cls):
        cls.moto.terminate()
        cls.moto.wait(10)

    def declared(self, resource_type):
        return {logical_id: resource.get("Properties", {})
                for logical_id, resource in self.stack.resources(resource_type)}

    def test_the_postgres_mirror_is_in_the_stack_only_when_enabled_and_reads_the_tables_stream(self):
        self.assertNotIn("postgres-mirror", self.stack.function_environments())
        self.assertNotIn("PostgresMirrorFailureQueue", self.stack.created)
        stack = LocalStack(self.template, self.stack.s3.meta.endpoint_url, "mirror", {"ReceiverAuthSecret": "{}"},
                           {"TripletexApiBaseUrl": "http://127.0.0.1:8700/v2", "EnablePostgresMirror": "true",
                            "MirrorDatabaseSecretName": "mirror-db"},
                           {"WebhookReceiver": RECEIVER_URL})
        stack.create_all()
        environment = stack.function_environments()["postgres-mirror"]
        self.assertEqual(environment["PAYLOAD_BUCKET"], stack.created["PayloadBucket"]["name"])
        stream, = [s for s in stack.event_sources() if s["function"] == "postgres-mirror"]
        self.assertEqual(stream["stream_arn"], stack.attrs[("ObjectsTable", "StreamArn")])
        self.assertEqual(stream["on_failure_queue_url"], stack.created["PostgresMirrorFailureQueue"]["url"])
        self.assertTrue(stream["report_batch_item_failures"])
        self.assertEqual((stream["batch_size"], stream["maximum_retry_attempts"]), (100, 10))

    def test_each_function_is_its_role_and_the_command_line_the_operator_policy_resolved_to_this_stack(self):
        principals = self.stack.principals()
        self.assertEqual(sorted(principals), sorted([OPERATOR_KEY] + [f"role-{name}" for name in
                                                                      self.stack.function_environments()]))
        worker = principals["role-webhook-worker"]
        self.assertEqual(worker["role"], "WebhookWorkerRole")
        objects_table = self.stack.created["ObjectsTable"]["arn"]
        self.assertIn({"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": objects_table},
                      worker["statements"])
        # Nothing is left unresolved: every resource is an ARN of this stack (or "*" where AWS has none).
        for principal in principals.values():
            for statement in principal["statements"]:
                for resource in statement["Resource"] if isinstance(statement["Resource"], list) \
                        else [statement["Resource"]]:
                    self.assertTrue(resource == "*" or resource.startswith("arn:aws:"), resource)
        operator = principals[OPERATOR_KEY]
        self.assertEqual(operator["policy"], "OperatorPolicy")
        self.assertTrue(any("dynamodb:Scan" in s["Action"] and objects_table in s["Resource"]
                            for s in operator["statements"]))

    def test_a_grant_can_be_taken_away_and_one_that_is_not_there_is_an_error(self):
        principals = without(self.stack.principals(), ["webhook-worker:dynamodb:UpdateItem"])
        granted = [s for s in principals["role-webhook-worker"]["statements"] if "dynamodb:UpdateItem" in s["Action"]]
        self.assertEqual(granted, [])
        self.assertTrue(any("dynamodb:UpdateItem" in s["Action"] for s in principals["role-object-sync"]["statements"]))
        with self.assertRaisesRegex(SystemExit, "does not grant dynamodb:Scan"):
            without(self.stack.principals(), ["webhook-receiver:dynamodb:Scan"])
        with self.assertRaisesRegex(SystemExit, "give a function"):
            without(self.stack.principals(), ["webhook-recever:dynamodb:Query"])

    def test_the_payload_bucket_exists_with_its_expiry_and_every_function_that_needs_it_names_it(self):
        s3 = boto3.client("s3", endpoint_url=self.stack.s3.meta.endpoint_url, region_name="eu-north-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        bucket = self.stack.created["PayloadBucket"]["name"]
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        self.assertEqual([(r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in rules], [("messages/", 15)])
        environments = self.stack.function_environments()
        for function in ("webhook-receiver", "webhook-worker", "object-sync"):
            self.assertEqual(environments[function]["PAYLOAD_BUCKET"], bucket, function)

    def test_every_declared_queue_exists_with_its_retention_visibility_encryption_and_redrive(self):
        queues = self.declared("AWS::SQS::Queue")
        self.assertEqual(set(queues), {"WebhookQueue", "WebhookDeadLetterQueue", "QuarantineQueue", "SyncObjectsQueue",
                                       "KeeperScheduleDeadLetterQueue", "SyncQueue", "SyncDeadLetterQueue",
                                       "SyncScheduleDeadLetterQueue"})
        for logical_id, properties in queues.items():
            created = self.stack.created[logical_id]
            attributes = self.sqs.get_queue_attributes(QueueUrl=created["url"], AttributeNames=["All"])["Attributes"]
            self.assertEqual(attributes["MessageRetentionPeriod"], str(properties["MessageRetentionPeriod"]))
            self.assertEqual(attributes.get("SqsManagedSseEnabled"), "true", logical_id)
            if "RedrivePolicy" in properties:
                redrive = json.loads(attributes["RedrivePolicy"])
                target = properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                self.assertEqual(redrive["deadLetterTargetArn"], self.stack.created[target]["arn"])
                self.assertEqual(redrive["maxReceiveCount"], int(self.stack.resolve(properties["RedrivePolicy"]["maxReceiveCount"])))
        webhook = self.sqs.get_queue_attributes(QueueUrl=self.stack.created["WebhookQueue"]["url"],
                                                AttributeNames=["VisibilityTimeout"])["Attributes"]
        worker_timeout = int(self.stack.parameters["WorkerTimeoutSeconds"])
        self.assertGreaterEqual(int(webhook["VisibilityTimeout"]), 6 * worker_timeout)
        # The sync's queue and its DLQ are FIFO (one company's tasks in order), named as CloudFormation does.
        for logical_id in ("SyncQueue", "SyncDeadLetterQueue"):
            created = self.stack.created[logical_id]
            attributes = self.sqs.get_queue_attributes(QueueUrl=created["url"], AttributeNames=["All"])["Attributes"]
            self.assertEqual(attributes.get("FifoQueue"), "true", logical_id)
            self.assertTrue(created["name"].endswith(".fifo"), created["name"])
        sync = self.sqs.get_queue_attributes(QueueUrl=self.stack.created["SyncQueue"]["url"],
                                             AttributeNames=["VisibilityTimeout"])["Attributes"]
        self.assertGreaterEqual(int(sync["VisibilityTimeout"]), 6 * int(self.stack.parameters["SyncTimeoutSeconds"]))

    def test_every_declared_table_exists_with_its_keys_billing_stream_and_protection(self):
        tables = self.declared("AWS::DynamoDB::Table")
        self.assertEqual(set(tables), {"ObjectsTable", "ResyncTable", "SyncTable"})
        for logical_id, properties in tables.items():
            table = self.dynamodb.describe_table(TableName=self.stack.created[logical_id]["name"])["Table"]
            self.assertEqual(table["KeySchema"], properties["KeySchema"], logical_id)
            self.assertEqual(sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
                             sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]))
            self.assertEqual(table["BillingModeSummary"]["BillingMode"], properties["BillingMode"])
            backups = self.dynamodb.describe_continuous_backups(TableName=table["TableName"])
            self.assertEqual(backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
                             ["PointInTimeRecoveryStatus"], "ENABLED")
        objects = self.dynamodb.describe_table(TableName=self.stack.created["ObjectsTable"]["name"])["Table"]
        self.assertEqual(objects["StreamSpecification"], {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        self.assertTrue(objects["DeletionProtectionEnabled"])
        (index,) = objects["GlobalSecondaryIndexes"]
        self.assertEqual(index["IndexName"], "byType")
        self.assertEqual([k["AttributeName"] for k in index["KeySchema"]], ["typeKey", "objectId"])
        ttl = self.dynamodb.describe_time_to_live(TableName=self.stack.created["SyncTable"]["name"])
        self.assertEqual(ttl["TimeToLiveDescription"]["AttributeName"], "expiresAt")

    def test_every_declared_secret_exists_and_the_given_one_holds_the_given_value(self):
        secrets = self.declared("AWS::SecretsManager::Secret")
        self.assertEqual(set(secrets), {"ReceiverAuthSecret", "TripletexCredentialsSecret"})
        auth = self.secrets.get_secret_value(SecretId=self.stack.created["ReceiverAuthSecret"]["arn"])
        self.assertIn("local-dev-header-token", auth["SecretString"])
        credentials = self.secrets.get_secret_value(SecretId=self.stack.created["TripletexCredentialsSecret"]["arn"])
        self.assertEqual(json.loads(credentials["SecretString"]), {"companies": {}}, "the template's placeholder")

    def test_each_function_environment_names_the_local_resources(self):
        environments = self.stack.function_environments()
        created = self.stack.created
        self.assertEqual(set(environments), {"webhook-receiver", "webhook-worker", "subscription-keeper", "object-sync"})
        self.assertEqual(environments["webhook-receiver"]["QUEUE_URL"], created["WebhookQueue"]["url"])
        self.assertEqual(environments["webhook-receiver"]["QUARANTINE_QUEUE_URL"], created["QuarantineQueue"]["url"])
        self.assertEqual(environments["webhook-receiver"]["RECEIVER_AUTH_SECRET_ARN"], created["ReceiverAuthSecret"]["arn"])
        self.assertEqual(environments["webhook-worker"]["TABLE_NAME"], created["ObjectsTable"]["name"])
        keeper = environments["subscription-keeper"]
        self.assertEqual(keeper["RESYNC_TABLE_NAME"], created["ResyncTable"]["name"])
        self.assertEqual(keeper["TRIPLETEX_CREDENTIALS_SECRET_ARN"], created["TripletexCredentialsSecret"]["arn"])
        self.assertEqual(keeper["RECEIVER_URL"], RECEIVER_URL)
        self.assertEqual(keeper["TRIPLETEX_API_BASE_URL"], "http://127.0.0.1:8700/v2", "a parameter override")
        sync = environments["object-sync"]
        self.assertEqual(sync["SYNC_OBJECTS_QUEUE_URL"], created["SyncObjectsQueue"]["url"],
                         "a queue of its own, which the worker reads beside the webhooks'")
        self.assertEqual(sync["SYNC_QUEUE_URL"], created["SyncQueue"]["url"])
        self.assertEqual(sync["OBJECTS_TABLE_NAME"], created["ObjectsTable"]["name"])
        self.assertEqual(sync["SYNC_TABLE_NAME"], created["SyncTable"]["name"])
        self.assertEqual(sync["RESYNC_TABLE_NAME"], keeper["RESYNC_TABLE_NAME"], "the keeper's requests")
        self.assertEqual(sync["SYNC_EVENTS"], keeper["KEEPER_EVENTS"], "the subscribed types")

    def test_the_queue_mappings_and_the_schedules_are_the_declared_ones(self):
        queue_of_arn = {created["arn"]: logical_id for logical_id, created in self.stack.created.items()
                        if created["type"] == "queue"}
        mappings = {(resource["Properties"]["FunctionName"]["Ref"],
                     queue_of_arn[self.stack.resolve(resource["Properties"]["EventSourceArn"])]): resource["Properties"]
                    for _, resource in self.stack.resources("AWS::Lambda::EventSourceMapping")}
        self.assertEqual(set(mappings), {("WebhookWorker", "WebhookQueue"), ("WebhookWorker", "SyncObjectsQueue"),
                                         ("ObjectSync", "SyncQueue")})
        sources = {(source["function"], source["queue_url"]): source for source in self.stack.event_sources()}
        for logical_id, function, queue in (("WebhookWorker", "webhook-worker", "WebhookQueue"),
                                            ("WebhookWorker", "webhook-worker", "SyncObjectsQueue"),
                                            ("ObjectSync", "object-sync", "SyncQueue")):
            declared = mappings[(logical_id, queue)]
            source = sources[(function, self.stack.created[queue]["url"])]
            self.assertEqual(source["queue_url"], self.stack.created[queue]["url"])
            self.assertEqual(source["batch_size"], int(self.stack.resolve(declared["BatchSize"])))
            self.assertEqual(declared["FunctionResponseTypes"], ["ReportBatchItemFailures"])
            self.assertTrue(source["report_batch_item_failures"])
            properties = self.template["Resources"][logical_id]["Properties"]
            self.assertEqual(source["timeout_seconds"], int(self.stack.resolve(properties["Timeout"])))
        worker = sources[("webhook-worker", self.stack.created["WebhookQueue"]["url"])]
        self.assertEqual(worker["batching_window_seconds"],
                         int(self.stack.resolve(mappings[("WebhookWorker", "WebhookQueue")]
                                                ["MaximumBatchingWindowInSeconds"])))
        sync = sources[("object-sync", self.stack.created["SyncQueue"]["url"])]
        self.assertEqual(sync["batch_size"], 1, "one task, one step, per invocation")
        schedules = {schedule["name"]: schedule for schedule in self.stack.schedules()}
        expected = {"subscription-keeper": ("rate(15 minutes)", "events/subscription-keeper/scheduler-tick.json"),
                    "object-sync/reconcile": ("cron(0 2 * * ? *)", "events/object-sync/scheduler-nightly.json"),
                    "object-sync/pending": ("rate(5 minutes)", "events/object-sync/scheduler-pending.json")}
        seen = {}
        for schedule in schedules.values():
            given = json.loads(schedule["input"])
            name = schedule["function"] + (f"/{given['mode']}" if "mode" in given else "")
            seen[name] = schedule
            expression, sample = expected[name]
            self.assertEqual(schedule["expression"], expression, name)
            self.assertEqual(given["trigger"], "schedule")
            with open(os.path.join(ROOT, sample), encoding="utf-8") as handle:
                fixture = json.load(handle)
            self.assertEqual(set(fixture), set(given), f"{sample} has the shape the schedule sends")
            self.assertEqual(fixture.get("mode"), given.get("mode"), sample)
        self.assertEqual(set(seen), set(expected))

    def test_the_dashboard_shows_this_stack_s_resources_and_the_metrics_the_functions_emit(self):
        body = self.template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
        for logical_id in ("WebhookReceiver", "WebhookWorker", "SubscriptionKeeper", "ObjectSync"):
            self.assertIn("${%s}" % logical_id, body)
        for queue in ("WebhookQueue", "WebhookDeadLetterQueue", "QuarantineQueue", "SyncDeadLetterQueue",
                      "KeeperScheduleDeadLetterQueue", "SyncScheduleDeadLetterQueue"):
            self.assertIn("${%s.QueueName}" % queue, body)
        widgets = json.loads(re.sub(r"\$\{[^}]+\}", "1", body))["widgets"]  # a bare one is a number
        emitted = set()
        for folder in ("functions", "shared/domain/src"):
            for directory, _, files in os.walk(os.path.join(ROOT, folder)):
                for name in files:
                    if name.endswith(".rs"):
                        with open(os.path.join(directory, name), encoding="utf-8") as handle:
                            emitted |= set(re.findall(r'"([A-Z][A-Za-z]+)"', handle.read()))
        # Rows of a widget on our namespace: one names it, the others repeat it as "." (or "..." for
        # the row above with other options); an expression row names no metric.
        ours = [row[1] for widget in widgets for row in widget["properties"]["metrics"]
                if any(r[0] == "TripletexWebhooks" for r in widget["properties"]["metrics"])
                and row[0] in ("TripletexWebhooks", ".") and len(row) > 1]
        self.assertGreaterEqual(len(ours), 19)
        for name in ours:
            self.assertIn(name, emitted, f"{name} is shown but no function emits it")


if __name__ == "__main__":
    unittest.main()


class PublishingMetadata(unittest.TestCase):
    """What the Serverless Application Repository reads from the template."""

    def test_the_application_is_described_at_the_crates_version_with_files_that_exist(self):
        application = translate(os.path.join(ROOT, "infra/template.yaml"))["Metadata"][
            "AWS::ServerlessRepo::Application"]
        with open(os.path.join(ROOT, "cli/Cargo.toml"), encoding="utf-8") as handle:
            version = re.search(r'^version = "([^"]+)"', handle.read(), re.MULTILINE).group(1)
        self.assertEqual(application["SemanticVersion"], version)
        for field in ("Name", "Description", "Author", "SpdxLicenseId"):
            self.assertTrue(application.get(field), field)
        for field in ("LicenseUrl", "ReadmeUrl"):
            self.assertTrue(os.path.isfile(os.path.join(ROOT, "infra", application[field])), field)
        with open(os.path.join(ROOT, "Cargo.toml"), encoding="utf-8") as handle:
            self.assertIn(application["SpdxLicenseId"], re.search(r'^license = "([^"]+)"', handle.read(),
                                                                  re.MULTILINE).group(1))
