"""Create the template's own resources in moto and resolve each function's environment from it.

The local stack is not a second, hand-written list: the SAM template is translated to CloudFormation
(tools/localstack/sam_translate.py) and every queue, table and secret it declares is created in moto with the
properties it declares. moto's own CloudFormation skips Secrets Manager resources and TTL settings and
cannot run Lambda code without Docker, so this does the little that is needed itself.

Usage:
  python3 -m tools.localstack.local_stack create --endpoint http://127.0.0.1:PORT --env-file .local/functions.env
      [--secret LogicalId=path/to/value.json ...] [--stack-name local]
Prints a JSON summary of what was created (logical id -> physical name/url/arn) on stdout.
"""

import argparse
import fcntl
import json
import os
import re
import secrets
import string
import sys

import boto3

from tools.localstack.loopback import endpoint_for
from tools.localstack.sam_translate import translate

REGION = "eu-north-1"
ACCOUNT = "123456789012"


def kebab(logical_id):
    """WebhookReceiver -> webhook-receiver: the one name a function has everywhere."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id).lower()


class LocalStack:
    def __init__(self, template, endpoint, stack_name, secret_values, parameters=None, function_urls=None):
        self.template = template
        self.stack_name = stack_name
        self.secret_values = secret_values
        self.refs = {}  # logical id -> value of !Ref
        self.attrs = {}  # (logical id, attribute) -> value of !GetAtt
        self.created = {}
        client = lambda service: boto3.client(  # noqa: E731
            service,
            endpoint_url=endpoint_for(service, endpoint),
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        self.sqs = client("sqs")
        self.secretsmanager = client("secretsmanager")
        self.dynamodb = client("dynamodb")
        self.s3 = client("s3")
        self.events = client("events")
        self.parameters = {
            name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()
        }
        for name, value in (parameters or {}).items():
            if name not in self.parameters:
                raise SystemExit(f"the template has no parameter {name}")
            self.parameters[name] = value
        # A function URL resource is served by `cargo lambda watch` locally: its URL is given.
        for function, url in (function_urls or {}).items():
            self.attrs[(f"{function}Url", "FunctionUrl")] = url

    # -- intrinsic functions ---------------------------------------------------------------------

    def resolve(self, value):
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attrs[(logical_id, attribute)]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(extra.get(m.group(1)) or self.sub_var(m.group(1))),
                    text,
                )
            if key == "Fn::FindInMap":
                name, top, second = (self.resolve(part) for part in arg)
                return self.template["Mappings"][name][str(top)][second]
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(part) for part in self.resolve(parts))
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            # An element that resolves to AWS::NoValue leaves the list, as in CloudFormation.
            return [resolved for resolved in (self.resolve(v) for v in value) if resolved is not None]
        return value

    def ref(self, name):
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": self.stack_name,
                  "AWS::Partition": "aws",
                  "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.stack_name}/local", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.refs[name]

    def sub_var(self, name):
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.attrs[(logical_id, attribute)]
        return self.ref(name)

    def ready(self, value):
        """Whether every reference in `value` is already known."""
        try:
            self.resolve(value)
            return True
        except KeyError:
            return False

    # -- resources -------------------------------------------------------------------------------

    def condition(self, name):
        """A template condition, for the functions it uses (Equals, Not, And, Or, Condition)."""
        return self.holds(self.template.get("Conditions", {})[name])

    def holds(self, expression):
        (function, argument), = expression.items()
        if function == "Fn::Equals":
            left, right = (self.resolve(part) for part in argument)
            if isinstance(left, list):
                left = ",".join(left)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self.holds(argument[0])
        if function == "Fn::And":
            return all(self.holds(part) for part in argument)
        if function == "Fn::Or":
            return any(self.holds(part) for part in argument)
        if function == "Condition":
            return self.condition(argument)
        raise ValueError(f"the local stack does not evaluate {function}")

    def exists(self, resource):
        """Whether a resource is in this stack: it has no Condition, or its condition holds."""
        return "Condition" not in resource or self.condition(resource["Condition"])

    def resources(self, resource_type):
        return [(logical_id, resource) for logical_id, resource in self.template["Resources"].items()
                if resource["Type"] == resource_type and self.exists(resource)]

    def create_all(self):
        # Locally a function is named as its crate (cargo lambda watch serves it by that name).
        for logical_id, _ in self.resources("AWS::Lambda::Function"):
            self.refs[logical_id] = kebab(logical_id)
            self.attrs[(logical_id, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{kebab(logical_id)}"
        # Log groups are not made locally (the functions' output goes to a file), but policies name them.
        for logical_id, resource in self.resources("AWS::Logs::LogGroup"):
            name = self.resolve(resource["Properties"]["LogGroupName"])
            self.refs[logical_id] = name
            self.attrs[(logical_id, "Arn")] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
        pending = {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] in CREATORS and self.exists(resource)
        }
        while pending:
            progress = False
            for logical_id, resource in list(pending.items()):
                if self.ready(resource.get("Properties", {})):
                    CREATORS[resource["Type"]](self, logical_id, self.resolve(resource.get("Properties", {})))
                    del pending[logical_id]
                    progress = True
            if not progress:
                raise SystemExit(f"unresolvable references among: {sorted(pending)}")

    def physical_name(self, logical_id):
        return f"{self.stack_name}-{logical_id}"

    def create_queue(self, logical_id, properties):
        attributes = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize"):
            if key in properties:
                attributes[key] = str(properties[key])
        if "RedrivePolicy" in properties:
            policy = properties["RedrivePolicy"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": policy["deadLetterTargetArn"],
                 "maxReceiveCount": int(policy["maxReceiveCount"])}
            )
        if properties.get("SqsManagedSseEnabled"):
            attributes["SqsManagedSseEnabled"] = "true"
        fifo = str(properties.get("FifoQueue", "")).lower() == "true"
        if fifo:
            attributes["FifoQueue"] = "true"
            if "ContentBasedDeduplication" in properties:
                attributes["ContentBasedDeduplication"] = str(properties["ContentBasedDeduplication"]).lower()
        # As CloudFormation names it: a FIFO queue's name ends in .fifo.
        name = properties.get("QueueName") or self.physical_name(logical_id) + (".fifo" if fifo else "")
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.refs[logical_id] = url
        self.attrs[(logical_id, "Arn")] = arn
        self.attrs[(logical_id, "QueueName")] = name
        self.attrs[(logical_id, "QueueUrl")] = url
        self.created[logical_id] = {"type": "queue", "name": name, "url": url, "arn": arn}

    def create_secret(self, logical_id, properties):
        name = properties.get("Name") or self.physical_name(logical_id)
        if logical_id in self.secret_values:
            value = self.secret_values[logical_id]
        elif "SecretString" in properties:
            value = properties["SecretString"]
        else:
            value = generated_secret(properties.get("GenerateSecretString", {}))
        arn = self.secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
        self.refs[logical_id] = arn
        self.attrs[(logical_id, "Id")] = arn
        self.created[logical_id] = {"type": "secret", "name": name, "arn": arn}

    def create_bucket(self, logical_id, properties):
        # Bucket names are lower case; CloudFormation would add a suffix of its own.
        name = properties.get("BucketName") or self.physical_name(logical_id).lower()
        self.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        rules = properties.get("LifecycleConfiguration", {}).get("Rules", [])
        expiring = [
            {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule["Prefix"]},
             "Expiration": {"Days": int(rule["ExpirationInDays"])}}
            for rule in rules if "ExpirationInDays" in rule
        ]
        if expiring:
            self.s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": expiring})
        arn = f"arn:aws:s3:::{name}"
        self.refs[logical_id] = name
        self.attrs[(logical_id, "Arn")] = arn
        self.created[logical_id] = {"type": "bucket", "name": name, "arn": arn}

    def create_event_bus(self, logical_id, properties):
        name = properties.get("Name") or self.physical_name(logical_id)
        arn = self.events.create_event_bus(Name=name)["EventBusArn"]
        self.refs[logical_id] = name
        self.attrs[(logical_id, "Arn")] = arn
        self.attrs[(logical_id, "Name")] = name
        self.created[logical_id] = {"type": "event_bus", "name": name, "arn": arn}

    def create_archive(self, logical_id, properties):
        name = properties.get("ArchiveName") or self.physical_name(logical_id)
        arn = self.events.create_archive(ArchiveName=name, EventSourceArn=properties["SourceArn"],
                                         RetentionDays=int(properties.get("RetentionDays", 0)))["ArchiveArn"]
        self.refs[logical_id] = name
        self.attrs[(logical_id, "Arn")] = arn
        self.created[logical_id] = {"type": "archive", "name": name, "arn": arn}

    def pipes(self):
        """The table stream -> event bus pipes, which the local stream poller plays."""
        pipes = []
        for logical_id, resource in self.resources("AWS::Pipes::Pipe"):
            properties = resource["Properties"]
            target = properties["TargetParameters"].get("EventBridgeEventBusParameters", {})
            stream = properties["SourceParameters"]["DynamoDBStreamParameters"]
            pipes.append({
                "pipe": logical_id,
                "stream_arn": self.resolve(properties["Source"]),
                "event_bus_arn": self.resolve(properties["Target"]),
                "detail_type": target.get("DetailType", "Event"),
                "source": target.get("Source", "Pipe"),
                "batch_size": int(self.resolve(stream.get("BatchSize", 10))),
            })
        return pipes

    def create_table(self, logical_id, properties):
        name = properties.get("TableName") or self.physical_name(logical_id)
        request = {
            "TableName": name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if request["BillingMode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
        if "StreamSpecification" in properties:
            request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in properties:
                request[key] = properties[key]
        if "DeletionProtectionEnabled" in properties:  # a parameter gives it as a string
            request["DeletionProtectionEnabled"] = str(properties["DeletionProtectionEnabled"]).lower() == "true"
        sse = properties.get("SSESpecification")
        if sse:  # CloudFormation says SSEEnabled where the API says Enabled
            request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))}
            for key in ("SSEType", "KMSMasterKeyId"):
                if key in sse:
                    request["SSESpecification"][key] = sse[key]
        table = self.dynamodb.create_table(**request)["TableDescription"]
        pitr = properties.get("PointInTimeRecoverySpecification", {})
        if pitr.get("PointInTimeRecoveryEnabled"):
            self.dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            self.dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        self.refs[logical_id] = name
        self.attrs[(logical_id, "Arn")] = table["TableArn"]
        if "LatestStreamArn" in table:
            self.attrs[(logical_id, "StreamArn")] = table["LatestStreamArn"]
        self.created[logical_id] = {"type": "table", "name": name, "arn": table["TableArn"]}

    # -- functions -------------------------------------------------------------------------------

    def event_sources(self):
        """The queue (or table stream) -> function mappings the local poller plays, with their settings."""
        queue_by_arn = {v["arn"]: v["url"] for v in self.created.values() if v["type"] == "queue"}
        sources = []
        for _, resource in self.resources("AWS::Lambda::EventSourceMapping"):
            properties = resource["Properties"]
            function = properties["FunctionName"]
            function_properties = self.template["Resources"][function["Ref"]]["Properties"]
            source_arn = self.resolve(properties["EventSourceArn"])
            if source_arn not in queue_by_arn:
                # A table's stream: read in order from its oldest record, as TRIM_HORIZON does.
                on_failure = properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                sources.append({
                    "function": kebab(function["Ref"]),
                    "timeout_seconds": int(self.resolve(function_properties.get("Timeout", 3))),
                    "stream_arn": source_arn,
                    "batch_size": int(self.resolve(properties.get("BatchSize", 100))),
                    "batching_window_seconds": int(self.resolve(properties.get("MaximumBatchingWindowInSeconds", 0))),
                    "maximum_retry_attempts": int(self.resolve(properties.get("MaximumRetryAttempts", -1))),
                    "on_failure_queue_url": queue_by_arn.get(self.resolve(on_failure)) if on_failure else None,
                    "report_batch_item_failures": "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                })
                continue
            sources.append({
                "function": kebab(function["Ref"]),
                "timeout_seconds": int(self.resolve(function_properties.get("Timeout", 3))),
                "queue_url": queue_by_arn[source_arn],
                "batch_size": int(self.resolve(properties.get("BatchSize", 10))),
                "batching_window_seconds": int(self.resolve(properties.get("MaximumBatchingWindowInSeconds", 0))),
                "report_batch_item_failures": "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                "maximum_concurrency": int(self.resolve(properties.get("ScalingConfig", {}).get("MaximumConcurrency", 1000))),
            })
        return sources

    def schedules(self):
        """The scheduler's schedules of functions, which the local ticker plays."""
        schedules = []
        for logical_id, resource in self.resources("AWS::Scheduler::Schedule"):
            properties = resource["Properties"]
            target = properties["Target"]["Arn"]
            if not (isinstance(target, dict) and "Fn::GetAtt" in target):
                continue
            function = target["Fn::GetAtt"][0]
            schedules.append({
                "name": logical_id,
                "function": kebab(function),
                "expression": self.resolve(properties["ScheduleExpression"]),
                "input": properties["Target"].get("Input", "{}"),
            })
        return schedules

    def function_environments(self):
        """Each Lambda function's environment, resolved against the local resources."""
        environments = {}
        for logical_id, resource in self.resources("AWS::Lambda::Function"):
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            environments[kebab(logical_id)] = {k: str(self.resolve(v)) for k, v in variables.items()}
        return environments


    def principals(self):
        """What the local IAM (tools/localstack/local_iam.py) enforces: each function's role, under the
        key its runner signs with, and the operator's policy for the command line; resolved here."""
        principals = {}
        for logical_id, resource in self.resources("AWS::Lambda::Function"):
            role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
            policies = self.resolve(self.template["Resources"][role]["Properties"].get("Policies", []))
            principals[f"role-{kebab(logical_id)}"] = {
                "name": kebab(logical_id),
                "role": role,
                "policy": role,
                "statements": [statement for policy in policies if policy
                               for statement in present(policy["PolicyDocument"]["Statement"])],
            }
        for logical_id, resource in self.resources("AWS::IAM::ManagedPolicy"):
            if logical_id == OPERATOR_POLICY:
                document = self.resolve(resource["Properties"]["PolicyDocument"])
                principals[OPERATOR_KEY] = {"name": "operator", "role": "operator", "policy": logical_id,
                                            "statements": present(document["Statement"])}
        return principals


# The operator's command line signs with this key on the local stack (cli/src/ops/mod.rs).
OPERATOR_KEY = "local-operator"
OPERATOR_POLICY = "OperatorPolicy"


def add_principals(path, principals):
    """Adds this stack's principals to the local IAM's file, beside those of the other stacks on the
    same moto (a test process makes many): a key already there gets this stack's statements too. The
    file is replaced whole, under a lock, so the server never reads it half written."""
    with open(f"{path}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path, encoding="utf-8") as handle:
                known = json.load(handle)["principals"]
        except FileNotFoundError:
            known = {}
        for key, principal in principals.items():
            if key in known:
                known[key]["statements"] += principal["statements"]
            else:
                known[key] = principal
        with open(f"{path}.new", "w", encoding="utf-8") as handle:
            json.dump({"principals": known}, handle, indent=2)
        os.replace(f"{path}.new", path)


def without(principals, removals):
    """The principals with each `function:action` taken out of that function's statements."""
    for removal in removals:
        name, _, action = removal.partition(":")
        matching = [p for p in principals.values() if p["name"] == name]
        if not matching or not action:
            raise SystemExit(f"--iam-without {removal}: give a function ({', '.join(sorted(p['name'] for p in principals.values()))}) and an action")
        for principal in matching:
            granted = [s for s in principal["statements"] if action in present(s.get("Action", []))]
            if not granted:
                raise SystemExit(f"--iam-without {removal}: {name}'s policy does not grant {action}")
            principal["statements"] = [
                {**s, "Action": [a for a in present(s["Action"]) if a != action]} if s in granted else s
                for s in principal["statements"]
                if s not in granted or len(present(s["Action"])) > 1
            ]
    return principals


def present(items):
    """A list with what `AWS::NoValue` removed taken out, as CloudFormation does."""
    items = items if isinstance(items, list) else [items]
    return [item for item in items if item is not None]


def generated_secret(spec):
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if "SecretStringTemplate" in spec:
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = value
        return json.dumps(document)
    return value


CREATORS = {
    "AWS::Events::EventBus": LocalStack.create_event_bus,
    "AWS::Events::Archive": LocalStack.create_archive,
    "AWS::SQS::Queue": LocalStack.create_queue,
    "AWS::SecretsManager::Secret": LocalStack.create_secret,
    "AWS::DynamoDB::Table": LocalStack.create_table,
    "AWS::S3::Bucket": LocalStack.create_bucket,
}


def merged_environment(environments):
    """One env file serves every function under `cargo lambda watch`: a name must mean one thing."""
    merged = {}
    for function, variables in sorted(environments.items()):
        for name, value in variables.items():
            if name in merged and merged[name] != value:
                raise SystemExit(f"{function}: {name} differs between functions; rename it in the template")
            merged[name] = value
    return merged


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["create"])
    parser.add_argument("--template", default="infra/template.yaml")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--stack-name", default="local")
    parser.add_argument("--env-file", required=True)
    parser.add_argument("--secret", action="append", default=[], metavar="LOGICAL_ID=FILE")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="override a template parameter's default")
    parser.add_argument("--function-url", action="append", default=[], metavar="LOGICAL_ID=URL",
                        help="the local URL that stands for a function's URL")
    parser.add_argument("--function-log", help="the file the local functions' output goes to (their journal "
                        "lines among it): `tripletex-webhooks --local log` reads it")
    parser.add_argument("--lambda-endpoint", help="where the functions answer Lambda's Invoke API locally "
                                                  "(cargo lambda watch), for the operator's CLI")
    parser.add_argument("--iam-file", help="where to write each function's role and the operator's policy, "
                        "resolved, for the local IAM (tools/localstack/local_iam.py)")
    parser.add_argument("--iam-without", action="append", default=[], metavar="FUNCTION:ACTION",
                        help="take one action out of a function's policy (to see what its absence breaks)")
    args = parser.parse_args()

    secret_values = {}
    for item in args.secret:
        logical_id, path = item.split("=", 1)
        with open(path, encoding="utf-8") as handle:
            secret_values[logical_id] = handle.read()

    pairs = lambda items: dict(item.split("=", 1) for item in items)  # noqa: E731
    stack = LocalStack(translate(args.template), args.endpoint, args.stack_name, secret_values,
                       pairs(args.parameter), pairs(args.function_url))
    stack.create_all()
    if args.iam_file:
        add_principals(args.iam_file, without(stack.principals(), args.iam_without))
    environment = merged_environment(stack.function_environments())
    with open(args.env_file, "w", encoding="utf-8") as handle:
        for name, value in sorted(environment.items()):
            handle.write(f"{name}={value}\n")
    summary = {
        # Where the resources are: the operator's CLI (`tripletex-webhooks --local`) reaches them here.
        "endpoint": args.endpoint,
        "lambdaEndpoint": args.lambda_endpoint,
        "functionLog": os.path.abspath(args.function_log) if args.function_log else None,
        "resources": stack.created,
        "functions": stack.function_environments(),
        "event_sources": stack.event_sources(),
        "pipes": stack.pipes(),
        "schedules": stack.schedules(),
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
