"""Translate the SAM template to plain CloudFormation, offline.

Used to lint what CloudFormation will really see (cfn-lint alone misses dangling references inside
SAM resources) and, by the local stack, to create the template's own resources in moto.

Usage: python3 -m tools.localstack.sam_translate infra/template.yaml > translated.json
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class OfflinePolicyLoader:
    """The template names no AWS managed policy, so no IAM lookup is needed."""

    def load(self):
        return {}


def translate(path, parameters=None):
    """The template as CloudFormation sees it, with these parameter values (else the defaults), which
    SAM resolves where it decides on them (the X-Ray grant of `Tracing`)."""
    # Pseudo parameters need a region; any will do offline.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-north-1")
    with open(path, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            # `sam build` replaces the local path with the uploaded artifact; stand in for that.
            resource["Properties"]["CodeUri"] = "s3://local-build-artifacts/function.zip"
    return transform(template, parameters or {}, OfflinePolicyLoader())


if __name__ == "__main__":
    json.dump(translate(sys.argv[1]), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
