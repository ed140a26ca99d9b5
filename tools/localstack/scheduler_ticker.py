"""Local stand-in for EventBridge Scheduler: invokes each scheduled function of the template (read from
the local stack summary) on its rate, with the schedule's own Input, context attributes filled in.

Usage: python3 -m tools.localstack.scheduler_ticker --stack .local/stack.json --lambda-url http://127.0.0.1:9000
       [--every SECONDS]  (rate schedules: this instead of the schedule's rate)
       [--cron-every SECONDS]  (cron schedules, e.g. the nightly sync: ticked only when given; else
                                invoke them by hand)
       [--skip FUNCTION ...]  (leave a function's schedules to the caller, e.g. a check that invokes it)
       [--first-after SECONDS]  (default 5: a first tick soon after start, for people watching)
"""

import argparse
import datetime
import http.client
import json
import re
import signal
import sys
import threading
import time
import urllib.request

UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def log(text):
    print(f"[ticker] {text}", flush=True)


def rate_seconds(expression):
    match = re.fullmatch(r"rate\((\d+)\s+(\w+)\)", expression.strip())
    if not match or match.group(2) not in UNITS:
        return None
    return int(match.group(1)) * UNITS[match.group(2)]


def payload(schedule, now):
    arn = f"arn:aws:scheduler:eu-north-1:123456789012:schedule/default/{schedule['name']}"
    text = schedule["input"].replace("<aws.scheduler.schedule-arn>", arn)
    return text.replace("<aws.scheduler.scheduled-time>", now.strftime("%Y-%m-%dT%H:%M:%SZ"))


def tick(schedule, lambda_url):
    now = datetime.datetime.now(datetime.timezone.utc)
    url = f"{lambda_url.rstrip('/')}/2015-03-31/functions/{schedule['function']}/invocations"
    request = urllib.request.Request(url, data=payload(schedule, now).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=900) as response:
            answer = json.load(response)
            failed = response.headers.get("X-Amz-Function-Error")
    except (OSError, http.client.HTTPException, ValueError) as error:
        # Refused, reset, dropped without an answer, timed out or not JSON: this tick failed, the
        # schedule goes on (as EventBridge Scheduler's does).
        log(f"{schedule['function']}: invocation failed: {type(error).__name__}: {error}")
        return
    if failed:
        log(f"{schedule['function']}: function error: {answer}")
    else:
        log(f"{schedule['function']}: {json.dumps(answer.get('totals', answer))}")


def run(schedule, lambda_url, every, cron_every, first_after, stop):
    rate = rate_seconds(schedule["expression"])
    interval = (every or rate) if rate is not None else cron_every
    if interval is None:
        log(f"{schedule['name']}: {schedule['expression']} is not a rate; not ticked (pass --cron-every)")
        return
    log(f"{schedule['function']} every {interval}s ({schedule['expression']} in the template)")
    wait = first_after
    while not stop.wait(wait):
        tick(schedule, lambda_url)
        wait = interval


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True)
    parser.add_argument("--lambda-url", required=True)
    parser.add_argument("--every", type=int)
    parser.add_argument("--cron-every", type=int)
    parser.add_argument("--skip", action="append", default=[], metavar="FUNCTION")
    parser.add_argument("--first-after", type=float, default=5)
    args = parser.parse_args()
    with open(args.stack, encoding="utf-8") as handle:
        schedules = json.load(handle)["schedules"]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for schedule in schedules:
        if schedule["function"] in args.skip:
            log(f"{schedule['name']}: {schedule['function']} is left to the caller")
            continue
        threading.Thread(target=run, args=(schedule, args.lambda_url, args.every, args.cron_every, args.first_after, stop),
                         daemon=True).start()
    # Sleep, not stop.wait(): the signal handler sets `stop`, and would deadlock on the event's lock
    # if it interrupted this thread inside wait().
    while not stop.is_set():
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
