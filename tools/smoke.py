"""Smoke check of the local stack: send the sample webhooks of events/webhook-receiver/ through the
receiver's local Function URL, as Tripletex would, and check each answer and what reached the queues.

Usage: smoke.py --receiver-url URL --lambda-port PORT --stack .local/stack.json
       smoke.py --stack .local/stack.json --peek      (print what the queues hold)
Needs AWS_ENDPOINT_URL (and the local credentials) in the environment, as scripts/run sets them.
"""

import argparse
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import boto3

EVENTS = "events/webhook-receiver"
# file -> the status the receiver must answer
EXPECTED = {
    "function-url-product-create": 200,
    "function-url-order-delete": 200,
    "function-url-invoice-charged": 200,
    "function-url-customer-update": 200,
    "function-url-voucher-create": 200,
    "function-url-forged-header": 401,
    "function-url-forged-hmac": 401,
    "function-url-not-an-envelope": 202,
    "function-url-get-method": 405,
}
SKIPPED_HEADERS = {"host", "content-length", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}


def post_as_tripletex(receiver_url, event):
    """Replay a Function URL event as the HTTP request it describes."""
    url = receiver_url.rstrip("/") + event["rawPath"]
    if event.get("rawQueryString"):
        url += "?" + event["rawQueryString"]
    body = event.get("body")
    request = urllib.request.Request(
        url,
        data=body.encode() if body is not None else None,
        method=event["requestContext"]["http"]["method"],
        headers={k: v for k, v in event["headers"].items() if k not in SKIPPED_HEADERS},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def cargo_lambda_invoke(port, function, data_file):
    """`cargo lambda invoke --data-file`, exactly as a person would run it."""
    output = subprocess.run(
        ["cargo", "lambda", "invoke", function, "-A", "127.0.0.1", "-P", str(port), "--data-file", data_file],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    return json.loads(output)["statusCode"]


def drain(sqs, url):
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                    WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return messages
        messages += batch


def attributes(message):
    return {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--receiver-url")
    parser.add_argument("--lambda-port", type=int)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--peek", action="store_true")
    args = parser.parse_args()

    with open(args.stack, encoding="utf-8") as handle:
        resources = json.load(handle)["resources"]
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    queue_url = resources["WebhookQueue"]["url"]
    quarantine_url = resources["QuarantineQueue"]["url"]

    if args.peek:
        for name, url in (("queue", queue_url), ("quarantine", quarantine_url)):
            for message in drain(sqs, url):
                print(name, json.dumps(attributes(message)), message["Body"])
        return 0

    failures = []
    for name, expected in EXPECTED.items():
        with open(f"{EVENTS}/{name}.json", encoding="utf-8") as handle:
            event = json.load(handle)
        status = post_as_tripletex(args.receiver_url, event)
        print(f"  POST {name}: {status}")
        if status != expected:
            failures.append(f"{name}: answered {status}, expected {expected}")
    status = cargo_lambda_invoke(args.lambda_port, "webhook-receiver", f"{EVENTS}/function-url-product-update.json")
    print(f"  cargo lambda invoke --data-file function-url-product-update.json: {status}")
    if status != 200:
        failures.append(f"invoke product-update: answered {status}, expected 200")

    queued = drain(sqs, queue_url)
    quarantined = drain(sqs, quarantine_url)
    events = sorted(attributes(m)["event"] for m in queued)
    expected_events = sorted(["product.create", "order.delete", "invoice.charged", "customer.update",
                              "voucher.create", "product.update"])
    tenants = sorted({attributes(m)["tenant"] for m in queued})
    print(f"  queued: {events} for tenants {tenants}; quarantined: {len(quarantined)}")
    if events != expected_events:
        failures.append(f"queued events {events}, expected {expected_events}")
    if tenants != ["basic-demo", "default", "hmac-demo", "query-demo"]:
        failures.append(f"tenants {tenants}")
    if len(quarantined) != 1:
        failures.append(f"{len(quarantined)} quarantined messages, expected 1")

    if failures:
        print("smoke check FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("smoke check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
