"""The alarms reach someone: the stack's alarm topic is encrypted with a key whose policy lets
CloudWatch use it (SNS's AWS managed key would not: no alarm would ever arrive), and every alarm
notifies that topic when an email is given and an existing topic (AlarmTopicArn, e.g. AWS Chatbot's)
when one is named.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import os
import unittest

from tools.localstack.loopback import ROOT
from tools.localstack.sam_translate import translate


class AlarmsArrive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = translate(os.path.join(ROOT, "infra/template.yaml"))
        cls.resources = cls.template["Resources"]

    def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use(self):
        topic = self.resources["AlarmTopic"]["Properties"]
        self.assertEqual(topic["KmsMasterKeyId"], {"Ref": "AlarmTopicKey"},
                         "alias/aws/sns lets no CloudWatch alarm publish")
        key = self.resources["AlarmTopicKey"]
        self.assertEqual(key["Condition"], self.resources["AlarmTopic"]["Condition"])
        self.assertTrue(key["Properties"]["EnableKeyRotation"])
        granted = [statement for statement in key["Properties"]["KeyPolicy"]["Statement"]
                   if statement["Effect"] == "Allow"
                   and statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
        self.assertEqual(len(granted), 1, "one statement for CloudWatch")
        actions = granted[0]["Action"]
        self.assertIn("kms:Decrypt", actions)
        self.assertTrue(any(action in ("kms:GenerateDataKey*", "kms:GenerateDataKey") for action in actions))
        self.assertEqual(granted[0]["Condition"], {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                         "only this account's alarms")

    def test_every_alarm_notifies_the_stacks_topic_and_the_named_one(self):
        alarms = {logical_id: resource["Properties"] for logical_id, resource in self.resources.items()
                  if resource["Type"] == "AWS::CloudWatch::Alarm"}
        self.assertGreater(len(alarms), 10)
        wanted = [
            {"Fn::If": ["HasAlarmEmail", {"Ref": "AlarmTopic"}, {"Ref": "AWS::NoValue"}]},
            {"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]},
        ]
        for logical_id, alarm in alarms.items():
            self.assertEqual(alarm.get("AlarmActions"), wanted, logical_id)
        parameter = self.template["Parameters"]["AlarmTopicArn"]
        self.assertEqual(parameter["Default"], "", "no topic unless named")


if __name__ == "__main__":
    unittest.main()
