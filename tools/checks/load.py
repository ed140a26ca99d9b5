"""The sustained-load run: the simulator sends webhooks through the whole local stack at a steady rate
for a set time, with duplicates and reordering but no faults and no dropped webhook, then the objects
table is compared with the simulator's truth. No reconciliation runs after it: what the copy holds,
the webhooks brought.

  simulator -> fault proxy (passing) -> receiver -> SQS -> poller -> worker -> DynamoDB

Reported: the rate held, the receiver's answers by status, the webhook queue's depth and its oldest
message's age over time (the age is how long each message had waited when the poller first received
it, the worst in each interval: moto keeps no CloudWatch metrics), the worker's outcomes, freshness,
and an account of every 2xx: each 200 must be a message the worker received, each 202 a message in
the quarantine.

Run through scripts/run (`--load`), which starts the stack and passes:
  python3 -m tools.checks.load --stack .local/stack.json --simulator URL --watch-log .local/watch.log
           --received-log .local/received.jsonl [--seconds 300 --rate R --objects M --seed S]
Exit status 0 only when lost = resurrected = mismatched = 0 and every 2xx is accounted for.
"""

import argparse
import json
import sys
import time

from tools.checks.chaos import TENANTS, TIME_SCALE, Chaos, log, worker_outcomes

INTERVAL_SECONDS = 10


def received_messages(path):
    """The poller's first receipts: one JSON line each."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except OSError:
        return []


def ages_over_time(receipts, started, interval=INTERVAL_SECONDS):
    """Per interval since the start: webhooks first received, and the longest any had waited."""
    buckets = {}
    for receipt in receipts:
        bucket = int((receipt["receivedAt"] - started) // interval) * interval
        count, worst = buckets.get(bucket, (0, 0.0))
        buckets[bucket] = (count + 1, max(worst, receipt["waitedSeconds"]))
    return [{"fromSecond": bucket, "received": count, "oldestWaitedSeconds": round(worst, 2)}
            for bucket, (count, worst) in sorted(buckets.items())]


def account_for_2xx(answers, webhook_receipts, quarantined, redriven):
    """Every 200 is one message queued for the worker, every 202 one message quarantined."""
    queued = len({r["messageId"] for r in webhook_receipts}) - redriven
    return {
        "answered200": answers.get("200", 0),
        "messagesTheWorkerReceived": queued,
        "answered202": answers.get("202", 0),
        "messagesInQuarantine": quarantined,
        "accountedFor": answers.get("200", 0) == queued and answers.get("202", 0) == quarantined,
    }


class Load(Chaos):
    def run(self):
        self.wait_for_subscriptions()
        self.wait_for_the_sync()
        args = self.args
        changes = int(args.rate * args.seconds)
        self.sim("POST", "/_sim/webhooks/config", {
            "timeScale": TIME_SCALE, "disableAfterSeconds": 10 ** 9, "duplicateRate": 0.3, "maxCopies": 3,
            "reorderMaxSeconds": 0.5, "dropRate": 0, "seed": args.seed})
        log(f"load: {changes} changes over {args.objects} objects at {args.rate}/s for {args.seconds} s, "
            f"{len(TENANTS)} tenants (seed {args.seed})")
        started = time.time()
        self.sim("POST", "/_sim/workload", {"companyIds": list(TENANTS), "changes": changes,
                                            "objects": args.objects, "rate": args.rate, "seed": args.seed})
        depths, next_sample = [], started + INTERVAL_SECONDS
        while self.workload_running():
            time.sleep(0.2)
            if time.time() >= next_sample:
                depths.append({"second": round(time.time() - started),
                               "webhookQueueDepth": self.queue_depth(self.queue)})
                next_sample += INTERVAL_SECONDS
        workload_seconds = time.time() - started
        self.settle()
        drained_seconds = time.time() - started
        report = self.compare()
        status = self.sim("GET", "/_sim/webhooks/status")
        receipts = [r for r in received_messages(args.received_log)
                    if r["function"] == "webhook-worker" and r["source"] != "resync"]
        quarantine = self.stack["resources"]["QuarantineQueue"]["url"]
        return {
            "rateAsked": args.rate,
            "changesMade": status["changes"],
            "changesPerSecondHeld": round(status["changes"] / workload_seconds, 1),
            "deliveriesPerSecond": round(status["attempts"] / workload_seconds, 1),
            "workloadSeconds": round(workload_seconds, 1),
            "drainedAfterSeconds": round(drained_seconds, 1),
            "receiverAnswers": dict(sorted(status["answers"].items())),
            "duplicatesSent": status["duplicatesSent"],
            "retries": status["retries"],
            "recordsPerOutcome": worker_outcomes(args.watch_log),
            "webhookQueueDepth": depths,
            "oldestMessageAge": ages_over_time(receipts, started),
            "twoHundreds": account_for_2xx(status["answers"], receipts, self.queue_depth(quarantine), self.redriven),
            "objects": report["objects"],
            "exact": report["exact"],
            "lost": report["lost"],
            "resurrected": report["resurrected"],
            "mismatched": report["mismatched"],
            "examples": report["examples"],
            "freshnessSeconds": report["freshnessSeconds"],
        }

    def wait_for_the_sync(self):
        """The backfills of the new subscriptions end before the load begins, so that the copy holds
        only what webhooks brought."""
        deadline = time.monotonic() + 300
        while waiting := self.sync_waiting():
            if time.monotonic() > deadline:
                raise SystemExit(f"the sync did not finish its backfills: {'; '.join(waiting)}")
            time.sleep(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True)
    parser.add_argument("--simulator", required=True)
    parser.add_argument("--watch-log", required=True)
    parser.add_argument("--received-log", required=True)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--rate", type=float, default=12)
    parser.add_argument("--objects", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--timeout", type=int, default=1800, help="how long the stack may take to drain")
    parser.add_argument("--report", help="also write the report as JSON here")
    args = parser.parse_args()
    args.objects_before = 0  # nothing before the subscriptions: every object comes by webhook
    report = Load(args).run()
    print("\nload run report")
    for key, value in report.items():
        if isinstance(value, list):
            print(f"  {key}:")
            for entry in value:
                print(f"    {entry}")
        else:
            print(f"  {key}: {value}")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    failed = report["lost"] or report["resurrected"] or report["mismatched"] or not report["twoHundreds"]["accountedFor"]
    print("load run FAILED" if failed else
          f"load run passed: {report['changesPerSecondHeld']} changes/s for {report['workloadSeconds']} s, "
          f"exact {report['exact']}/{report['objects']}, lost = 0, mismatched = 0, every 2xx accounted for")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
