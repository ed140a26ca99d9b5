"""How far moto's CloudFormation gets with the stack (tools/checks/moto_cloudformation.py): the
figure the book quotes, held so that a moto upgrade that makes more of it is seen.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import unittest

from tools.checks.moto_cloudformation import how_far


class MotoCloudFormation(unittest.TestCase):
    def test_the_stack_completes_without_what_moto_has_no_model_of(self):
        status, made, unconditional, left_out = how_far()
        self.assertEqual(status, "CREATE_COMPLETE")
        self.assertIn("WebhookReceiverUrl", left_out)
        not_made = {unconditional[logical_id] for logical_id in set(unconditional) - made}
        self.assertEqual(not_made, {"AWS::CloudWatch::Alarm", "AWS::S3::BucketPolicy", "AWS::Scheduler::Schedule",
                                    "AWS::SecretsManager::ResourcePolicy", "AWS::SecretsManager::Secret"})
        self.assertIn("WebhookQueue", made)
        self.assertIn("ObjectsTable", made)


if __name__ == "__main__":
    unittest.main()
