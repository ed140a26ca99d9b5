"""The chaos run: Tripletex-like traffic through the whole local stack, with every failure Tripletex's
docs warn about, and at the end the objects table compared with the simulator's truth, object by object.

  simulator (workload, duplicates, reordering, skipped versions, retries, disabling, dropped webhooks)
    -> fault proxy -> receiver -> fault proxy -> SQS -> poller -> worker -> fault proxy -> DynamoDB
  keeper on its (local) schedule re-enables what Tripletex disabled and asks for backfills and resyncs
  object sync answers them, reconciles once during the traffic and once after it ("the nightly run")

Objects exist before the stack subscribes (`--prepare`, run by scripts/run before the keeper's first
tick): only the backfill can bring them. Some webhooks are dropped on purpose (`--drop-rate`): only a
reconciliation can bring those changes. One subscription is disabled: its window resync brings the rest.

Fault windows, opened as the workload progresses: the receiver answers 503; one subscription's deliveries
fail until Tripletex disables it; SQS is unreachable while the keeper re-enables it (so the sync's resync
run cannot queue its first task); DynamoDB throttles half the worker's writes.

Run through scripts/run (`--chaos`, `--demo`), which starts the stack and the proxies and passes:
  python3 -m tools.checks.chaos --stack .local/stack.json --simulator URL --receiver-proxy URL --sqs-proxy URL
           --dynamodb-proxy URL --watch-log .local/watch.log [--changes N --objects M --rate R --seed S]
Exit status 0 only when lost = resurrected = mismatched = resyncNeeded = 0, the disabled subscription came
back, every sync run finished done (or could not start while SQS was unreachable, its requests answered by
the next run), and every request of the keeper is DONE.
"""

import argparse
import datetime
import json
import sys
import time
import urllib.request

import boto3
import botocore.config

from tools.checks.pg import psql
from tools.localstack.loopback import endpoint_for
from tools.simulator.tripletex_webhooks import OBJECT_TYPES, UPDATED_FIELD

# Simulator company -> the tenant its subscriptions (and so its object keys) carry.
TENANTS = {100: "default", 200: "hmac-demo"}
# Tripletex's ~30 hours of retries pass in about two minutes; "about a week of failures" in 20 s, well
# above an outage window (3 s) plus the SDK's own retries inside the receiver.
TIME_SCALE = 0.001
DISABLE_AFTER_SECONDS = 20000
# DynamoDB's item limit: a value over it is kept in the payload bucket.
LARGE_OBJECT_BYTES = 400_000
THROTTLE = {"mode": "error", "status": 400, "rate": 0.5, "contentType": "application/x-amz-json-1.0",
            "body": json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                                "message": "Injected by the chaos run"})}
# The mirror check waits while the mirror makes progress, for this long at most, and gives up after
# this long without any.
MIRROR_CATCH_UP_BOUND = 900
MIRROR_STALL_LIMIT = 60


def postings(count, base):
    """A voucher's posting references as Tripletex writes them with fields=*, ~70 bytes each."""
    return [{"id": 90_000_000 + i, "url": f"{base}/v2/ledger/posting/{90_000_000 + i}"} for i in range(count)]


def log(text):
    print(f"[chaos] {text}", flush=True)


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
        return json.loads(text) if text else None


class Chaos:
    def __init__(self, args):
        self.args = args
        with open(args.stack, encoding="utf-8") as handle:
            self.stack = json.load(handle)
        resources = self.stack["resources"]
        self.sqs = boto3.client("sqs", endpoint_url=endpoint_for("sqs"))
        self.dynamodb = boto3.client("dynamodb", endpoint_url=endpoint_for("dynamodb"))
        self.s3 = boto3.client("s3", endpoint_url=endpoint_for("s3"),
                               config=botocore.config.Config(s3={"addressing_style": "path"}))
        self.payload_bucket = resources["PayloadBucket"]["name"]
        self.large = []
        self.queue = resources["WebhookQueue"]["url"]
        self.sync_objects = resources["SyncObjectsQueue"]["url"]
        self.dlq = resources["WebhookDeadLetterQueue"]["url"]
        self.table = resources["ObjectsTable"]["name"]
        self.resync_table = resources["ResyncTable"]["name"]
        self.sync_table = resources["SyncTable"]["name"]
        self.sync_queue = resources["SyncQueue"]["url"]
        self.sync_dlq = resources["SyncDeadLetterQueue"]["url"]
        self.events = self.stack["functions"]["subscription-keeper"]["KEEPER_EVENTS"].split(",")
        self.page_size = int(self.stack["functions"]["object-sync"].get("SYNC_PAGE_SIZE") or PAGE_SIZE)
        self.receiver = self.stack["functions"]["subscription-keeper"]["RECEIVER_URL"]
        self.redriven = 0
        self.broken = None
        self.silent = 0

    def sim(self, method, path, body=None):
        return call(self.args.simulator, method, path, body)

    def sync(self, mode):
        """Starts sync runs on demand, as a person (or the nightly schedule) would."""
        url = f"{self.args.lambda_url.rstrip('/')}/2015-03-31/functions/object-sync/invocations"
        answer = call(url, "POST", "", {"mode": mode})
        runs = answer.get("runs", [])
        log(f"object sync {mode}: {len(runs)} runs started ({', '.join(r['tenant'] for r in runs)})")
        return runs

    # -- phases ------------------------------------------------------------------------------------

    def wait_for_subscriptions(self):
        deadline = time.monotonic() + 300
        while True:
            subscriptions = self.sim("GET", "/_sim/subscriptions")["values"]
            ready = {company: sorted(s["event"] for s in subscriptions
                                     if s["_company"] == company and s["status"] == "ACTIVE")
                     for company in TENANTS}
            if all(events == sorted(self.events) for events in ready.values()):
                log(f"the keeper subscribed {len(self.events)} events for each of {len(TENANTS)} companies")
                return subscriptions
            if time.monotonic() > deadline:
                raise SystemExit(f"the keeper did not subscribe every event in time: {ready}")
            time.sleep(1)

    def run(self):
        subscriptions = self.wait_for_subscriptions()
        self.broken = next(s for s in subscriptions if s["_company"] == 200 and s["event"] == "customer.update")
        self.sim("POST", "/_sim/webhooks/config", {
            "timeScale": TIME_SCALE, "disableAfterSeconds": DISABLE_AFTER_SECONDS, "duplicateRate": 0.3,
            "maxCopies": 3, "reorderMaxSeconds": 0.5, "dropRate": self.args.drop_rate, "seed": self.args.seed})
        # The object endpoints' faults: a delete between two pages of a listing (offset paging then
        # skips an object), a fetch answer that leaves an object out.
        self.sim("POST", "/_sim/object-faults", {
            "deleteDuringListingRate": self.args.object_fault_rate, "fetchOmissionRate": self.args.object_fault_rate,
            "seed": self.args.seed})
        log(f"workload: {self.args.changes} changes over {self.args.objects} objects, "
            f"{len(TENANTS)} tenants, at {self.args.rate}/s (seed {self.args.seed})")
        started = time.monotonic()
        self.sim("POST", "/_sim/workload", {"companyIds": list(TENANTS), "changes": self.args.changes,
                                            "objects": self.args.objects, "rate": self.args.rate,
                                            "seed": self.args.seed})
        self.large_objects()
        self.fault_timeline()
        self.settle()
        self.silent_changes()
        log("traffic settled; the nightly reconciliation runs")
        # What changes after this, with its webhook dropped (the reconciliation's own faults: a
        # delete between two of its pages), no run can have seen yet: told apart, not counted wrong.
        self.last_look_began = time.time()
        self.sync("reconcile")
        self.settle()
        elapsed = time.monotonic() - started
        report = self.compare()
        if self.args.mirror_url:
            report["mirrorExact"] = self.compare_mirror()
        report["seconds"] = round(elapsed, 1)
        return report

    def mirror_rows(self):
        """The Postgres mirror's rows, as items of the table look (so `verdict` reads both alike)."""
        rows = {}
        for tenant, kind, object_id, version, deleted, value in psql(
                self.args.mirror_url, "SELECT tenant, type, id, version, deleted, value FROM tripletex.object"):
            row = {"deleted": {"BOOL": deleted == "t"}}
            if version:
                row["version"] = {"N": version}
            if value:
                row["value"] = {"S": value}
            rows[f"{tenant}#{kind}#{object_id}"] = row
        return rows

    def compare_mirror(self):
        """The mirror against Tripletex's truth, object by object, tombstones included, once it has
        caught up with the table's stream: "exact/objects". It waits while the mirror makes progress
        (a loaded machine's stream is minutes behind), and stops after a minute without any, or 15."""
        truth = self.sim("GET", "/_sim/objects")["values"]
        give_up = time.monotonic() + MIRROR_CATCH_UP_BOUND
        seen, stalled_since, told = None, time.monotonic(), time.monotonic()
        while True:
            rows = self.mirror_rows()
            last_look = getattr(self, "last_look_began", None)
            verdicts = [verdict(obj, rows.get(f"{TENANTS[obj['companyId']]}#{obj['type']}#{obj['id']}"), last_look)
                        for obj in truth]
            # An object changed after the last look is held to the table, which the mirror follows.
            exact = verdicts.count("exact") + verdicts.count("changedAfterLastLook")
            now = time.monotonic()
            # Progress is any change of the mirror, not only of what is exact: a stream working
            # through a backlog writes rows that Tripletex has changed again since.
            fingerprint = self.mirror_fingerprint()
            if fingerprint != seen:
                seen, stalled_since = fingerprint, now
            if now - told >= 30:
                log(f"postgres mirror catching up: exact {exact}/{len(truth)}")
                told = now
            if exact == len(truth) or now > give_up or now - stalled_since > MIRROR_STALL_LIMIT:
                log(f"postgres mirror: exact {exact}/{len(truth)}")
                differing = [f"{TENANTS[obj['companyId']]}#{obj['type']}#{obj['id']} ({outcome})"
                             for obj, outcome in zip(truth, verdicts)
                             if outcome not in ("exact", "changedAfterLastLook")]
                if differing:
                    log(f"postgres mirror differs from Tripletex for: {', '.join(differing[:5])}")
                return f"{exact}/{len(truth)}"
            time.sleep(2)

    def mirror_fingerprint(self):
        """What changes whenever the stream mirror writes: its rows' count and latest write, and its
        history's count."""
        return tuple(psql(self.args.mirror_url,
                          "SELECT (SELECT count(*) FROM tripletex.object), (SELECT max(updated_at) FROM tripletex.object), "
                          "(SELECT count(*) FROM tripletex.object_version)")[0])

    def live(self, company, kind):
        return [o["id"] for o in self.sim("GET", "/_sim/objects")["values"]
                if o["companyId"] == company and o["type"] == kind and not o["deleted"]]

    def large_objects(self):
        """Objects over DynamoDB's 400 KB item limit and SQS's 256 KiB message limit: vouchers of thousands
        of posting references, created and half of them updated again through the same faults as the rest."""
        made = []
        for n in range(self.args.large_objects):
            company = list(TENANTS)[n % len(TENANTS)]
            made.append(self.sim("POST", "/_sim/changes", {
                "companyId": company, "type": "voucher", "verb": "create",
                "fields": {"postings": postings(6_000 + 1_500 * n, self.args.simulator)}}))
        for key in made[::2]:
            self.sim("POST", "/_sim/changes", {
                "companyId": key["companyId"], "type": "voucher", "verb": "update", "id": key["id"],
                "fields": {"postings": postings(8_000, self.args.simulator)}})
        self.large = made
        log(f"{len(made)} vouchers over 400 KB made, {len(made[::2])} of them updated")

    def silent_changes(self):
        """Updates and deletes whose webhooks Tripletex never sends: only the nightly run finds them
        (a delete must become a tombstone, confirmed by a 404)."""
        made = 0
        if self.large:
            # A large object changed silently: the reconciliation fetches it and takes the claim check.
            key = self.large[-1]
            self.sim("POST", "/_sim/changes", {
                "companyId": key["companyId"], "type": "voucher", "verb": "update", "id": key["id"],
                "deliver": False, "fields": {"postings": postings(7_000, self.args.simulator)}})
            made += 1
        for company in TENANTS:
            for kind in ("product", "customer"):
                ids = self.live(company, kind)
                for object_id in ids[:2]:
                    self.sim("POST", "/_sim/changes", {"companyId": company, "type": kind, "verb": "delete",
                                                       "id": object_id, "deliver": False})
                for object_id in ids[2:4]:
                    self.sim("POST", "/_sim/changes", {"companyId": company, "type": kind, "verb": "update",
                                                       "id": object_id, "deliver": False,
                                                       "fields": {UPDATED_FIELD[kind]: "changed silently"}})
                made += len(ids[:4])
        self.silent = made
        log(f"{made} updates and deletes made without a webhook")

    def changes_while_disabled(self):
        """Once Tripletex has disabled the broken subscription, change what it covers: no webhook
        comes for these; the keeper's re-enable and the sync's resync must bring them."""
        deadline = time.monotonic() + 120
        while not any(d["subscriptionId"] == self.broken["id"]
                      for d in self.sim("GET", "/_sim/webhooks/status")["disabled"]):
            if time.monotonic() > deadline:
                raise SystemExit("Tripletex never disabled the broken subscription")
            time.sleep(0.05)
        for object_id in self.live(200, "customer")[:3]:
            self.sim("POST", "/_sim/changes", {"companyId": 200, "type": "customer", "verb": "update",
                                               "id": object_id, "fields": {UPDATED_FIELD["customer"]: "while disabled"}})
        log("3 customers changed while their subscription was disabled")

    def progress(self):
        return self.sim("GET", "/_sim/webhooks/status")["changes"] / self.args.changes

    def wait_progress(self, fraction):
        while self.progress() < fraction:
            time.sleep(0.1)

    def window(self, proxy, mode, seconds, label):
        log(f"{label} for {seconds}s")
        call(proxy, "POST", "/_proxy/mode", mode)
        time.sleep(seconds)
        call(proxy, "POST", "/_proxy/mode", {"mode": "pass"})

    def fault_timeline(self):
        self.wait_progress(0.15)
        self.window(self.args.receiver_proxy, {"mode": "error", "status": 503}, 3, "the receiver answers 503")
        self.wait_progress(0.25)
        log(f"subscription {self.broken['id']} ({self.broken['event']}, company 200) fails until disabled")
        self.sim("POST", f"/_sim/subscriptions/{self.broken['id']}/break")
        self.changes_while_disabled()
        # Right as the keeper re-enables it and the sync starts its resync: a run whose first task
        # cannot be queued must give its request back, never stay "running".
        self.window(self.args.sqs_proxy, {"mode": "refuse"}, 7, "SQS is unreachable as the keeper re-enables it")
        self.wait_progress(0.45)
        self.sync("reconcile")  # during live traffic: must neither overwrite newer data nor resurrect
        self.wait_progress(0.55)
        self.window(self.args.dynamodb_proxy, THROTTLE, 5, "DynamoDB throttles half the worker's writes")

    def queue_depth(self, url):
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def sync_runs(self):
        runs, start = [], None
        while True:
            page = self.dynamodb.scan(TableName=self.sync_table, **({"ExclusiveStartKey": start} if start else {}))
            runs += [item for item in page["Items"] if item["pk"]["S"].startswith("run#")]
            start = page.get("LastEvaluatedKey")
            if not start:
                return runs

    def resync_requests(self):
        """The keeper's requests in its table (which also keeps each company's last run, stateless)."""
        return [i for i in self.dynamodb.scan(TableName=self.resync_table)["Items"] if "state" in i]

    def sync_waiting(self):
        """What the sync still has to do: runs running, keeper requests unanswered, tasks queued."""
        running = [r["pk"]["S"] for r in self.sync_runs() if r["state"]["S"] == "running"]
        waiting = [f"{i['pk']['S']} {i.get('requestedAt', {}).get('S', '')} {i['state']['S']}".strip()
                   for i in self.resync_requests() if i["state"]["S"] in ("PENDING", "RUNNING")]
        tasks = self.queue_depth(self.sync_queue)
        return [*(f"sync run {r} running" for r in running), *(f"resync request {w}" for w in waiting),
                *([f"{tasks} sync tasks queued"] if tasks else [])]

    def settle(self):
        """Until the workload is done, Tripletex has nothing left to send, the disabled subscription is
        active again, the sync has answered every request, and the queue is empty (a dead-lettered
        message is redriven, as an operator would). Says what it still waits for every 30 s, and on
        a timeout, so a stall names its cause."""
        deadline = time.monotonic() + self.args.timeout
        next_report = time.monotonic() + 30
        quiet = 0
        progress = (None, time.monotonic())  # the workload's changes, and when they last moved
        while quiet < 3:
            status = self.sim("GET", "/_sim/webhooks/status")
            progress = self.check_workload(status, progress)
            # A run that breaks no subscription (the load run) waits for none to come back.
            broken = self.broken and next(s for s in self.sim("GET", "/_sim/subscriptions")["values"]
                                          if s["id"] == self.broken["id"])
            disabled = not broken or any(d["subscriptionId"] == self.broken["id"] for d in status["disabled"])
            depth, dead = self.queue_depth(self.queue), self.queue_depth(self.dlq)
            synced = self.queue_depth(self.sync_objects)
            if dead:
                self.redrive()
            waiting = [
                *(["the workload is still running"] if status["workloadRunning"] else []),
                *([f"Tripletex has {status['pending']} deliveries pending, {status['inFlight']} in flight"]
                  if status["pending"] or status["inFlight"] else []),
                *([f"subscription {self.broken['id']} was never disabled"] if not disabled else []),
                *([f"subscription {self.broken['id']} is {broken['status']}"]
                  if broken and broken["status"] != "ACTIVE" else []),
                *([f"{depth} messages in the webhook queue"] if depth else []),
                *([f"{synced} messages in the sync objects queue"] if synced else []),
                *([f"{dead} messages in its dead-letter queue (redriven)"] if dead else []),
                *self.sync_waiting(),
            ]
            quiet = 0 if waiting else quiet + 1
            if waiting and time.monotonic() > deadline:
                raise SystemExit(f"the stack did not settle in {self.args.timeout}s; still: {'; '.join(waiting)}")
            if waiting and time.monotonic() > next_report:
                log(f"waiting for: {'; '.join(waiting)}")
                next_report = time.monotonic() + 30
            time.sleep(1)

    STALLED_AFTER = 60

    def check_workload(self, status, progress):
        """Fails at once, with the simulator's own words, when the workload died or has made no
        change for a minute while it says it runs: nothing the stack does can bring it on."""
        if status.get("workloadError"):
            raise SystemExit(f"the simulator's workload failed: {status['workloadError']}")
        changes, since = progress
        now = time.monotonic()
        if changes != status["changes"] or not status["workloadRunning"]:
            return status["changes"], now
        if now - since > self.STALLED_AFTER:
            raise SystemExit(f"the simulator's workload made no change for {self.STALLED_AFTER} s "
                             f"(at {changes} changes) though it says it runs")
        return progress

    def workload_running(self):
        """Whether the simulator's workload still runs; fails with its cause if it died."""
        status = self.sim("GET", "/_sim/webhooks/status")
        if status.get("workloadError"):
            raise SystemExit(f"the simulator's workload failed: {status['workloadError']}")
        return status["workloadRunning"]

    def redrive(self):
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.dlq, MaxNumberOfMessages=10,
                                                MessageAttributeNames=["All"]).get("Messages", [])
            if not messages:
                return
            for message in messages:
                self.sqs.send_message(QueueUrl=self.queue, MessageBody=message["Body"],
                                      MessageAttributes=message.get("MessageAttributes", {}))
                self.sqs.delete_message(QueueUrl=self.dlq, ReceiptHandle=message["ReceiptHandle"])
                self.redriven += 1

    # -- the verdict -------------------------------------------------------------------------------

    def table_items(self):
        items, start = {}, None
        while True:
            page = self.dynamodb.scan(TableName=self.table, **({"ExclusiveStartKey": start} if start else {}))
            for item in page["Items"]:
                items[item["pk"]["S"]] = item
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def with_claimed_values(self, items):
        """Each item's value as text: read from the payload bucket where the item holds its key."""
        for item in items.values():
            claim = item.get("value", {}).get("M", {}).get("claimCheck", {}).get("S")
            if claim:
                body = self.s3.get_object(Bucket=self.payload_bucket, Key=claim)["Body"].read()
                item["value"] = {"S": body.decode()}
        return items

    def compare(self):
        truth = self.sim("GET", "/_sim/objects")["values"]
        items = self.with_claimed_values(self.table_items())
        verdicts = {"exact": [], "lost": [], "resurrected": [], "mismatched": [], "resyncNeeded": [],
                    "changedAfterLastLook": []}
        stored = {}
        large = []
        for obj in truth:
            key = f"{TENANTS[obj['companyId']]}#{obj['type']}#{obj['id']}"
            item = items.pop(key, None)
            outcome = verdict(obj, item, getattr(self, "last_look_began", None))
            verdicts[outcome].append(key)
            if len(json.dumps(obj["value"], separators=(",", ":"))) > LARGE_OBJECT_BYTES:
                large.append(outcome)
            if item is not None:
                stored[key] = item
        freshness = freshness_by_source(truth, stored)
        verdicts["mismatched"] += [f"{key} (not in Tripletex)" for key in items]
        status = self.sim("GET", "/_sim/webhooks/status")
        subscriptions = {s["id"]: s for s in self.sim("GET", "/_sim/subscriptions")["values"]}
        re_enabled = [d for d in status["disabled"] if subscriptions[d["subscriptionId"]]["status"] == "ACTIVE"]
        resync_requests = self.resync_requests()
        sync = sync_summary(self.sync_runs(), self.page_size)
        object_faults = self.sim("GET", "/_sim/object-faults")
        return {
            "eventsGenerated": status["changes"],
            "deliveriesMade": status["deliveriesMade"],
            "deliveriesAttempted": status["attempts"],
            "deliveriesSucceeded": status["succeeded"],
            "duplicatesSent": status["duplicatesSent"],
            "retries": status["retries"],
            "deliveriesDroppedWhileDisabled": status["droppedAtDisable"],
            "changesWhileDisabled": status["changesWhileDisabled"],
            "deliveriesGivenUp": status["givenUp"],
            "recordsPerOutcome": worker_outcomes(self.args.watch_log),
            "redrivenFromDeadLetterQueue": self.redriven,
            "subscriptionsDisabled": len(status["disabled"]),
            "subscriptionsReEnabled": len(re_enabled),
            "resyncRequestsRecorded": len(resync_requests),
            "resyncRequestsDone": sum(1 for i in resync_requests if i["state"]["S"] == "DONE"),
            "webhooksDroppedOnPurpose": status["dropped"],
            "droppedThenSuperseded": status["droppedSuperseded"],
            "deletesDuringListing": object_faults["deletesDuringListing"],
            "fetchAnswersLeavingOneOut": object_faults["fetchOmissions"],
            "silentUpdatesAndDeletes": self.silent,
            "objectsBeforeStart": objects_before_each(self.args) * len(TENANTS) * len(OBJECT_TYPES),
            **sync,
            "syncDeadLetters": self.queue_depth(self.sync_dlq),
            "objects": len(truth),
            "objectsOver400KB": len(large),
            "objectsOver400KBExact": large.count("exact"),
            "exact": len(verdicts["exact"]),
            "lost": len(verdicts["lost"]),
            "resurrected": len(verdicts["resurrected"]),
            "mismatched": len(verdicts["mismatched"]),
            "resyncNeeded": len(verdicts["resyncNeeded"]),
            "changedAfterLastLook": len(verdicts["changedAfterLastLook"]),
            "examples": {k: v[:5] for k, v in verdicts.items() if k != "exact" and v},
            "freshnessSeconds": freshness,
        }


def freshness_by_source(truth, items):
    """From each object's last change in Tripletex to its copy being written (the item's updatedAt),
    p50 / p99 / max in seconds, by what wrote it: a webhook, or the sync (objects that existed before
    the subscriptions, or whose webhook never came, wait for a run)."""
    delays = {}
    for obj in truth:
        key = f"{TENANTS[obj['companyId']]}#{obj['type']}#{obj['id']}"
        item = items.get(key)
        if item is None or obj.get("changedAt") is None or "updatedAt" not in item:
            continue
        stored_at = parse_rfc3339(item["updatedAt"]["S"])
        source = item.get("source", {}).get("S", "webhook")
        delays.setdefault(source, []).append(max(0.0, stored_at - obj["changedAt"]))
    return {source: percentiles(values) for source, values in sorted(delays.items())}


def percentiles(values):
    values = sorted(values)
    pick = lambda share: values[min(len(values) - 1, int(share * len(values)))]  # noqa: E731
    return {"objects": len(values), "p50": round(pick(0.5), 2), "p99": round(pick(0.99), 2),
            "max": round(values[-1], 2)}


def parse_rfc3339(text):
    """Seconds since the epoch of an RFC 3339 time as the worker writes it (nanoseconds, Z)."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return seconds.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


# Per object type, the partitions a complete listing walks (catalog.rs): each ends with a short page.
PARTITIONS = {"customer": 2, "supplier": 2, "employee": 2, "voucher": 2}
PAGE_SIZE, FETCH_BATCH = 1000, 100
# What a run record names as the failed part of a run that never took a step (handler::NOT_STARTED).
NOT_STARTED = "run"


def sync_summary(runs, page_size=PAGE_SIZE):
    """Runs by mode and state, the sync's counts summed, and its Tripletex requests next to the least
    a sync could make: per type a page per partition (more past 1,000 objects), a fetch per 100
    objects fetched, a lookup per stored object the listing no longer showed."""
    by_mode, totals, minimum = {}, {}, 0
    for run in runs:
        failures = [f["S"] for f in run.get("failures", {}).get("L", [])]
        # A run whose first task the queue did not take (SQS unreachable): its requests went to
        # the next run, which the requests' own states show.
        not_started = run["state"]["S"] == "failed" and failures and all(
            f.startswith(f"{NOT_STARTED}: ") for f in failures)
        key = f"{run['mode']['S']}/{'not started' if not_started else run['state']['S']}"
        by_mode[key] = by_mode.get(key, 0) + 1
        counts = {}
        for name, value in run.items():
            if ":" in name and "N" in value:
                object_type, count = name.split(":", 1)
                counts.setdefault(object_type, {})[count] = int(value["N"])
                totals[count] = totals.get(count, 0) + int(value["N"])
        for object_type in (t["S"] for t in run.get("types", {}).get("L", [])):
            c = counts.get(object_type, {})
            minimum += (PARTITIONS.get(object_type, 1) + c.get("listed", 0) // page_size
                        + -(-c.get("fetched", 0) // FETCH_BATCH) + c.get("tombstoned", 0)
                        + c.get("keptAfterLookup", 0))
    return {
        "syncRuns": by_mode,
        "syncListed": totals.get("listed", 0),
        "syncFetched": totals.get("fetched", 0),
        "syncTombstoned": totals.get("tombstoned", 0),
        "syncDriftCorrected": totals.get("driftCorrected", 0),
        "syncLateWebhooks": totals.get("lateWebhooks", 0),
        "syncUnstorable": totals.get("unstorable", 0),
        "syncVanished": totals.get("vanished", 0),
        "syncRefreshedAfterLookup": totals.get("refreshedAfterLookup", 0),
        "syncPagesNotModified": totals.get("pagesNotModified", 0),
        "syncTripletexRequests": totals.get("requests", 0),
        "syncTripletexRequestsMinimum": minimum,
        "syncRateLimited": totals.get("rateLimited", 0),
    }


def verdict(truth, item, last_look_began=None):
    """What the table holds for one object, against Tripletex's truth. An object that differs only
    because it changed after the last reconciliation began (`last_look_began`, epoch seconds) and
    its webhook was dropped is `changedAfterLastLook`: no run can have seen that change yet."""
    outcome = copy_verdict(truth, item)
    if (outcome != "exact" and last_look_began is not None and truth.get("lastChangeDropped")
            and (truth.get("changedAt") or 0) >= last_look_began):
        return "changedAfterLastLook"
    return outcome


def copy_verdict(truth, item):
    """What the table holds for one object, against Tripletex's truth."""
    if item is None and truth["deleted"]:
        # Created and deleted while no webhook of it came: the copy rightly holds nothing of it.
        return "exact"
    if item is not None and truth["deleted"] and not item["deleted"]["BOOL"]:
        # A live copy of a deleted object: resurrected, unless its delete was never sent (disabled).
        return "resyncNeeded" if truth["missedWhileDisabled"] else "resurrected"
    exact = item is not None and (
        item["deleted"]["BOOL"] if truth["deleted"] else
        (not item["deleted"]["BOOL"] and int(item["version"]["N"]) == truth["version"]
         and json.loads(item["value"]["S"]) == truth["value"]))
    if exact:
        return "exact"
    if truth["missedWhileDisabled"]:
        return "resyncNeeded"
    if item is None or (not truth["deleted"] and not item["deleted"]["BOOL"]
                        and int(item["version"]["N"]) < truth["version"]):
        return "lost"
    return "mismatched"


def worker_outcomes(watch_log):
    """Sum of the worker's EMF metric lines (what CloudWatch would count) in the functions' log."""
    totals = {}
    try:
        with open(watch_log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                start = line.find('{"')
                if '"webhook-worker"' not in line or '"_aws"' not in line or start < 0:
                    continue
                try:
                    metrics = json.loads(line[start:])
                except ValueError:
                    continue
                for definition in metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                    name = definition["Name"]
                    value = metrics.get(name, 0)
                    if isinstance(value, list):
                        continue  # a distribution (FreshnessMs): the report measures freshness itself
                    totals[name] = totals.get(name, 0) + int(value)
    except OSError:
        pass
    return totals


def print_report(report):
    width = max(len(k) for k in report)
    print("\nchaos run report")
    for key, value in report.items():
        if key != "examples":
            print(f"  {key:<{width}}  {value}")
    for kind, keys in report["examples"].items():
        print(f"  e.g. {kind}: {', '.join(keys)}")
    print(drift_line(report))


def drift_line(report):
    """Drift counted, less the drift whose webhook Tripletex delivered after all (late, not lost: the
    worker's DriftDeliveredLate), beside the webhooks dropped on purpose, and what tells them apart."""
    dropped, superseded = report["webhooksDroppedOnPurpose"], report["droppedThenSuperseded"]
    only_a_sync = dropped - superseded
    counted = report["syncDriftCorrected"]
    delivered_late = report["recordsPerOutcome"].get("DriftDeliveredLate", 0)
    lost = counted - delivered_late
    line = (f"  drift counted {counted}, {delivered_late} of it delivered late by Tripletex's retries: "
            f"{lost} webhooks lost, beside webhooks dropped {dropped} ({superseded} of them superseded by a "
            f"later delivered change of the same object: {only_a_sync} only a reconciliation could bring); "
            f"late webhooks {report['syncLateWebhooks']} (not drift)")
    if lost == only_a_sync:
        return line + ": equal"
    return line + (f": {lost - only_a_sync:+d}, the drops a reconciliation corrected before a later change "
                   "superseded them (counted as drift and as superseded), or a superseding change still "
                   "in flight at the recheck")


def objects_before_each(args):
    """Objects per company and type made before start: --objects-before spread over them."""
    return max(1, args.objects_before // (len(TENANTS) * len(OBJECT_TYPES)))


def prepare(args):
    """Objects made in Tripletex before the stack subscribed: spread over the companies and types."""
    each = objects_before_each(args)
    for company in TENANTS:
        for kind in OBJECT_TYPES:
            call(args.simulator, "POST", "/_sim/objects", {"companyId": company, "type": kind, "count": each})
    log(f"{each * len(TENANTS) * len(OBJECT_TYPES)} objects exist in Tripletex before the stack subscribes")
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True)
    parser.add_argument("--simulator", required=True)
    parser.add_argument("--prepare", action="store_true", help="only create the objects that exist before start")
    parser.add_argument("--receiver-proxy")
    parser.add_argument("--sqs-proxy")
    parser.add_argument("--dynamodb-proxy")
    parser.add_argument("--watch-log")
    parser.add_argument("--lambda-url")
    parser.add_argument("--objects-before", type=int, default=None,
                        help="objects in Tripletex before start (default: a fifth of --objects)")
    parser.add_argument("--drop-rate", type=float, default=0.02, help="share of webhooks Tripletex never sends")
    parser.add_argument("--object-fault-rate", type=float, default=0.2,
                        help="share of full list pages followed by a delete, and of fetch answers leaving one out")
    parser.add_argument("--large-objects", type=int, default=4,
                        help="vouchers over DynamoDB's 400 KB item limit, made during the traffic")
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--objects", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--report", help="also write the report as JSON here")
    parser.add_argument("--mirror-url", help="the Postgres mirror's database: the report compares it too")
    args = parser.parse_args()
    if args.objects_before is None:
        args.objects_before = args.objects // 5
    if args.prepare:
        return prepare(args)
    missing = [name for name in ("receiver_proxy", "sqs_proxy", "dynamodb_proxy", "watch_log", "lambda_url")
               if getattr(args, name) is None]
    if missing:
        parser.error(f"a run needs --{', --'.join(m.replace('_', '-') for m in missing)}")
    report = Chaos(args).run()
    print_report(report)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    sync_failed = (any(not key.endswith(("/done", "/not started")) for key in report["syncRuns"])
                   or not report["syncRuns"]
                   or report["resyncRequestsDone"] != report["resyncRequestsRecorded"])
    mirror_exact = report.get("mirrorExact", "0/0").split("/")
    failed = (report["lost"] or report["resurrected"] or report["mismatched"] or report["resyncNeeded"]
              or mirror_exact[0] != mirror_exact[1]
              or not report["subscriptionsReEnabled"] or sync_failed)
    print("chaos run FAILED" if failed else
          f"chaos run passed: exact {report['exact']}/{report['objects']}, "
          f"mirror exact {report.get('mirrorExact', 'not run')}, lost = 0, resurrected = 0, "
          f"mismatched = 0, resyncNeeded = 0; sync requests {report['syncTripletexRequests']} "
          f"(minimum {report['syncTripletexRequestsMinimum']})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
