"""Secrets only their functions can read: each secret of ours has a resource policy that denies
`secretsmanager:GetSecretValue` to every principal but the roles of the functions whose own policy
reads it (and the operators' roles `SecretReaderArns` names), so that an account role allowed
GetSecretValue on "*" still cannot read the Tripletex tokens.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import os
import unittest

from tools.localstack.loopback import ROOT
from tools.localstack.sam_translate import translate


def readers_by_policy(resources, secret):
    """The roles whose inline policies allow GetSecretValue on the secret."""
    readers = set()
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement.get("Action")
                actions = actions if isinstance(actions, list) else [actions]
                targets = statement.get("Resource")
                targets = targets if isinstance(targets, list) else [targets]
                if "secretsmanager:GetSecretValue" in actions and {"Ref": secret} in targets:
                    readers.add(logical_id)
    return readers


def allowed_by_resource_policy(resources, secret):
    """The roles a secret's resource policy leaves able to read it (its Deny's exceptions)."""
    policies = [r["Properties"] for r in resources.values()
                if r["Type"] == "AWS::SecretsManager::ResourcePolicy"
                and r["Properties"]["SecretId"] == {"Ref": secret}]
    assert len(policies) == 1, f"{secret} has {len(policies)} resource policies"
    (statement,) = policies[0]["ResourcePolicy"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*", statement
    assert statement["Action"] == "secretsmanager:GetSecretValue", statement
    assert policies[0]["BlockPublicPolicy"] is True
    listed = statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"]["Fn::Split"][1]["Fn::Join"][1]
    roles = {item["Fn::GetAtt"][0] for item in listed if "Fn::GetAtt" in item}
    operators = [item for item in listed if "Fn::Join" in item]
    assert operators == [{"Fn::Join": [",", {"Ref": "SecretReaderArns"}]}], listed
    return roles


class SecretsOnlyTheirFunctionsRead(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.resources = translate(os.path.join(ROOT, "infra/template.yaml"))["Resources"]

    def test_each_secret_s_policy_leaves_exactly_its_readers(self):
        for secret in ("TripletexCredentialsSecret", "ReceiverAuthSecret"):
            readers = readers_by_policy(self.resources, secret)
            self.assertTrue(readers, secret)
            self.assertEqual(allowed_by_resource_policy(self.resources, secret), readers, secret)


if __name__ == "__main__":
    unittest.main()
