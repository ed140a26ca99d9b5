"""Every grant least-privilege, and proven: each statement of each role the translated template makes
names resources of the stack (a prefix of one, such as the bucket's `messages/*`, is one), never a
bare `*`, and each AWS managed policy attached is on the short list below with the reason beside it.
No function is granted what SAM's event sources would give it on the whole account: the queues and
the table's stream are read through mappings of our own, with grants on those resources only.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import functools
import json
import os
import unittest

from tools.localstack.local_stack import LocalStack
from tools.localstack.loopback import ROOT
from tools.localstack.sam_translate import translate

# The AWS managed policies a role may carry, and why each is acceptable.
MANAGED_ALLOWED = {
    "AWSLambdaBasicExecutionRole":
        "its function's own logs: logs:CreateLogGroup, CreateLogStream, PutLogEvents (Lambda's minimum)",
    "AWSLambdaVPCAccessExecutionRole":
        "the mirror's network interfaces in the user's subnets: EC2 allows those actions on * only",
    "AWSXrayWriteOnlyAccess":
        "trace segments, with Tracing=Active only: X-Ray's API has no resource-level permissions",
}
# Statements on a bare "*", by (role, action), and why: none today.
STAR_ALLOWED = {}
# SAM's policies for its SQS and DynamoDB event sources: receive and delete on every queue, read
# every stream of the account.
ACCOUNT_WIDE = ("AWSLambdaSQSQueueExecutionRole", "AWSLambdaDynamoDBExecutionRole")

EVERY_OPTION = {"EnablePostgresMirror": "true", "MirrorDatabaseSecretName": "mirror-database",
                "MirrorSubnetIds": "subnet-0123", "MirrorSecurityGroupIds": "sg-0123", "Tracing": "Active",
                "EnableChangeEvents": "true", "ChangeEventArchiveDays": "30",
                "AlarmEmail": "operations@example.com"}


def as_list(value):
    return value if isinstance(value, list) else [value]


def names_a_stack_resource(resource, logical_ids):
    """A Ref or GetAtt of one of the stack's resources or parameters, or a Sub built on one."""
    text = json.dumps(resource)
    return any(f'"{name}"' in text or f"${{{name}" in text for name in logical_ids)


def managed_policies(template, parameters, role):
    """The names of the managed policies `role` carries with these parameters, its `!If`s decided
    and its `!Sub`s made as CloudFormation would."""
    stack = LocalStack(template, "http://127.0.0.1:1", "grants", {}, parameters)
    arns = (stack.resolve(arn) for arn in role["Properties"].get("ManagedPolicyArns", []))
    return [arn.rsplit("/", 1)[-1] for arn in arns if arn]


@functools.cache
def translated(parameters):
    """The template translated with these parameters (a tuple of pairs), once per set."""
    return translate(os.path.join(ROOT, "infra/template.yaml"), dict(parameters))


class GrantsOnOurResourcesOnly(unittest.TestCase):
    def grants(self, parameters):
        template = translated(tuple(sorted(parameters.items())))
        named = set(template["Resources"]) | set(template.get("Parameters", {}))
        return template["Resources"], named

    def attached(self, parameters, role):
        template = translated(tuple(sorted(parameters.items())))
        return managed_policies(template, parameters, template["Resources"][role])

    def test_every_statement_names_the_stack_s_resources_and_every_managed_policy_is_listed(self):
        for parameters in ({}, EVERY_OPTION):
            resources, named = self.grants(parameters)
            for logical_id, resource in resources.items():
                if resource["Type"] != "AWS::IAM::Role":
                    continue
                for policy in self.attached(parameters, logical_id):
                    self.assertIn(policy, MANAGED_ALLOWED, f"{logical_id} carries {policy}")
                for policy in resource["Properties"].get("Policies", []):
                    for statement in policy["PolicyDocument"]["Statement"]:
                        for target in as_list(statement.get("Resource")):
                            if target == "*":
                                for action in as_list(statement["Action"]):
                                    self.assertIn((logical_id, action), STAR_ALLOWED,
                                                  f"{logical_id}: {action} on *")
                            else:
                                self.assertTrue(names_a_stack_resource(target, named),
                                                f"{logical_id}: {statement['Action']} on {target}")

    def test_no_role_reads_every_queue_or_stream_and_each_mapping_is_ours(self):
        resources, _ = self.grants(EVERY_OPTION)
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::IAM::Role":
                managed = self.attached(EVERY_OPTION, logical_id)
                for policy in ACCOUNT_WIDE:
                    self.assertNotIn(policy, managed, logical_id)
        mappings = {logical_id: r for logical_id, r in resources.items()
                    if r["Type"] == "AWS::Lambda::EventSourceMapping"}
        self.assertEqual(sorted(mappings),
                         ["ObjectSyncTasks", "PostgresMirrorStream", "WebhookWorkerQueue", "WebhookWorkerSyncObjects"])
        for logical_id, mapping in mappings.items():
            self.assertTrue(mapping.get("DependsOn", "").endswith("Role"),
                            f"{logical_id} waits for its function's grants")

    def test_the_vpc_grant_and_the_x_ray_grant_come_only_with_their_options(self):
        resources, _ = self.grants({})
        attached = [policy for logical_id, r in resources.items() if r["Type"] == "AWS::IAM::Role"
                    for policy in self.attached({}, logical_id)]
        self.assertNotIn("AWSXrayWriteOnlyAccess", attached, "Tracing is Disabled by default")
        mirror_outside_vpc = {**EVERY_OPTION, "MirrorSubnetIds": "", "MirrorSecurityGroupIds": "",
                              "Tracing": "Disabled"}
        self.assertEqual(self.attached(mirror_outside_vpc, "PostgresMirrorRole"),
                         ["AWSLambdaBasicExecutionRole"], "no network rights without subnets")
        self.assertEqual(self.attached(EVERY_OPTION, "PostgresMirrorRole"),
                         ["AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole",
                          "AWSXrayWriteOnlyAccess"], "in the user's subnets, traced")


if __name__ == "__main__":
    unittest.main()
