"""How far moto's CloudFormation gets with the stack: the template translated as `sam build` would
package it (its code an object in a bucket), created with moto's CloudFormation in-process, and what
it made and could not make, by resource. moto's CloudFormation is not what the local stack uses
(tools/localstack/local_stack.py creates the resources itself); this says how close it is.

Two gaps stop it before any resource, so they are stepped around and said: moto makes no
`AWS::Lambda::Url` (and fails on an output naming one), and it refuses a FIFO queue without a name
ending in `.fifo`, which CloudFormation would generate.

Usage: .venv/bin/python3 -m tools.checks.moto_cloudformation
"""

import contextlib
import io
import json
import logging
import os
import sys
import warnings

import boto3
from moto import mock_aws

from tools.localstack.loopback import ROOT
from tools.localstack.sam_translate import translate

NOT_MADE_BY_MOTO = ("AWS::Lambda::Url",)


def refers_to(value, names):
    text = json.dumps(value)
    return any(f'"{name}"' in text or f"${{{name}" in text for name in names)


def without(template, types):
    """The template without resources of `types` and what refers to them (resources and outputs)."""
    left_out = set()
    while True:
        more = {logical_id for logical_id, resource in template["Resources"].items()
                if resource["Type"] in types or refers_to(resource, left_out)} - left_out
        if not more:
            break
        left_out |= more
        for logical_id in more:
            del template["Resources"][logical_id]
    template["Outputs"] = {name: output for name, output in template.get("Outputs", {}).items()
                           if not refers_to(output, left_out)}
    return sorted(left_out)


def how_far():
    """(the stack's status, what it made, what it should have made, what was left out before)."""
    os.environ.update(AWS_DEFAULT_REGION="eu-north-1", AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
    template = translate(os.path.join(ROOT, "infra/template.yaml"))
    left_out = without(template, NOT_MADE_BY_MOTO)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SQS::Queue" and resource.get("Properties", {}).get("FifoQueue"):
            resource["Properties"]["QueueName"] = f"stack-{logical_id}.fifo"
    unconditional = {logical_id: resource["Type"] for logical_id, resource in template["Resources"].items()
                     if "Condition" not in resource}
    # moto prints and warns once per resource it has no model of; the summary below says it once.
    with mock_aws(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.getLogger("moto").setLevel(logging.ERROR)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="local-build-artifacts",
                         CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
        s3.put_object(Bucket="local-build-artifacts", Key="function.zip", Body=b"code")
        cloudformation = boto3.client("cloudformation")
        cloudformation.create_stack(StackName="tripletex-webhooks", TemplateBody=json.dumps(template, default=str),
                                    Capabilities=["CAPABILITY_IAM"])
        status = cloudformation.describe_stacks(StackName="tripletex-webhooks")["Stacks"][0]["StackStatus"]
        made = {summary["LogicalResourceId"] for summary in
                cloudformation.list_stack_resources(StackName="tripletex-webhooks")["StackResourceSummaries"]
                if summary["ResourceStatus"].endswith("COMPLETE")}
    return status, made & set(unconditional), unconditional, left_out


def main():
    status, made, unconditional, left_out = how_far()
    not_made = sorted((unconditional[logical_id], logical_id) for logical_id in set(unconditional) - made)
    print(f"moto's CloudFormation: {status}; it made {len(made)} of the {len(unconditional) + len(left_out)} "
          "resources the default parameters create")
    print(f"  left out before creating (no AWS::Lambda::Url in moto, and what names it): {', '.join(left_out)}")
    print("  not made (moto has no CloudFormation model of the type):")
    for resource_type in sorted({resource_type for resource_type, _ in not_made}):
        names = [logical_id for kind, logical_id in not_made if kind == resource_type]
        print(f"    {resource_type}: {len(names)} ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
