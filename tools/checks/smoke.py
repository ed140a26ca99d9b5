"""Smoke check of the local stack: send the sample webhooks of events/webhook-receiver/ through the
receiver's local Function URL, as Tripletex would, check each answer, and check that the poller and the
worker turned them into the right items of the objects table (and the bad ones into quarantine).

It also checks the keeper against the Tripletex simulator: the local ticker's first run subscribes the
template's events at the receiver; a subscription Tripletex disabled is re-enabled by
`cargo lambda invoke subscription-keeper --data-file events/subscription-keeper/scheduler-tick.json`,
and its resync window is recorded. Then the object sync answers the keeper's requests
(`cargo lambda invoke object-sync --data-file events/object-sync/scheduler-pending.json`): every company's
backfill runs to done and lists what Tripletex has, the sample webhooks' objects that Tripletex does not have
are tombstoned, every request is marked done; and a backfill on demand runs to done. (Objects that exist
before the subscriptions, which only a backfill can bring, are the chaos run's part.)

Usage: python3 -m tools.checks.smoke --receiver-url URL --lambda-port PORT --stack .local/stack.json --simulator URL
Needs AWS_ENDPOINT_URL (and the local credentials) in the environment, as scripts/run sets them.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import boto3

from tools.checks.pg import psql

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


def cargo_lambda_invoke_raw(port, function, data_file):
    """`cargo lambda invoke --data-file`, exactly as a person would run it; the function's answer."""
    output = subprocess.run(
        ["cargo", "lambda", "invoke", function, "-A", "127.0.0.1", "-P", str(port), "--data-file", data_file],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    return json.loads(output)


def cargo_lambda_invoke(port, function, data_file):
    return cargo_lambda_invoke_raw(port, function, data_file)["statusCode"]


# The items the sample webhooks must leave in the table: key -> (version, deleted).
EXPECTED_ITEMS = {
    "default#product#1001": (3, False),  # create v0 then update v3
    "default#order#2002": (None, True),  # a tombstone
    "basic-demo#invoice#3003": (1, False),
    "query-demo#customer#4004": (8, False),
    "hmac-demo#voucher#5005": (0, False),
    # From `cargo lambda invoke webhook-worker` with events/webhook-worker/sqs-mixed-batch.json:
    "default#product#101": (1, False),
    "default#customer#106": (None, False),
}


def table_items(dynamodb, table):
    items, start = [], {}
    while True:
        page = dynamodb.scan(TableName=table, ConsistentRead=True, **start)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return {item["pk"]["S"]: item for item in items}
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def summary(item):
    version = int(item["version"]["N"]) if "version" in item else None
    return version, item["deleted"]["BOOL"]


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


def simulator(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


def check_keeper(args, stack, dynamodb):
    failures = []
    resources = stack["resources"]
    environment = stack["functions"]["subscription-keeper"]
    events = sorted(environment["KEEPER_EVENTS"].split(","))
    receiver = environment["RECEIVER_URL"]

    # The ticker runs the keeper soon after start: every desired event gets a subscription of ours.
    deadline = time.monotonic() + 300
    while True:
        subscriptions = simulator(args.simulator, "GET", "/_sim/subscriptions")["values"]
        ours = [s for s in subscriptions if s["targetUrl"] == receiver]
        if sorted(s["event"] for s in ours) == events or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(f"  keeper (scheduled): {len(ours)} subscriptions of ours in the simulator, {len(events)} desired")
    if sorted(s["event"] for s in ours) != events:
        return failures + [f"keeper created {sorted(s['event'] for s in ours)}, expected {events}"]
    if any(s["status"] != "ACTIVE" or not s.get("authHeaderValue") or "id,version" not in s["fields"] + ",id,version"
           for s in ours):
        failures.append("a created subscription is not active with its auth header value")

    dry = cargo_lambda_invoke_raw(args.lambda_port, "subscription-keeper", "events/subscription-keeper/manual-dry-run.json")
    print(f"  cargo lambda invoke subscription-keeper --data-file manual-dry-run.json: {dry.get('totals')}")
    default_company = next((c for c in dry.get("companies", []) if c["tenant"] == "default"), {})
    if dry.get("dryRun") is not True or len(default_company.get("leftAlone", [])) != len(events):
        failures.append(f"dry run report is not as expected: {dry}")

    disabled = ours[0]
    simulator(args.simulator, "PUT", f"/_sim/subscriptions/{disabled['id']}/status", {"status": "DISABLED_TOO_MANY_ERRORS"})
    tick = cargo_lambda_invoke_raw(args.lambda_port, "subscription-keeper", "events/subscription-keeper/scheduler-tick.json")
    print(f"  cargo lambda invoke subscription-keeper --data-file scheduler-tick.json: {tick.get('totals')}")
    after = [s for s in simulator(args.simulator, "GET", "/_sim/subscriptions")["values"] if s["id"] == disabled["id"]]
    if tick.get("totals", {}).get("reEnabled") != 1 or after[0]["status"] != "ACTIVE":
        failures.append(f"the disabled subscription was not re-enabled: {tick}")
    resync = dynamodb.scan(TableName=resources["ResyncTable"]["name"])["Items"]
    re_enabled = [i for i in resync if i.get("reason", {}).get("S") == "re_enabled"]
    created = [i for i in resync if i.get("reason", {}).get("S") == "created"]
    print(f"  resync requests recorded: {len(created)} backfills (one per created subscription), "
          f"re-enabled {[(i['event']['S'], i['windowFrom']['S']) for i in re_enabled]}")
    if [i["subscriptionId"]["N"] for i in re_enabled] != [str(disabled["id"])]:
        failures.append(f"resync table holds {re_enabled}, expected one re-enable request for {disabled['id']}")
    if len(created) < len(ours):
        failures.append(f"{len(created)} backfill requests, fewer than the {len(ours)} subscriptions created")
    return failures


def wait_for_runs(dynamodb, table, runs, timeout=300):
    """The sync runs' records once none is running (the poller feeds the sync its tasks)."""
    deadline = time.monotonic() + timeout
    while True:
        records = [dynamodb.get_item(TableName=table, Key={"pk": {"S": f"run#{r['tenant']}"}, "sk": {"S": r["runId"]}},
                                     ConsistentRead=True).get("Item") for r in runs]
        if all(r and r["state"]["S"] != "running" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(1)


def check_sync(args, stack, dynamodb):
    """The keeper's requests answered: backfills bring what existed before the subscriptions, and the
    check of the copy tombstones what Tripletex does not have (the sample webhooks' made-up objects)."""
    failures = []
    resources = stack["resources"]
    seeded = simulator(args.simulator, "POST", "/_sim/objects", {"companyId": 100, "type": "customer", "count": 3})
    answer = cargo_lambda_invoke_raw(args.lambda_port, "object-sync", "events/object-sync/scheduler-pending.json")
    runs = answer.get("runs", [])
    print(f"  cargo lambda invoke object-sync --data-file scheduler-pending.json: "
          f"{[(r['tenant'], r['mode'], len(r['types']), r['answers']) for r in runs]}")
    if sorted(r["tenant"] for r in runs) != ["default", "hmac-demo"]:
        return failures + [f"the pending tick started {runs}, expected a run per company"]
    records = wait_for_runs(dynamodb, resources["SyncTable"]["name"], runs)
    states = sorted((r["pk"]["S"], r["state"]["S"]) for r in records if r)
    print(f"  sync runs: {states}")
    if any(state != "done" for _, state in states) or len(states) != 2:
        failures.append(f"sync runs ended {states}, expected done")
    # What the runs queued reaches the table through the worker a moment later.
    deadline = time.monotonic() + 120
    while True:
        items = table_items(dynamodb, resources["ObjectsTable"]["name"])
        missing = [f"default#customer#{i}" for i in seeded["ids"]
                   if items.get(f"default#customer#{i}", {}).get("deleted", {}).get("BOOL", True)]
        alive = [key for key in ("default#product#1001", "hmac-demo#voucher#5005")
                 if not items.get(key, {}).get("deleted", {}).get("BOOL")]
        if not (missing or alive) or time.monotonic() > deadline:
            break
        time.sleep(1)
    failures += [f"{key} is in Tripletex but not in the copy" for key in missing]
    failures += [f"{key} is not in Tripletex but was not tombstoned" for key in alive]
    default_run = next(r for r in records if r and r["pk"]["S"] == "run#default")
    if int(default_run.get("customer:listed", {}).get("N", "0")) < len(seeded["ids"]):
        failures.append(f"the backfill listed fewer customers than Tripletex has: {default_run}")
    print(f"  the backfills listed every customer (the {len(seeded['ids'])} made just now included) and "
          f"tombstoned the sample objects Tripletex does not have")
    # The keeper's requests: its table also keeps each company's last run, which has no state.
    ledger = [i for i in dynamodb.scan(TableName=resources["ResyncTable"]["name"])["Items"] if "state" in i]
    undone = [i for i in ledger if i["state"]["S"] != "DONE"]
    if undone:
        failures.append(f"{len(undone)} resync requests not done: {undone[:2]}")
    manual = cargo_lambda_invoke_raw(args.lambda_port, "object-sync", "events/object-sync/manual-backfill-customers.json")
    records = wait_for_runs(dynamodb, resources["SyncTable"]["name"], manual.get("runs", []))
    print(f"  cargo lambda invoke object-sync --data-file manual-backfill-customers.json: "
          f"{[(r['sk']['S'], r['state']['S'], r.get('customer:fetched', {}).get('N', '0')) for r in records if r]}")
    if [r["state"]["S"] for r in records if r] != ["done"]:
        failures.append(f"the manual backfill ended {records}")
    return failures


CLI = "target/debug/tripletex-webhooks"
# The local accountant key's client companies (infra/local/tripletex-simulator.json).
CLIENT, OTHER_CLIENT = 301, 302


def cli(stack_path, *args):
    """The operator's command on the local stack, its JSON answer and exit status."""
    # As the operator, whose policy the local IAM holds it to (scripts/run's own key is the stack's).
    environment = dict(os.environ, AWS_ACCESS_KEY_ID="local-operator")
    result = subprocess.run([CLI, f"--local={stack_path}", "--json", *args], capture_output=True, text=True,
                            timeout=900, env=environment)
    try:
        return json.loads(result.stdout), result.returncode
    except json.JSONDecodeError:
        return {"stdout": result.stdout, "stderr": result.stderr[-500:]}, result.returncode


def derived_value(tenant, purpose):
    """What a registry company's subscriptions carry for `purpose` (`header`, `hmac`): hex(HMAC-SHA256(scope
    key, purpose + ":" + tenant)), the scope key being HMAC-SHA256(master, "scope:" + scope)."""
    with open("infra/local/receiver-auth.json", encoding="utf-8") as handle:
        derived = json.load(handle)["derived"]
    scope_key = hmac.new(derived["masters"][0].encode(), f"scope:{derived['scope']}".encode(), hashlib.sha256).digest()
    return hmac.new(scope_key, f"{purpose}:{tenant}".encode(), hashlib.sha256).hexdigest()


def signed_delivery_headers(tenant, body):
    """A derived company's delivery as Tripletex sends it: its header value, and (derived credentials
    are signed by default) `x-request-signature` = base64(HMAC-SHA512(secret, idempotency key + "&" + body))."""
    key = f"smoke-{time.time_ns()}"
    signature = hmac.new(derived_value(tenant, "hmac").encode(), key.encode() + b"&" + body, hashlib.sha512).digest()
    return {"Content-Type": "application/json", "X-Tripletex-Webhook-Token": derived_value(tenant, "header"),
            "idempotency-key": key, "x-request-signature": base64.b64encode(signature).decode()}


def tenant_items(dynamodb, table, tenant):
    return {key: item for key, item in table_items(dynamodb, table).items() if key.startswith(f"{tenant}#")}


def check_company_life(args, stack, dynamodb):
    """A client company's whole life through the operator's CLI and the real functions: discovered under
    the accountant key, added (its backfill followed to the end, its copy exact), its webhooks flowing,
    then removed with --purge (our subscriptions gone from Tripletex, its copy gone, another company's
    untouched, a late webhook refused)."""
    failures = []
    table = stack["resources"]["ObjectsTable"]["name"]
    tenant = str(CLIENT)
    seeded = simulator(args.simulator, "POST", "/_sim/objects", {"companyId": CLIENT, "type": "customer", "count": 4})
    found, code = cli(args.stack, "companies", "discover", "--credential", "firm")
    print(f"  companies discover --credential firm: {[(c.get('companyId'), c.get('tenant')) for c in found]}")
    if code != 0 or [c.get("companyId") for c in found] != [CLIENT, OTHER_CLIENT]:
        return failures + [f"discover answered {code}: {found}"]
    added, code = cli(args.stack, "companies", "add", tenant, "--credential", "firm", "--timeout-seconds", "300")
    verdict = added[0].get("verdict") if isinstance(added, list) and added else added
    print(f"  companies add {tenant} --credential firm: {verdict}")
    if code != 0 or added[0].get("state") != "active" or "backfill done" not in str(verdict):
        return failures + [f"add answered {code}: {added}"]
    failures += check_complete_means_stored(dynamodb, table, tenant, seeded["ids"], verdict)
    receiver = stack["functions"]["subscription-keeper"]["RECEIVER_URL"].rstrip("/")
    ours = [s for s in simulator(args.simulator, "GET", "/_sim/subscriptions")["values"]
            if s.get("_company") == CLIENT and s["targetUrl"].startswith(f"{receiver}/t/{tenant}")]
    if not ours or any(s.get("authHeaderValue") != derived_value(tenant, "header") for s in ours):
        failures.append(f"{tenant}'s subscriptions do not carry its derived credential: {ours}")
    changed = simulator(args.simulator, "POST", "/_sim/changes",
                        {"companyId": CLIENT, "type": "customer", "verb": "update", "id": seeded["ids"][0]})
    key = f"{tenant}#customer#{seeded['ids'][0]}"
    deadline = time.monotonic() + 120
    while int(table_items(dynamodb, table).get(key, {}).get("version", {}).get("N", "0")) < 1:
        if time.monotonic() > deadline:
            failures.append(f"the webhook of {key}'s update never reached the copy ({changed})")
            break
        time.sleep(0.5)
    else:
        print(f"  a webhook for {tenant} flows: {key} at version "
              f"{table_items(dynamodb, table)[key]['version']['N']}")
    others_before = len(table_items(dynamodb, table)) - len(tenant_items(dynamodb, table, tenant))
    removed, code = cli(args.stack, "companies", "remove", tenant, "--purge")
    print(f"  companies remove {tenant} --purge: {removed.get('verdict')}")
    if code != 0 or removed.get("state") != "removed":
        failures.append(f"remove answered {code}: {removed}")
    left = [s for s in simulator(args.simulator, "GET", "/_sim/subscriptions")["values"] if s.get("_company") == CLIENT]
    copy = tenant_items(dynamodb, table, tenant)
    others_after = len(table_items(dynamodb, table)) - len(copy)
    print(f"  after: {len(left)} subscriptions in {tenant}, {len(copy)} items of {tenant}, "
          f"other companies' items {others_before} -> {others_after}")
    if left or copy or others_after != others_before:
        failures.append(f"remove left {len(left)} subscriptions and {len(copy)} items; others {others_before} -> "
                        f"{others_after}")
    late_body = json.dumps({"subscriptionId": 1, "event": "customer.update", "id": seeded["ids"][1],
                            "value": {"id": seeded["ids"][1], "version": 9}}).encode()
    late = urllib.request.Request(f"{args.receiver_url.rstrip('/')}/t/{tenant}", method="POST", data=late_body,
                                  headers=signed_delivery_headers(tenant, late_body))
    deadline = time.monotonic() + 30  # the receiver's registry cache (RECEIVER_AUTH_CACHE_TTL_SECONDS locally)
    while True:
        try:
            with urllib.request.urlopen(late, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        if status == 410 or time.monotonic() > deadline:
            break
        time.sleep(1)
    time.sleep(2)
    print(f"  a late webhook for {tenant}: {status}; items of {tenant} after it: "
          f"{len(tenant_items(dynamodb, table, tenant))}")
    if status != 410 or tenant_items(dynamodb, table, tenant):
        failures.append(f"a late webhook for the removed company answered {status}")
    # Purged and added again, it comes back whole: the sync's records of it went with the purge.
    added, code = cli(args.stack, "companies", "add", tenant, "--credential", "firm", "--timeout-seconds", "300")
    verdict = added[0].get("verdict") if isinstance(added, list) and added else added
    print(f"  companies add {tenant} again: {verdict}")
    if code != 0 or "backfill done" not in str(verdict):
        failures.append(f"adding {tenant} again answered {code}: {added}")
    else:
        failures += check_complete_means_stored(dynamodb, table, tenant, seeded["ids"], verdict)
    unreachable, code = cli(args.stack, "companies", "add", "999999", "--credential", "firm")
    listed, _ = cli(args.stack, "companies", "list")
    registered = [c.get("tenant") for c in listed] if isinstance(listed, list) else listed
    print(f"  companies add 999999 (a company the key does not reach): exit {code}; registered: {registered}")
    if code != 2 or "999999" in registered:
        failures.append(f"a company the key does not reach was not refused: {code} {unreachable}; {registered}")
    failures += check_refused_company_removed(args)
    return failures


def check_refused_company_removed(args):
    """A registered company whose access the key lost (Tripletex answers 403) is still removed, with
    what could not be deleted there said."""
    firm = {"companyId": 300, "consumerToken": "local-dev-consumer-token",
            "employeeToken": "local-dev-accountant-token"}
    tenant = str(OTHER_CLIENT)
    added, code = cli(args.stack, "companies", "add", tenant, "--credential", "firm", "--no-wait")
    if code != 0:
        return [f"adding {tenant} answered {code}: {added}"]
    simulator(args.simulator, "POST", "/_sim/companies", {**firm, "clientCompanyIds": [CLIENT]})
    simulator(args.simulator, "POST", "/_sim/sessions/expire", {})
    try:
        removed, code = cli(args.stack, "companies", "remove", tenant)
    finally:
        simulator(args.simulator, "POST", "/_sim/companies", {**firm, "clientCompanyIds": [CLIENT, OTHER_CLIENT]})
    verdict = removed.get("verdict") if isinstance(removed, dict) else removed
    print(f"  companies remove {tenant} (its access withdrawn): exit {code}: {verdict}")
    if code != 0 or removed.get("state") != "removed" or "refuses this key" not in str(verdict):
        return [f"a company Tripletex refuses was not removed: {code} {removed}"]
    return []


def check_complete_means_stored(dynamodb, table, tenant, ids, verdict):
    """A backfill that says the copy is complete has every object in the table at once; one that
    says it is not yet complete has them a moment later (the worker was slow)."""
    complete = "in the copy: complete" in str(verdict)
    deadline = time.monotonic() + (0 if complete else 120)
    while True:
        copy = tenant_items(dynamodb, table, tenant)
        missing = [i for i in ids if f"{tenant}#customer#{i}" not in copy]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(1)
    print(f"  the copy of {tenant}: {len(copy)} items, {len(ids)} customers in Tripletex"
          f"{' (said complete: read at once)' if complete else ' (said not yet complete)'}")
    if missing and complete:
        return [f"companies add said {tenant}'s copy was complete, but customers {missing} are not in it"]
    if missing:
        return [f"customers {missing} of {tenant} are not in the copy after its backfill"]
    return []


def postings(target_bytes, base):
    """Voucher lines as Tripletex writes them with fields=*: an {id, url} reference each, ~70 bytes."""
    count = target_bytes // len(json.dumps({"id": 10_000_000, "url": f"{base}/v2/ledger/posting/10000000"}))
    return [{"id": 10_000_000 + i, "url": f"{base}/v2/ledger/posting/{10_000_000 + i}"} for i in range(count)]


def post_to_receiver(receiver_url, body):
    """A body posted to the default company's receiver URL with its header token; the status."""
    request = urllib.request.Request(receiver_url, data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-Tripletex-Webhook-Token": "local-dev-header-token"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_for_item(dynamodb, table, key, version, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
        if item and int(item.get("version", {}).get("N", "-1")) >= version:
            return item
        time.sleep(0.5)
    return None


def check_large_objects(args, stack, dynamodb):
    """Objects of any size through the real functions: a 1 MiB and a 5 MiB voucher delivered by the
    simulator's webhooks (receiver, claim check, worker, value by pointer) and two more fetched by the
    sync (a webhook that never came), each shown whole by `show`; a body over the receiver's limit still
    answered 413; a quarantined body over SQS's limit readable in full by `quarantine`."""
    failures = []
    table = stack["resources"]["ObjectsTable"]["name"]
    base = args.simulator
    made = {}
    for mib, deliver in ((1, True), (5, True), (1, False), (5, False)):
        key = simulator(base, "POST", "/_sim/changes",
                        {"companyId": 100, "type": "voucher", "verb": "create", "deliver": deliver,
                         "fields": {"postings": postings(mib * 1024 * 1024, base)}})
        made[key["id"]] = (mib, "webhook" if deliver else "sync")
    resync, code = cli(args.stack, "resync", "--company", "default", "--type", "voucher", "--timeout-seconds", "600")
    print(f"  resync --company default --type voucher (the vouchers no webhook announced): exit {code}")
    if code != 0:
        failures.append(f"the voucher resync answered {code}: {str(resync)[:300]}")
    for object_id, (mib, path) in made.items():
        key = f"default#voucher#{object_id}"
        item = wait_for_item(dynamodb, table, key, 0)
        claim = (item or {}).get("value", {}).get("M", {}).get("claimCheck", {}).get("S")
        shown, code = cli(args.stack, "show", "default", "voucher", str(object_id))
        value = (shown.get("stored") or {}).get("value") or {}
        whole = len(value.get("postings", [])) == len(postings(mib * 1024 * 1024, base))
        size = len(json.dumps(value, separators=(",", ":")))
        print(f"  a {mib} MiB voucher by {path}: stored by pointer {claim}, shown whole: {whole} "
              f"({size:,} bytes)")
        if not (item and claim and whole):
            failures.append(f"the {mib} MiB voucher {object_id} ({path}) is not stored whole by pointer: "
                            f"item {bool(item)}, claim {claim}, whole {whole}")
    limit = int(stack["functions"]["webhook-receiver"]["MAX_BODY_BYTES"])
    status = post_to_receiver(args.receiver_url, b" " * (limit + 1))
    print(f"  a body of {limit + 1:,} bytes (over MAX_BODY_BYTES): {status}")
    if status != 413:
        failures.append(f"a body over the limit answered {status}, expected 413")
    not_an_envelope = json.dumps({"not": "an envelope", "notes": "n" * (300 * 1024)}).encode()
    status = post_to_receiver(args.receiver_url, not_an_envelope)
    listed, _ = cli(args.stack, "quarantine")
    readable = [m for m in listed if m.get("body", "").encode() == not_an_envelope and "bodyClaim" in m["attributes"]]
    print(f"  a {len(not_an_envelope):,}-byte body that is not an envelope: {status}, quarantined by claim check "
          f"and listed whole by `quarantine`: {bool(readable)}")
    if status != 202 or not readable:
        failures.append(f"the large non-envelope answered {status}; listed whole: {bool(readable)}")
    return failures


def check_forget(args, stack, dynamodb):
    """`forget` on the local stack: a customer's value gone from the table, the payload bucket and the
    quarantine; a redelivered webhook of the same version and the next reconciliation leave it erased; a
    newer version is stored again."""
    failures = []
    table = stack["resources"]["ObjectsTable"]["name"]
    made = simulator(args.simulator, "POST", "/_sim/changes",
                     {"companyId": 100, "type": "customer", "verb": "create",
                      "fields": {"name": "Kari Nordmann", "email": "kari@example.invalid",
                                 "description": "d" * (450 * 1024)}})
    object_id = made["id"]
    key = f"default#customer#{object_id}"
    item = wait_for_item(dynamodb, table, key, 0)
    version = int(item["version"]["N"]) if item else None
    # A body the receiver quarantines (its id is not a number) that names the customer.
    status = post_to_receiver(args.receiver_url, json.dumps(
        {"event": "customer.update", "id": str(object_id), "value": {"name": "Kari Nordmann"}}).encode())
    forgotten, code = cli(args.stack, "forget", "default", "customer", str(object_id))
    print(f"  forget default customer {object_id} (quarantined beside it: {status}): {forgotten}")
    if code != 0 or not forgotten.get("valueErased") or forgotten.get("payloadObjectsDeleted", 0) < 2 \
            or forgotten.get("quarantinedDeleted") != 1 or forgotten.get("version") != version:
        failures.append(f"forget answered {code}: {forgotten}")
    sent, code = cli(args.stack, "send", "customer.update", str(object_id))
    shown, _ = cli(args.stack, "show", "default", "customer", str(object_id))
    stored = shown.get("stored") or {}
    print(f"  the same version redelivered (send): {sent.get('progress')}; value {stored.get('value')}")
    if stored.get("value") is not None or stored.get("version") != version:
        failures.append(f"a redelivered webhook brought the forgotten value back: {stored}")
    resync, code = cli(args.stack, "resync", "--company", "default", "--type", "customer", "--timeout-seconds", "300")
    time.sleep(3)  # what the run queued reaches the worker a moment later
    shown, _ = cli(args.stack, "show", "default", "customer", str(object_id))
    stored = shown.get("stored") or {}
    print(f"  the next reconciliation (exit {code}): value {stored.get('value')}, version {stored.get('version')}")
    if stored.get("value") is not None or not stored.get("forgottenAt"):
        failures.append(f"the reconciliation brought the forgotten value back: {stored}")
    simulator(args.simulator, "POST", "/_sim/changes",
              {"companyId": 100, "type": "customer", "verb": "update", "id": object_id,
               "fields": {"description": "changed after the request"}})
    item = wait_for_item(dynamodb, table, key, (version or 0) + 1)
    print(f"  a newer version from Tripletex: stored again at {item and item['version']['N']}")
    if not item or "value" not in item:
        failures.append(f"a newer version was not stored after forget: {item}")
    return failures


def check_mirror(args, stack, dynamodb):
    """The Postgres mirror end to end: every item of the table is a row at the same version and state
    (the stream, the local poller, the postgres-mirror function, PostgreSQL), the large voucher whole,
    the forgotten customer's value gone from the row and its history, and a view answers in SQL."""
    failures = []
    items = table_items(dynamodb, stack["resources"]["ObjectsTable"]["name"])
    expected = {key: (item.get("version", {}).get("N"), item["deleted"]["BOOL"]) for key, item in items.items()}
    deadline = time.monotonic() + 120
    while True:
        rows = {f"{t}#{ty}#{i}": (v or None, d == "t") for t, ty, i, v, d in
                psql(args.mirror_url, "SELECT tenant, type, id, version, deleted FROM tripletex.object")}
        differ = [key for key in expected if rows.get(key) != expected[key]]
        if not differ or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(f"  postgres mirror: {len(rows)} rows for {len(expected)} items, {len(differ)} differ")
    if differ:
        failures.append(f"the mirror differs from the table for {len(differ)} items, e.g. "
                        f"{[(k, rows.get(k), expected[k]) for k in differ[:3]]}")
    lines = psql(args.mirror_url, "SELECT id, jsonb_array_length(value->'postings') FROM tripletex.object "
                                  "WHERE type = 'voucher' AND jsonb_typeof(value->'postings') = 'array' ORDER BY 2 DESC LIMIT 1")
    forgotten = psql(args.mirror_url, "SELECT count(*) FROM tripletex.object_version h JOIN tripletex.object o "
                                      "USING (tenant, type, id) WHERE o.forgotten_at IS NOT NULL "
                                      "AND h.version <= o.version AND h.value IS NOT NULL")
    view = psql(args.mirror_url, "SELECT count(*) FROM tripletex.customer WHERE tenant = 'default'")
    print(f"  psql: the largest voucher's postings {lines}; forgotten values left in the history {forgotten}; "
          f"default's customers in the view {view}")
    if not lines or int(lines[0][1]) < 60_000:
        failures.append(f"the mirror does not hold the 5 MiB voucher whole: {lines}")
    if forgotten != [["0"]]:
        failures.append(f"the history keeps a forgotten value: {forgotten}")
    return failures


# What the smoke's webhooks must have come to, in the journal (`tripletex-webhooks log`): each answer
# class of the receiver, and each kind of settlement at the worker.
JOURNALED_AT_THE_RECEIVER = {"queued", "quarantined", "unauthorized", "gone", "too_large", "method_not_allowed"}
JOURNALED_AT_THE_WORKER = {"accepted", "duplicate", "stale", "after_delete", "quarantined"}


def check_log(args):
    """The receipt journal over the smoke's own calls: `log` lists each outcome at its hop and exits 1
    (a 401 needs a person); one stored webhook's request id is followed by `log --request` to its
    version, which `show` and the mirror's history name too."""
    failures = []
    # The worker's sample batch once more: what the copy holds now makes its records duplicates,
    # stale and after a delete.
    cargo_lambda_invoke_raw(args.lambda_port, "webhook-worker", "events/webhook-worker/sqs-mixed-batch.json")
    # And through the receiver, a version older than the one the copy holds (customer 4004 is at 8).
    with open(f"{EVENTS}/function-url-customer-update.json", encoding="utf-8") as handle:
        older = json.load(handle)
    body = json.loads(older["body"])
    body["value"]["version"] = 7
    older["body"] = json.dumps(body)
    status = post_as_tripletex(args.receiver_url, older)
    if status != 200:
        failures.append(f"an older version of customer 4004 answered {status}, expected 200")
    deadline = time.monotonic() + 60
    while True:
        logged, code = cli(args.stack, "log", "--since", "30m", "--outcome", "stale")
        if logged.get("trails") or time.monotonic() > deadline:
            break
        time.sleep(1)
    logged, code = cli(args.stack, "log", "--since", "30m")
    trails = logged.get("trails", []) if isinstance(logged, dict) else []
    received = {t["entries"][0]["outcome"] for t in trails if t["entries"][0]["journal"] == "received"}
    settled = {e["outcome"] for t in trails for e in t["entries"] if e["journal"] == "settled"}
    print(f"  log --since 30m: exit {code}, {len(trails)} requests; at the receiver {sorted(received)}; "
          f"at the worker {sorted(settled)}")
    if code != 1:
        failures.append(f"log answered {code} with a 401 in its window, expected 1")
    for hop, wanted, found in [("receiver", JOURNALED_AT_THE_RECEIVER, received),
                               ("worker", JOURNALED_AT_THE_WORKER, settled)]:
        if wanted - found:
            failures.append(f"the journal has no {sorted(wanted - found)} at the {hop}")
    stored = [t for t in trails if t["entries"][0]["journal"] == "received"
              and t["entries"][-1]["journal"] == "settled" and t["entries"][-1]["outcome"] == "accepted"
              and t["entries"][-1].get("version") is not None]
    followed = None
    for trail in reversed(stored):
        last = trail["entries"][-1]
        shown, _ = cli(args.stack, "show", last["tenant"], last["type"], str(last["id"]))
        if (shown.get("stored") or {}).get("lastRequest") == trail["request"]:
            followed = (trail["request"], last)
            break
    if followed is None:
        return failures + [f"no stored webhook of {len(stored)} is the request show names for its object"]
    request, last = followed
    one, code = cli(args.stack, "log", "--since", "30m", "--request", request)
    hops = [(e["journal"], e["outcome"]) for t in one.get("trails", []) for e in t["entries"]]
    print(f"  log --request {request}: {hops}; show {last['tenant']} {last['type']} {last['id']} names it "
          f"(version {last['version']})")
    if hops[:1] != [("received", "queued")] or hops[-1:] != [("settled", "accepted")]:
        failures.append(f"log --request {request} does not follow it from the receiver to the copy: {hops}")
    if args.mirror_url:
        deadline = time.monotonic() + 60
        while True:
            history = psql(args.mirror_url, "SELECT request_id FROM tripletex.object_version "
                                            f"WHERE tenant = '{last['tenant']}' AND type = '{last['type']}' "
                                            f"AND id = {int(last['id'])} AND version = {int(last['version'])}")
            if history == [[request]] or time.monotonic() > deadline:
                break
            time.sleep(1)
        print(f"  the mirror's history of that version: made by {history}")
        if history != [[request]]:
            failures.append(f"the mirror's history does not name request {request}: {history}")
    return failures


def check_replay(args, stack):
    """The change events end to end: the table's stream through the local pipe onto the bus and into
    its archive, and `replay` sends every archived change again to a consumer's rule, counted against
    the archive's own count (moto replays an archive whole, whatever the window)."""
    local = {"region_name": os.environ.get("AWS_REGION", "eu-north-1"),
             "aws_access_key_id": "local", "aws_secret_access_key": "local"}
    events = boto3.client("events", endpoint_url=os.environ["AWS_ENDPOINT_URL"], **local)
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], **local)
    bus = stack["resources"]["ChangeEventBus"]["arn"]
    archive = stack["resources"]["ChangeEventArchive"]["name"]
    archived = events.describe_archive(ArchiveName=archive)["EventCount"]
    queue = sqs.create_queue(QueueName="smoke-change-consumer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(EventBusName=bus, Name="smoke-consumer", EventPattern=json.dumps({"source": ["tripletex.webhooks"]}))
    events.put_targets(EventBusName=bus, Rule="smoke-consumer", Targets=[{"Id": "queue", "Arn": queue_arn}])
    replayed, code = cli(args.stack, "replay", "--from", "2000-01-01T00:00:00Z")
    seen = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        for message in batch:
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    ours = [e for e in seen if e.get("replay-name") == (replayed.get("replay") if isinstance(replayed, dict) else None)]
    print(f"  replay: exit {code}, {replayed.get('state') if isinstance(replayed, dict) else replayed}; "
          f"the archive held {archived} change events, the consumer had {len(ours)} again")
    if code != 0 or archived == 0 or len(ours) != archived:
        return [f"replay sent {len(ours)} of the {archived} archived change events again (exit {code}: {replayed})"]
    return []


# The book's chapters whose commands the smoke runs, so that the book cannot drift from them. Their
# `$ ` lines run in order, in a new shell, against the smoke's own stack; getting-started.md's two
# commands (`scripts/run`, `scripts/test`) are the ones this check runs inside, and are left out.
BOOK_CHAPTERS = ("docs/src/getting-started.md", "docs/src/operating.md")


def book_commands(text):
    """Each `$ ` command of a fenced block, and whether the book shows it refused (its first line of
    output a `tripletex-webhooks: ` error)."""
    commands, fenced = [], False
    lines = text.splitlines()
    for at, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced and line.startswith("$ "):
            following = lines[at + 1] if at + 1 < len(lines) else ""
            commands.append((line[2:], following.startswith("tripletex-webhooks: ")))
    return commands


def check_book_commands(args):
    """Every command the book's getting-started and operating chapters show, run as a reader would
    paste it (the simulator at the smoke's port, `tripletex-webhooks` as built, a home of its own):
    it must answer as the book shows it (a refusal there is a refusal here; else 0, or 1 when the
    answer needs a person)."""
    simulator = args.simulator.rstrip("/").removesuffix("/v2").split("//", 1)[1]
    home = tempfile.mkdtemp(prefix="book-home-")
    environment = dict(new_shell_environment(), HOME=home)
    failures, count = [], 0
    for chapter in BOOK_CHAPTERS:
        with open(chapter, encoding="utf-8") as handle:
            for command, refused in book_commands(handle.read()):
                count += 1
                runnable = re.sub(r"(^|&& )tripletex-webhooks ", rf"\1{os.path.abspath(CLI)} ", command)
                runnable = runnable.replace("127.0.0.1:8700", simulator)
                # What names the local stack runs in the checkout; the rest (completions, man pages)
                # writes where a reader would, in a home of its own.
                where = os.getcwd() if "--local" in command or "curl" in command else home
                result = subprocess.run(["bash", "-c", runnable], env=environment, cwd=where,
                                        capture_output=True, text=True, timeout=600)
                is_cli = "tripletex-webhooks" in command
                ok = (result.returncode == 2) if refused else (
                    result.returncode == 0 or (is_cli and result.returncode == 1))
                print(f"  {'as the book says' if ok else 'NOT as the book says'} ({result.returncode}): "
                      f"{chapter.split('/')[-1]}: {command[:100]}")
                if not ok:
                    failures.append(f"{chapter}: `{command}` exited {result.returncode}"
                                    f"{' (the book shows it refused)' if refused else ''}: "
                                    f"{(result.stderr or result.stdout).strip()[-300:]}")
    if count < 10:
        failures.append(f"found only {count} commands in {BOOK_CHAPTERS}")
    return failures


def banner_commands(text):
    """The command lines of the banner: indented four spaces, continued with a trailing backslash."""
    commands, current = [], ""
    for line in text.splitlines():
        if not current and not re.match(r"    (curl|\.venv/|AWS_|cargo |python3 |target/|psql )", line):
            continue
        current += line.strip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        commands.append(current)
        current = ""
    return commands


def new_shell_environment():
    """What a new shell in the project folder has: the user's PATH without the project's venv,
    and no AWS settings (scripts/run exports its own to the processes it starts, not to you)."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if ".venv" not in p]
    keep = {"HOME", "USER", "LANG", "TERM"}
    environment = {k: v for k, v in os.environ.items() if k in keep}
    environment["PATH"] = os.pathsep.join(path)
    return environment


def check_banner(path):
    """Every command line scripts/run prints, pasted into a new shell, must work."""
    with open(path, encoding="utf-8") as handle:
        commands = banner_commands(handle.read())
    failures = []
    for command in commands:
        result = subprocess.run(["bash", "-c", command], env=new_shell_environment(), cwd=os.getcwd(),
                                capture_output=True, text=True, timeout=300)
        status = re.search(r"^HTTP/\S+ (\d+)", result.stdout, re.MULTILINE)
        # The operator's CLI exits 1 when its answer needs a person (the smoke run quarantines on
        # purpose): the line worked; 2 is a line that could not answer.
        # `send` is the end-to-end check itself: only 0 (the worker handled it) counts.
        answered = result.returncode == 0 or ("tripletex-webhooks" in command and " send " not in command
                                              and result.returncode == 1)
        ok = answered and (status is None or status.group(1).startswith("2"))
        print(f"  {'works' if ok else 'FAILS'} in a new shell: {command[:110]}")
        if " send " in command:
            print("    " + "\n    ".join(result.stdout.splitlines()[:2]))
        if not ok:
            failures.append(f"the printed line fails in a new shell ({result.returncode}): {command}\n"
                            f"    {(result.stderr or result.stdout).strip()[-300:]}")
    if len(commands) < 8:
        failures.append(f"found only {len(commands)} command lines in {path}")
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--receiver-url")
    parser.add_argument("--lambda-port", type=int)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--simulator", help="the Tripletex simulator's base URL (keeper checks)")
    parser.add_argument("--mirror-url", help="the Postgres mirror's database (psql URL)")
    parser.add_argument("--banner", help="what scripts/run prints: each command line in it is run in a new shell")
    args = parser.parse_args()

    with open(args.stack, encoding="utf-8") as handle:
        stack = json.load(handle)
    resources = stack["resources"]
    # The local stack's region and throwaway credentials, unless the environment names others.
    local = {"region_name": os.environ.get("AWS_REGION", "eu-north-1"),
             "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
             "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "local")}
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], **local)
    dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"], **local)
    queue_url = resources["WebhookQueue"]["url"]
    quarantine_url = resources["QuarantineQueue"]["url"]
    table = resources["ObjectsTable"]["name"]

    failures = []
    for name, expected in EXPECTED.items():
        with open(f"{EVENTS}/{name}.json", encoding="utf-8") as handle:
            event = json.load(handle)
        status = post_as_tripletex(args.receiver_url, event)
        print(f"  POST {name}: {status}")
        if status != expected:
            failures.append(f"{name}: answered {status}, expected {expected}")
    status = cargo_lambda_invoke(args.lambda_port, "webhook-receiver", f"{EVENTS}/function-url-product-update.json")
    print(f"  cargo lambda invoke webhook-receiver --data-file function-url-product-update.json: {status}")
    if status != 200:
        failures.append(f"invoke product-update: answered {status}, expected 200")
    # An event lambda_http cannot make a URI of (the receiver_request fuzz target's first crash): the
    # receiver's front door answers 400 where lambda_http alone would panic into a 502.
    status = cargo_lambda_invoke(args.lambda_port, "webhook-receiver",
                                 f"{EVENTS}/function-url-unreadable-forwarded-proto.json")
    print(f"  cargo lambda invoke webhook-receiver --data-file function-url-unreadable-forwarded-proto.json: {status}")
    if status != 400:
        failures.append(f"invoke unreadable-forwarded-proto: answered {status}, expected 400")
    response = cargo_lambda_invoke_raw(args.lambda_port, "webhook-worker", "events/webhook-worker/sqs-mixed-batch.json")
    print(f"  cargo lambda invoke webhook-worker --data-file sqs-mixed-batch.json: {response}")
    if response.get("batchItemFailures") != []:
        failures.append(f"worker reported failures for the mixed batch: {response}")

    # The poller feeds the worker within a second or two; allow for a first compile of the worker.
    deadline = time.monotonic() + 300
    while True:
        items = table_items(dynamodb, table)
        found = {key: summary(items[key]) for key in EXPECTED_ITEMS if key in items}
        if found == EXPECTED_ITEMS or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"  objects table: {len(items)} items")
    for key, expected in EXPECTED_ITEMS.items():
        if found.get(key) != expected:
            failures.append(f"{key}: (version, deleted) is {found.get(key)}, expected {expected}")
    # The items are written before the poller deletes their messages (once the worker's invocation
    # has answered): what is still in flight gets a moment to finish.
    deadline = time.monotonic() + 60
    while True:
        left = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        in_queue = int(left["ApproximateNumberOfMessages"]) + int(left["ApproximateNumberOfMessagesNotVisible"])
        if not in_queue or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    quarantined = drain(sqs, quarantine_url)
    reasons = sorted(attributes(m)["quarantineReason"].split(":")[0] for m in quarantined)
    print(f"  left in the webhook queue: {in_queue}; quarantined: {reasons}")
    if in_queue:
        failures.append(f"{in_queue} messages left in the webhook queue")
    # One from the receiver (the non-envelope webhook), one from the worker's mixed batch.
    if len(quarantined) != 2:
        failures.append(f"{len(quarantined)} quarantined messages, expected 2")

    if args.simulator:
        failures += check_keeper(args, stack, dynamodb)
        failures += check_sync(args, stack, dynamodb)
        failures += check_company_life(args, stack, dynamodb)
        failures += check_large_objects(args, stack, dynamodb)
        failures += check_forget(args, stack, dynamodb)
    if args.mirror_url:
        failures += check_mirror(args, stack, dynamodb)
    if args.simulator:
        failures += check_log(args)
        failures += check_replay(args, stack)
    if args.banner:
        failures += check_banner(args.banner)
    if args.simulator:
        failures += check_book_commands(args)

    if failures:
        print("smoke check FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("smoke check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
