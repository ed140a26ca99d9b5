"""The receiver's release bootstrap as Lambda runs it, measured locally: cold start (process start to the
first answer), first call vs warm calls, and peak memory (VmHWM), against SQS in moto through one Runtime
API emulator (`cargo lambda watch --only-lambda-apis`). Prints figures; asserts nothing about time.

Usage (from the repository root, with .venv set up; builds the release bootstrap when missing):
  .venv/bin/python3 -m tools.checks.bench_receiver [--calls 200]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

import boto3

from tools.localstack.loopback import ROOT, free_port, start_moto, wait_for_port

EVENT = os.path.join(ROOT, "events/webhook-receiver/function-url-product-create.json")


def bootstrap(workdir):
    archive = os.path.join(ROOT, "target/lambda/webhook-receiver/bootstrap.zip")
    if not os.path.exists(archive):
        subprocess.run(["cargo", "lambda", "build", "--release", "--x86-64", "--output-format", "zip",
                        "-p", "webhook-receiver"], check=True, cwd=ROOT)
    with zipfile.ZipFile(archive) as handle:
        handle.extract("bootstrap", workdir)
    path = os.path.join(workdir, "bootstrap")
    os.chmod(path, 0o755)
    return path, os.path.getsize(archive)


def invoke(url, payload):
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, data=payload, method="POST"), timeout=30) as response:
        answer = json.load(response)
    return time.perf_counter() - started, answer


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    processes = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            binary, zip_size = bootstrap(workdir)
            moto, endpoint = start_moto()
            processes.append(moto)
            api_port = free_port()
            processes.append(subprocess.Popen(["cargo", "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1",
                                               "-P", str(api_port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            wait_for_port(api_port)
            credentials = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                           "AWS_REGION": "eu-north-1", "AWS_EC2_METADATA_DISABLED": "true"}
            sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="eu-north-1",
                               aws_access_key_id="local", aws_secret_access_key="local")
            queue = sqs.create_queue(QueueName="bench-webhooks")["QueueUrl"]
            quarantine = sqs.create_queue(QueueName="bench-quarantine")["QueueUrl"]
            with open(os.path.join(ROOT, "infra/local/receiver-auth.json"), encoding="utf-8") as handle:
                auth = handle.read()
            environment = {
                "PATH": os.environ["PATH"], **credentials, "AWS_ENDPOINT_URL": endpoint,
                "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{api_port}/.rt",
                "AWS_LAMBDA_FUNCTION_NAME": "webhook-receiver", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_LEVEL": "WARN",
                "QUEUE_URL": queue, "QUARANTINE_QUEUE_URL": quarantine, "RECEIVER_AUTH_CONFIG": auth,
            }
            # With --only-lambda-apis the emulator serves the one external runtime under the name `_`.
            url = f"http://127.0.0.1:{api_port}/2015-03-31/functions/_/invocations"
            with open(EVENT, "rb") as handle:
                payload = handle.read()

            def spawn():
                process = subprocess.Popen([binary], env=environment, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
                processes.append(process)
                return process

            # Cold start: process start to the first answer (init and first call together).
            started = time.perf_counter()
            cold_process = spawn()
            _, answer = invoke(url, payload)
            cold = time.perf_counter() - started
            if answer.get("statusCode") != 200:
                raise SystemExit(f"the receiver answered {answer}")
            cold_process.terminate()
            cold_process.wait(10)
            # First call alone: a fresh process given time to finish its init first.
            function = spawn()
            time.sleep(1)
            first, _ = invoke(url, payload)
            warm = [invoke(url, payload)[0] for _ in range(args.calls)]
            sends = []
            for _ in range(args.calls):
                began = time.perf_counter()
                sqs.send_message(QueueUrl=queue, MessageBody="{}")
                sends.append(time.perf_counter() - began)
            peak = peak_rss_kib(function.pid)
            median = statistics.median(warm)
            print(f"receiver bootstrap.zip: {zip_size} bytes; binary {os.path.getsize(binary)} bytes")
            print(f"cold start (process start -> first answer): {cold * 1000:.1f} ms")
            print(f"first call after init: {first * 1000:.2f} ms; warm call median {median * 1000:.2f} ms, "
                  f"p95 {sorted(warm)[int(len(warm) * 0.95)] * 1000:.2f} ms ({args.calls} calls)")
            print(f"first call / warm median: {first / median:.2f}")
            print(f"bare SendMessage to the same queue (boto3, for scale): median "
                  f"{statistics.median(sends) * 1000:.2f} ms")
            print(f"peak memory (VmHWM): {peak / 1024:.1f} MiB")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
