"""No function is granted what SAM's event sources would give it on the whole account: the queues
and the table's stream are read through mappings of our own, with grants on those resources only.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import os
import unittest

from tools.localstack.loopback import ROOT
from tools.localstack.sam_translate import translate

# SAM's policies for its SQS and DynamoDB event sources: receive and delete on every queue, read
# every stream of the account.
ACCOUNT_WIDE = ("AWSLambdaSQSQueueExecutionRole", "AWSLambdaDynamoDBExecutionRole")


class GrantsOnOurResourcesOnly(unittest.TestCase):
    def test_no_role_reads_every_queue_or_stream_and_each_mapping_is_ours(self):
        resources = translate(os.path.join(ROOT, "infra/template.yaml"))["Resources"]
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::IAM::Role":
                managed = " ".join(resource["Properties"].get("ManagedPolicyArns", []))
                for policy in ACCOUNT_WIDE:
                    self.assertNotIn(policy, managed, logical_id)
        mappings = {logical_id: r for logical_id, r in resources.items()
                    if r["Type"] == "AWS::Lambda::EventSourceMapping"}
        self.assertEqual(sorted(mappings),
                         ["ObjectSyncTasks", "PostgresMirrorStream", "WebhookWorkerQueue", "WebhookWorkerSyncObjects"])
        for logical_id, mapping in mappings.items():
            self.assertTrue(mapping.get("DependsOn", "").endswith("Role"),
                            f"{logical_id} waits for its function's grants")


if __name__ == "__main__":
    unittest.main()
