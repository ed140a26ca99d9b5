"""The template's IAM policies, enforced on the local stack as AWS enforces them.

Each function calls the local AWS with its own role's access key (`role-<function>`, set by
tools/localstack/as_function_role.sh), and the operator's command line with `local-operator`. This
WSGI middleware, in front of moto, works out what each request asks for (its IAM action, the ARN of
every resource it touches, and the condition keys the template uses) and answers it as AWS would
when that principal's policy does not allow it: `AccessDenied`, naming the action and the resource.
Each refusal is also appended, as a JSON line, to the denial log, so that a check fails at once with
the action named instead of waiting for a timeout.

Why not moto's own enforcement (`INITIAL_NO_AUTH_ACTION_COUNT`): it knows a request's resource for
S3 and SQS only (for DynamoDB, Secrets Manager and the rest it checks `*`, which the template's
scoped statements never match), and it takes an Allow whose condition does not hold for a Deny.

What it does not do, said plainly:
- signatures are not verified: the access key names the principal (nothing here is a secret);
- keys it does not know (`local`, the stack's own machinery standing for CloudFormation and
  Lambda's pollers) are not checked;
- of the condition operators it evaluates the String and Bool families, with ForAllValues,
  ForAnyValue and IfExists; of the keys, `dynamodb:LeadingKeys`. A statement with any other
  operator or key is refused with that named, never guessed;
- Lambda's Invoke API is served by `cargo lambda watch`, not moto, so `lambda:InvokeFunction` is
  not enforced locally; AWS managed policies (basic execution, VPC, X-Ray) grant calls that are not
  made locally and are not expanded;
- a DynamoDB stream's GetRecords names its stream only through its iterator, which AWS keeps opaque:
  the stream is read from moto's, whose ARN comes first.
"""

import fnmatch
import io
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass, field

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Call:
    """One thing a request asks for: an action on a resource, with the condition keys it carries."""

    action: str
    resource: str
    context: dict = field(default_factory=dict, compare=False, hash=False)


class CannotTell(Exception):
    """The request's resource or condition keys cannot be worked out: refused, with the reason."""


# -- what a request asks for ----------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes
    service: str
    region: str

    def json(self):
        try:
            return json.loads(self.body or b"{}")
        except ValueError as error:
            raise CannotTell(f"its body is not JSON ({error})") from error

    def form(self):
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode("utf-8", "replace")).items()}

    def operation(self):
        """The operation of a JSON (X-Amz-Target), CBOR (path) or query (Action=) protocol request."""
        target = self.headers.get("x-amz-target")
        if target:
            return target.rsplit(".", 1)[-1]
        match = re.search(r"/operation/([A-Za-z]+)$", self.path)
        if match:
            return match.group(1)
        return self.query.get("Action", [None])[0] or self.form().get("Action")

    def arn(self, service, resource):
        return f"arn:aws:{service}:{self.region}:{ACCOUNT}:{resource}"


def calls_of(request, backends):
    """Every (action, resource, context) the request needs allowed."""
    by_service = {
        "dynamodb": dynamodb_calls,
        "sqs": sqs_calls,
        "s3": s3_calls,
        "secretsmanager": secretsmanager_calls,
        "events": events_calls,
        "logs": logs_calls,
    }
    if request.service in by_service:
        return by_service[request.service](request, backends)
    operation = request.operation()
    if operation is None:
        raise CannotTell(f"the local IAM cannot tell which {request.service} operation this is")
    return [Call(f"{IAM_PREFIXES.get(request.service, request.service)}:{operation}", "*")]


# Where a service signs under one name and IAM knows it by another.
IAM_PREFIXES = {"monitoring": "cloudwatch"}


def attribute_text(value):
    """A DynamoDB attribute value as IAM's condition keys see it."""
    (_, inner), = value.items()
    return str(inner)


def dynamodb_calls(request, backends):
    operation = request.operation()
    body = request.json()
    if request.headers.get("x-amz-target", "").startswith("DynamoDBStreams_"):
        # moto's shard iterator begins with its stream's ARN (AWS's is opaque).
        stream = body.get("StreamArn") or body.get("ShardIterator", "*").split("|")[0]
        return [Call(f"dynamodb:{operation}", stream)]

    def table_arn(name, index=None):
        arn = request.arn("dynamodb", f"table/{name}")
        return f"{arn}/index/{index}" if index else arn

    def leading_keys(table, items):
        hash_key = backends.hash_key(request.region, table)
        if hash_key is None:
            return {}
        return {"dynamodb:LeadingKeys": [attribute_text(item[hash_key]) for item in items if hash_key in item]}

    if operation in ("GetItem", "DeleteItem", "UpdateItem"):
        table = body["TableName"]
        return [Call(f"dynamodb:{operation}", table_arn(table), leading_keys(table, [body.get("Key", {})]))]
    if operation == "PutItem":
        table = body["TableName"]
        return [Call("dynamodb:PutItem", table_arn(table), leading_keys(table, [body.get("Item", {})]))]
    if operation == "Query":
        table = body["TableName"]
        return [Call("dynamodb:Query", table_arn(table, body.get("IndexName")),
                     {"dynamodb:LeadingKeys": [query_partition_value(request, body, backends)]})]
    if operation == "Scan":
        return [Call("dynamodb:Scan", table_arn(body["TableName"], body.get("IndexName")))]
    if operation == "BatchGetItem":
        return [Call("dynamodb:BatchGetItem", table_arn(table), leading_keys(table, spec.get("Keys", [])))
                for table, spec in body.get("RequestItems", {}).items()]
    if operation == "BatchWriteItem":
        calls = []
        for table, writes in body.get("RequestItems", {}).items():
            items = [w.get("PutRequest", {}).get("Item") or w.get("DeleteRequest", {}).get("Key", {}) for w in writes]
            calls.append(Call("dynamodb:BatchWriteItem", table_arn(table), leading_keys(table, items)))
        return calls
    if operation in ("TransactWriteItems", "TransactGetItems"):
        actions = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                   "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
        calls = []
        for item in body.get("TransactItems", []):
            (kind, spec), = item.items()
            table = spec["TableName"]
            calls.append(Call(f"dynamodb:{actions[kind]}", table_arn(table),
                              leading_keys(table, [spec.get("Item") or spec.get("Key", {})])))
        return calls
    if "TableName" in body:
        return [Call(f"dynamodb:{operation}", table_arn(body["TableName"]))]
    return [Call(f"dynamodb:{operation}", "*")]


def query_partition_value(request, body, backends):
    """The partition key value a Query names: what `dynamodb:LeadingKeys` holds for it."""
    hash_key = backends.hash_key(request.region, body["TableName"], body.get("IndexName"))
    if "KeyConditions" in body:
        values = body["KeyConditions"].get(hash_key, {}).get("AttributeValueList", [])
        if values:
            return attribute_text(values[0])
    names = body.get("ExpressionAttributeNames", {})
    for name, placeholder in re.findall(r"([#\w.]+)\s*=\s*(:\w+)", body.get("KeyConditionExpression", "")):
        if names.get(name, name) == hash_key:
            return attribute_text(body.get("ExpressionAttributeValues", {})[placeholder])
    raise CannotTell(f"the local IAM cannot find the partition key {hash_key!r} in this Query's key condition")


SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def sqs_calls(request, _backends):
    operation = request.operation()
    parameters = request.json() if request.headers.get("x-amz-target") else request.form()
    action = f"sqs:{SQS_BATCH_ACTIONS.get(operation, operation)}"
    queue_url = parameters.get("QueueUrl") or (request.path if request.path.count("/") >= 2 else None)
    if queue_url:
        return [Call(action, request.arn("sqs", urllib.parse.urlparse(queue_url).path.rstrip("/").rsplit("/", 1)[-1]))]
    if parameters.get("QueueName"):
        return [Call(action, request.arn("sqs", parameters["QueueName"]))]
    return [Call(action, "*")]


def s3_calls(request, _backends):
    bucket, _, key = request.path.lstrip("/").partition("/")
    key = urllib.parse.unquote(key)
    query = request.query
    bucket_arn = f"arn:aws:s3:::{bucket}"
    object_arn = f"{bucket_arn}/{key}"
    method = request.method
    if not bucket:
        return [Call("s3:ListAllMyBuckets", "*")]
    if not key:
        if method == "POST" and "delete" in query:
            keys = re.findall(rb"<Key>(.*?)</Key>", request.body)
            return [Call("s3:DeleteObject", f"{bucket_arn}/{k.decode()}") for k in keys]
        actions = {"GET": "s3:ListBucket", "HEAD": "s3:ListBucket", "PUT": "s3:CreateBucket", "DELETE": "s3:DeleteBucket"}
        if method not in actions:
            raise CannotTell(f"the local IAM does not know the S3 action of {method} on a bucket")
        return [Call(actions[method], bucket_arn)]
    if "uploadId" in query and method == "DELETE":
        return [Call("s3:AbortMultipartUpload", object_arn)]
    actions = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject", "POST": "s3:PutObject",
               "DELETE": "s3:DeleteObject"}
    return [Call(actions[method], object_arn)]


def secretsmanager_calls(request, backends):
    operation = request.operation()
    body = request.json()
    secret = body.get("SecretId") or body.get("Name")
    if secret is None:
        return [Call(f"secretsmanager:{operation}", "*")]
    arn = backends.secret_arn(request.region, secret) or request.arn("secretsmanager", f"secret:{secret}")
    return [Call(f"secretsmanager:{operation}", arn)]


def events_calls(request, _backends):
    operation = request.operation()
    body = request.json()

    def bus_arn(name):
        return name if name.startswith("arn:") else request.arn("events", f"event-bus/{name}")

    if operation == "PutEvents":
        buses = sorted({entry.get("EventBusName", "default") for entry in body.get("Entries", [])})
        return [Call("events:PutEvents", bus_arn(bus)) for bus in buses]
    if operation in ("PutRule", "DeleteRule", "DescribeRule", "ListTargetsByRule", "PutTargets", "RemoveTargets",
                     "ListRules"):
        bus = body.get("EventBusName", "default").rsplit("event-bus/", 1)[-1]
        rule = "*" if operation == "ListRules" else body.get("Name") or body["Rule"]
        prefix = "rule/" if bus == "default" else f"rule/{bus}/"
        return [Call(f"events:{operation}", request.arn("events", prefix + rule))]
    if operation in ("StartReplay", "DescribeReplay", "CancelReplay"):
        return [Call(f"events:{operation}", request.arn("events", f"replay/{body['ReplayName']}"))]
    if operation in ("DescribeArchive", "ListArchives") and "ArchiveName" in body:
        return [Call(f"events:{operation}", request.arn("events", f"archive/{body['ArchiveName']}"))]
    return [Call(f"events:{operation}", "*")]


def logs_calls(request, _backends):
    operation = request.operation()
    body = request.json()
    groups = body.get("logGroupNames") or ([body["logGroupName"]] if "logGroupName" in body else [])
    if not groups:
        return [Call(f"logs:{operation}", "*")]
    return [Call(f"logs:{operation}", request.arn("logs", f"log-group:{group}:*")) for group in groups]


# -- what a policy allows -------------------------------------------------------------------------


def listed(value):
    return value if isinstance(value, list) else [value]


def matches_any(patterns, value, case_sensitive=True):
    for pattern in listed(patterns):
        if not case_sensitive:
            pattern, value_cmp = pattern.lower(), value.lower()
        else:
            value_cmp = value
        if fnmatch.fnmatchcase(value_cmp, pattern):
            return True
    return False


def condition_holds(operator, key, expected, context):
    """One operator on one key, as IAM evaluates it."""
    set_operator, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    tests = {
        "StringEquals": lambda value, wanted: value == wanted,
        "StringNotEquals": lambda value, wanted: value != wanted,
        "StringEqualsIgnoreCase": lambda value, wanted: value.lower() == wanted.lower(),
        "StringLike": lambda value, wanted: fnmatch.fnmatchcase(value, wanted),
        "StringNotLike": lambda value, wanted: not fnmatch.fnmatchcase(value, wanted),
        "Bool": lambda value, wanted: value.lower() == str(wanted).lower(),
    }
    if base not in tests or set_operator not in ("", "ForAllValues", "ForAnyValue"):
        raise CannotTell(f"the local IAM does not evaluate the condition operator {operator}")
    if key not in KNOWN_CONDITION_KEYS:
        raise CannotTell(f"the local IAM does not know the condition key {key}")
    negated = base.startswith("StringNot")
    wanted = [str(w) for w in listed(expected)]

    def one(value):
        if negated:
            return all(tests[base](value, w) for w in wanted)
        return any(tests[base](value, w) for w in wanted)

    values = context.get(key)
    if set_operator == "ForAllValues":
        return all(one(value) for value in values or [])
    if set_operator == "ForAnyValue":
        return any(one(value) for value in values or [])
    if values is None:
        return if_exists
    return all(one(value) for value in values)


KNOWN_CONDITION_KEYS = {"dynamodb:LeadingKeys"}


def statement_applies(statement, call):
    if "Action" in statement and not matches_any(statement["Action"], call.action, case_sensitive=False):
        return False
    if "NotAction" in statement and matches_any(statement["NotAction"], call.action, case_sensitive=False):
        return False
    if "Resource" in statement and not matches_any(statement["Resource"], call.resource):
        return False
    if "NotResource" in statement and matches_any(statement["NotResource"], call.resource):
        return False
    for operator, keys in statement.get("Condition", {}).items():
        for key, expected in keys.items():
            if not condition_holds(operator, key, expected, call.context):
                return False
    return True


def decision(statements, call):
    """None when allowed; else why not, in AWS's words."""
    allowed = False
    for statement in statements:
        if statement_applies(statement, call):
            if statement.get("Effect") == "Deny":
                return "with an explicit deny in an identity-based policy"
            allowed = True
    return None if allowed else f"because no identity-based policy allows the {call.action} action"


# -- the middleware -------------------------------------------------------------------------------


class MotoBackends:
    """What only moto knows: a table's (or index's) partition key, a secret's ARN."""

    def hash_key(self, region, table_name, index_name=None):
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends[ACCOUNT][region].tables.get(table_name)
        if table is None:
            return None
        if index_name:
            for index in list(table.global_indexes) + list(table.indexes):
                if index.name == index_name:
                    return next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
            return None
        return table.hash_key_attr

    def secret_arn(self, region, secret_id):
        from moto.secretsmanager.models import secretsmanager_backends

        secret = secretsmanager_backends[ACCOUNT][region].secrets.get(secret_id)
        return secret.arn if secret is not None else None


def principal_key(environ):
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/", authorization)
    if match:
        return match.groups()
    credential = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
    if credential:
        key, _, region, service, _ = credential[0].split("/")
        return key, region, service
    return None, None, None


class LocalIam:
    """WSGI middleware: a request signed with a known principal's key runs only if its policy allows it."""

    def __init__(self, app, policy_file, denial_log, backends=None):
        self.app = app
        self.policy_file = policy_file
        self.denial_log = denial_log
        self.backends = backends or MotoBackends()
        self.lock = threading.Lock()
        self.loaded = (None, {})

    def principals(self):
        # Looked at on each request, read again when it changed: the stacks are made after moto
        # starts (by scripts/run, or by each test that makes one), and write the file whole.
        try:
            changed = os.stat(self.policy_file).st_mtime_ns
        except FileNotFoundError:
            return {}
        if self.loaded[0] != changed:
            with open(self.policy_file, encoding="utf-8") as handle:
                self.loaded = (changed, json.load(handle)["principals"])
        return self.loaded[1]

    def __call__(self, environ, start_response):
        key, region, service = principal_key(environ)
        principal = self.principals().get(key) if key else None
        if principal is None:
            return self.app(environ, start_response)
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        body = b""
        # An object's body (S3, perhaps chunked) is passed on untouched; what names the resources is read.
        if service != "s3" or (environ["REQUEST_METHOD"] == "POST" and "delete" in query):
            # A chunked body ends where the server says (input_terminated); else it is CONTENT_LENGTH
            # bytes, and reading on would wait on the connection.
            stream = environ["wsgi.input"]
            body = stream.read() if environ.get("wsgi.input_terminated") \
                else stream.read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        request = Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"), query, headers, body, service,
                          region)
        try:
            for call in calls_of(request, self.backends):
                why = decision(principal["statements"], call)
                if why is not None:
                    return self.deny(request, principal, call, why, start_response)
        except (CannotTell, KeyError) as error:
            reason = str(error) if isinstance(error, CannotTell) else f"the request lacks {error}"
            return self.deny(request, principal, Call(f"{service}:{request.operation()}", "?"), reason, start_response)
        return self.app(environ, start_response)

    def deny(self, request, principal, call, why, start_response):
        message = (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{principal['role']}/{principal['name']} is not "
                   f"authorized to perform: {call.action} on resource: {call.resource} {why} "
                   f"(the grant belongs in {principal.get('policy', principal['role'])}, infra/template.yaml)")
        with self.lock, open(self.denial_log, "a", encoding="utf-8") as log:
            log.write(json.dumps({"principal": principal["name"], "policy": principal.get("policy", principal["role"]),
                                  "action": call.action, "resource": call.resource, "message": message}) + "\n")
        status, headers, body = denial_response(request, message)
        start_response(status, headers)
        return [body]


def denial_response(request, message):
    """AccessDenied in the request's own protocol, as the SDKs parse it."""
    if request.headers.get("x-amz-target"):
        code = "AccessDenied" if request.service == "sqs" else "AccessDeniedException"
        body = json.dumps({"__type": code, "message": message}).encode()
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"),
                                   ("x-amzn-query-error", "AccessDenied;Sender")], body
    if request.headers.get("smithy-protocol") == "rpc-v2-cbor":
        body = cbor_text_map({"__type": "AccessDenied", "message": message})
        return "403 Forbidden", [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")], body
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if request.service == "s3":
        body = f"<Error><Code>AccessDenied</Code><Message>{escaped}</Message></Error>".encode()
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                f"<Message>{escaped}</Message></Error></ErrorResponse>").encode()
    return "403 Forbidden", [("Content-Type", "application/xml")], body


def cbor_text_map(mapping):
    """A CBOR map of text to text (RFC 8949, major types 5 and 3): all an error body needs."""

    def head(major, length):
        if length < 24:
            return bytes([major << 5 | length])
        for size, marker in ((1, 24), (2, 25), (4, 26)):
            if length < 1 << (8 * size):
                return bytes([major << 5 | marker]) + length.to_bytes(size, "big")
        raise ValueError("too long")

    out = head(5, len(mapping))
    for key, value in mapping.items():
        for text in (key, value):
            encoded = text.encode()
            out += head(3, len(encoded)) + encoded
    return out
