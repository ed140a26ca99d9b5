"""Each function's release bootstrap started the way Lambda starts it, next to a floor: a function of
lambda_runtime alone that only answers (tools/lambda-floor). Prints figures; asserts nothing about time.

A Runtime API emulator (below) spawns each bootstrap with the function's own environment (the
template's resources made in moto, Tripletex played by the simulator) and measures:
- init: process spawn to its first `GET /runtime/invocation/next`;
- first call: the first event handed out to its answer, and twenty warm calls after it;
- peak RSS of the process tree (VmHWM);
- with strace on PATH, the files each opens during init (certificates and profile files counted).
The receiver is also measured with its auth configuration in the environment: its init without the
one remote call (GetSecretValue) it makes, as the keeper and the sync make theirs.
Cold starts are taken round-robin over the functions, so that a busy moment of the machine falls on
all of them, and medians are reported. Then the bill per million webhooks (tools/checks/bill.py), from
these durations, the bytes the receiver and the worker log per webhook at the template's log level, and
the size of the items the worker wrote, read back from the table.

With `--instructions`, each bootstrap also runs under callgrind (valgrind), which counts the
instructions of init, of the first call and of a warm call: figures that do not move with a busy
machine, though they leave out what the kernel does (exec, page faults, connections).

Usage (from the repository root, with .venv set up; builds the x86_64 release zips it needs):
  .venv/bin/python3 -m tools.checks.cold_start [--cold-starts 10] [--warm 20] [--debug] [--instructions] [--tls]
With --tls, the functions reach the local AWS over TLS, one endpoint per service, trusting a
certificate authority made for the run (SSL_CERT_FILE): init and first call include the handshakes.
"""

import argparse
import http.server
import json
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile

import boto3

from tools.checks import bill
from tools.localstack.local_stack import LocalStack
from tools.localstack.loopback import ROOT, SERVICE_ENDPOINT_VARIABLES, start_moto, start_postgres
from tools.localstack.sam_translate import translate
from tools.localstack.tls_front import TlsFront, make_authority
from tools.simulator.tripletex_simulator import Simulator, SimulatorServer, load_config

REGION = "eu-north-1"
FLOOR = "lambda-floor"
# The event each function is timed on, and what its answer must say.
EVENTS = {
    "webhook-receiver": ("events/webhook-receiver/function-url-product-create.json",
                         lambda answer: answer.get("statusCode") == 200),
    "webhook-worker": ("events/webhook-worker/sqs-mixed-batch.json",
                       lambda answer: answer.get("batchItemFailures") == []),
    "subscription-keeper": ("events/subscription-keeper/manual-dry-run.json",
                            lambda answer: isinstance(answer, dict) and "runtimeError" not in answer),
    "object-sync": ("events/object-sync/scheduler-pending.json",
                    lambda answer: isinstance(answer, dict) and "runtimeError" not in answer),
    # Its init connects to the database and brings the schema up to date (a no-op after the first).
    "postgres-mirror": ("events/postgres-mirror/dynamodb-stream-batch.json",
                        lambda answer: answer.get("batchItemFailures") == []),
    FLOOR: (None, lambda answer: answer.get("statusCode") == 200),
}

# Published cold starts of an echo function, the same for every runtime but the runtime (Illya Yalovoy,
# "Four Million Lambda Invokes Across Python, Java, Rust, and Go", 2025: 30 forced cold starts each,
# medians), whose warm costs it found "nearly identical". No comparable Node.js figure was found.
PUBLISHED_COLD_START_MS = {"Rust": 16.26, "Python": 76.30}


class Invocation:
    def __init__(self, payload):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.handed_at = None
        self.answered_at = None
        self.answer = None
        self.done = threading.Event()


class RuntimeApi(http.server.ThreadingHTTPServer):
    """Lambda's Runtime API for one process: `next` blocks until an event is given. A new one (on a
    port of its own) for every process, so that a stopped process's last `next`, still in the
    socket's backlog, can never take the next process's event or stand for its init."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RuntimeHandler)
        self.first_next_at = None
        self.first_next = threading.Event()
        self.init_error = None
        self.pending = queue.Queue()
        self.invocations = {}

    def wait_for_first_next(self, timeout):
        """Whether the process asked for its first event (its init ended) within `timeout` seconds."""
        return self.first_next.wait(timeout)

    def invoke(self, payload, timeout=60):
        invocation = Invocation(payload)
        self.invocations[invocation.id] = invocation
        self.pending.put(invocation)
        if not invocation.done.wait(timeout):
            raise SystemExit(f"no answer within {timeout} s (init error: {self.init_error})")
        return invocation


class RuntimeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        api = self.server
        if self.path != "/2018-06-01/runtime/invocation/next":
            return self.answer(404, b"{}")
        if api.first_next_at is None:
            api.first_next_at = time.perf_counter()
            api.first_next.set()
        invocation = api.pending.get()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(invocation.payload)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         f"arn:aws:lambda:{REGION}:123456789012:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        invocation.handed_at = time.perf_counter()
        self.wfile.write(invocation.payload)

    def do_POST(self):
        api = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/2018-06-01/runtime/init/error":
            api.init_error = body.decode(errors="replace")
            return self.answer(202, b"{}")
        match = re.fullmatch(r"/2018-06-01/runtime/invocation/([^/]+)/(response|error)", self.path)
        invocation = match and api.invocations.get(match.group(1))
        if not invocation:
            return self.answer(404, b"{}")
        invocation.answered_at = time.perf_counter()
        answer = json.loads(body or b"null")
        invocation.answer = answer if match.group(2) == "response" else {"runtimeError": answer}
        self.answer(202, b"{}")
        invocation.done.set()

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def bootstraps(workdir, debug):
    """The x86_64 release bootstrap of every function and the floor (built when missing or arm64);
    with `debug`, the dev builds instead (the test command's smoke: the bench's machinery, not figures)."""
    names = sorted(os.listdir(os.path.join(ROOT, "functions"))) + [FLOOR]
    packages = [arg for name in names for arg in ("-p", name)]
    if debug:
        # The workspace's build, as scripts/run makes it: selecting packages would unify features
        # differently (the CLI's SDK features) and build everything again.
        subprocess.run(["cargo", "build", "--quiet", "--workspace", "--bins"], check=True, cwd=ROOT)
        return {name: os.path.join(ROOT, "target/debug", name) for name in names}
    # cargo-lambda lives in the venv this runs from.
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    subprocess.run(["cargo", "lambda", "build", "--release", "--locked", "--x86-64", "--output-format", "zip", "--quiet",
                    *packages], check=True, cwd=ROOT, env=env)
    paths = {}
    for name in names:
        folder = os.path.join(workdir, name)
        with zipfile.ZipFile(os.path.join(ROOT, f"target/lambda/{name}/bootstrap.zip")) as archive:
            archive.extract("bootstrap", folder)
        paths[name] = os.path.join(folder, "bootstrap")
        os.chmod(paths[name], 0o755)
    return paths


def tree_status_kib(pid, field):
    """A memory field of /proc/PID/status (VmHWM: peak RSS; RssAnon: heap and stacks now, no file
    mapped) summed over a process and its descendants."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status", encoding="utf-8") as handle:
                total += next(int(line.split()[1]) for line in handle if line.startswith(f"{field}:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="utf-8") as handle:
                    pending += [int(child) for child in handle.read().split()]
        except (FileNotFoundError, StopIteration):
            pass
    return total


class Started:
    """A Runtime API serving, for as long as the `with` lasts."""

    def __enter__(self):
        self.api = RuntimeApi()
        threading.Thread(target=self.api.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self.api

    def __exit__(self, *_):
        self.api.shutdown()
        self.api.server_close()


def cold_start(api, binary, environment, payload, warm_calls, check):
    started = time.perf_counter()
    process = subprocess.Popen([binary], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = api.invoke(payload)
        if not check(first.answer):
            raise SystemExit(f"{binary}: unexpected answer {first.answer}")
        warm = [api.invoke(payload) for _ in range(warm_calls)]
        return {
            "init": api.first_next_at - started,
            "first": first.answered_at - first.handed_at,
            "warm": statistics.median(w.answered_at - w.handed_at for w in warm),
            "rss_kib": tree_status_kib(process.pid, "VmHWM"),
            "anon_kib": tree_status_kib(process.pid, "RssAnon"),
        }
    finally:
        process.terminate()
        process.wait(10)


def files_opened_at_init(api, binary, environment):
    """The files the process opens before its first `next`, under strace (the loader's left out)."""
    with tempfile.NamedTemporaryFile(suffix=".trace") as trace:
        # A session of its own, so that strace and the function it traces stop together.
        process = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=openat,open", "-o", trace.name, binary],
                                   env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            api.wait_for_first_next(30)
            with open(trace.name, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    opened = [m.group(1) for line in lines if (m := re.search(r'open(?:at)?\([^"]*"([^"]+)"', line))]
    return [path for path in opened if not re.match(r"/(etc/ld\.so|lib|usr/lib)", path)]


CALLGRIND_WARM_CALLS = 4


def callgrind_instructions(api, binary, environment, payload, calls, check):
    """Instructions the process runs under callgrind: to its first `next` when `calls` is 0, else
    through that many calls."""
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        process = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", binary],
                                   env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if calls == 0 and not api.wait_for_first_next(60):
                raise SystemExit(f"{binary}: no `next` within 60 s under callgrind")
            for _ in range(calls):
                answer = api.invoke(payload, timeout=120).answer
                if not check(answer):
                    raise SystemExit(f"{binary}: unexpected answer {answer}")
        finally:
            # callgrind writes its counts when the process ends, on SIGTERM too.
            process.terminate()
            process.wait(60)
        with open(out.name, encoding="utf-8") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith(("summary:", "totals:")))


def instruction_figures(binaries, environment, payload, names):
    """Init, first call and warm call in instructions, from three runs of each bootstrap: to the first
    `next`, through one call, through one call and CALLGRIND_WARM_CALLS more."""
    figures = {}
    for name in names:
        counts = []
        for calls in (0, 1, 1 + CALLGRIND_WARM_CALLS):
            with Started() as api:
                counts.append(callgrind_instructions(api, binaries[name], environment(name, api), payload(name),
                                                     calls, EVENTS[name][1]))
        init, through_first, through_warm = counts
        figures[name] = {"init": init, "first": through_first - init,
                         "warm": (through_warm - through_first) / CALLGRIND_WARM_CALLS}
    return figures


def print_instruction_figures(figures):
    floor = figures[FLOOR]
    print(f"instructions under callgrind (one cold start each; warm: the mean of {CALLGRIND_WARM_CALLS} calls)")
    print(f"{'function':<31}{'init':>10}{'x floor':>9}{'first':>10}{'warm':>10}{'first/warm':>11}")
    for name, f in figures.items():
        print(f"{name:<31}{f['init'] / 1e6:>9.2f}M{f['init'] / floor['init']:>9.2f}"
              f"{f['first'] / 1e6:>9.3f}M{f['warm'] / 1e6:>9.3f}M{f['first'] / f['warm']:>11.2f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold-starts", type=int, default=10)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--debug", action="store_true",
                        help="the dev builds, not the release bootstraps: a smoke of the bench, no figures to quote")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each function's instructions at init, first and warm call under callgrind")
    parser.add_argument("--tls", action="store_true",
                        help="the local AWS behind TLS, one endpoint per service, as AWS answers: init and first "
                             "call include the handshakes (tools/localstack/tls_front.py)")
    parser.add_argument("--cold-share", type=float, default=0.01,
                        help="share of invocations that are cold, for the cost figure (AWS: under 1 %%)")
    args = parser.parse_args()
    processes, servers, fronts = [], [], []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            binaries = bootstraps(workdir, args.debug)
            moto, endpoint = start_moto()
            processes.append(moto)
            postgres, database_url = start_postgres(f"/tmp/tripletex-cold-start-pg-{os.getpid()}")
            processes.append(postgres)
            simulator = Simulator()
            load_config(simulator, os.path.join(ROOT, "infra/local/tripletex-simulator.json"))
            tripletex = SimulatorServer(0, simulator)
            servers.append(tripletex)
            threading.Thread(target=tripletex.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
            secrets = {}
            for logical_id, path in (("ReceiverAuthSecret", "infra/local/receiver-auth.json"),
                                     ("TripletexCredentialsSecret", "infra/local/tripletex-credentials.json")):
                with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
                    secrets[logical_id] = handle.read()
            stack = LocalStack(translate(os.path.join(ROOT, "infra/template.yaml")), endpoint, "bench", secrets,
                               {"TripletexApiBaseUrl": f"http://127.0.0.1:{tripletex.server_address[1]}/v2"},
                               {"WebhookReceiver": "http://127.0.0.1:9/lambda-url/webhook-receiver/"})
            stack.create_all()
            functions = stack.function_environments()
            endpoints = {"AWS_ENDPOINT_URL": endpoint}
            if args.tls:
                authority, certificate, key = make_authority(workdir)
                variables = ["AWS_ENDPOINT_URL"] + [f"AWS_ENDPOINT_URL_{v}" for v in SERVICE_ENDPOINT_VARIABLES.values()]
                front = TlsFront(int(endpoint.rsplit(":", 1)[1]), certificate, key, len(variables))
                fronts.append(front)
                endpoints = {variable: f"https://127.0.0.1:{port}" for variable, port in zip(variables, front.ports)}
                endpoints["SSL_CERT_FILE"] = authority
                print(f"over TLS: {len(front.ports)} endpoints (one per service) trusting {authority}")

            def environment(name, api):
                return {
                    "PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                    "AWS_REGION": REGION, **endpoints,
                    "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
                    "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_LEVEL": "WARN",
                    **functions.get(name, {}),
                    # The mirror is off in the template's defaults: its environment as scripts/run gives it.
                    **({"MIRROR_DATABASE_URL": database_url,
                        "PAYLOAD_BUCKET": stack.created["PayloadBucket"]["name"]} if name == "postgres-mirror" else {}),
                }

            def payload(name):
                path = EVENTS[name][0]
                if path is None:
                    return b"{}"
                with open(os.path.join(ROOT, path), "rb") as handle:
                    return handle.read()

            # The receiver once more with its auth configuration in the environment: what init costs
            # without its one remote call (GetSecretValue), which the others make too.
            inline = "webhook-receiver (auth inline)"
            binaries[inline] = binaries["webhook-receiver"]
            with open(os.path.join(ROOT, "infra/local/receiver-auth.json"), encoding="utf-8") as handle:
                inline_auth = handle.read()
            functions[inline] = {**{k: v for k, v in functions["webhook-receiver"].items()
                                    if k != "RECEIVER_AUTH_SECRET_ARN"}, "RECEIVER_AUTH_CONFIG": inline_auth}
            EVENTS[inline] = EVENTS["webhook-receiver"]
            names = [FLOOR] + [name for name in binaries if name != FLOOR]
            runs = {name: [] for name in names}
            for _ in range(args.cold_starts):
                for name in names:
                    with Started() as api:
                        runs[name].append(cold_start(api, binaries[name], environment(name, api), payload(name),
                                                     args.warm, EVENTS[name][1]))
            figures = {name: {key: statistics.median(run[key] for run in runs[name])
                              for key in ("init", "first", "warm", "rss_kib", "anon_kib")} for name in names}
            floor = figures[FLOOR]
            if args.debug:
                print("dev builds (--debug): a smoke of the bench; its figures are not the functions'")
            print(f"{args.cold_starts} cold starts each, round-robin; {args.warm} warm calls after each first call; "
                  "medians")
            print(f"{'function':<31}{'zip':>10}{'init':>10}{'x floor':>9}{'first':>10}{'warm':>10}{'first/warm':>11}"
                  f"{'peak RSS':>10}{'x floor':>9}{'anon':>9}{'x floor':>9}")
            for name in names:
                f = figures[name]
                archive = os.path.join(ROOT, f"target/lambda/{name.split()[0]}/bootstrap.zip")
                zipped = 0 if args.debug else os.path.getsize(archive)
                print(f"{name:<31}{zipped / 1e6:>8.2f}MB{f['init'] * 1000:>8.2f}ms{f['init'] / floor['init']:>9.2f}"
                      f"{f['first'] * 1000:>8.2f}ms{f['warm'] * 1000:>8.2f}ms{f['first'] / f['warm']:>11.2f}"
                      f"{f['rss_kib'] / 1024:>8.1f}MB{f['rss_kib'] / floor['rss_kib']:>9.2f}"
                      f"{f['anon_kib'] / 1024:>7.1f}MB{f['anon_kib'] / floor['anon_kib']:>9.2f}")
            print("targets: init <= 1.5 x the floor, first call <= 1.2 x a warm one, peak RSS <= 2 x the floor")
            print("anon: the part of RSS that is no mapped file (heap, stacks), after the warm calls; the rest of "
                  "the peak is the binary and libc, mapped")

            if shutil.which("strace"):
                print("files opened during init (the dynamic loader's left out):")
                for name in names:
                    with Started() as api:
                        opened = files_opened_at_init(api, binaries[name], environment(name, api))
                    certificates = [p for p in opened if "/ssl/" in p or "/pki/" in p or p.endswith((".pem", ".crt"))]
                    profiles = [p for p in opened if "/.aws/" in p]
                    print(f"  {name:<31}{len(opened):>4} files, {len(certificates)} certificate, {len(profiles)} "
                          f"profile: {', '.join(opened) or '-'}")
            else:
                print("strace is not on PATH: the files opened at init are not listed")

            if args.instructions:
                if shutil.which("valgrind"):
                    print_instruction_figures(instruction_figures(binaries, environment, payload, names))
                else:
                    print("valgrind is not on PATH: no instruction counts")

            measure_bill(binaries, environment, payload, figures, stack, endpoint,
                         translate(os.path.join(ROOT, "infra/template.yaml")))
            print_runtime_comparison(figures, args.cold_share)
    finally:
        for front in fronts:
            front.stop()
        for server in servers:
            server.shutdown()
            server.server_close()
        for process in processes:
            process.terminate()
            process.wait(10)
    return 0


def changes_only(payload):
    """The worker's sample batch without what is no change (a malformed record, an object without a
    version): the webhooks a bill is about."""
    event = json.loads(payload)
    kept = []
    for record in event["Records"]:
        try:
            body = json.loads(record["body"])
        except json.JSONDecodeError:
            continue
        value = body.get("value") if isinstance(body, dict) else None
        if isinstance(value, dict) and isinstance(value.get("version"), int):
            kept.append(record)
    event["Records"] = kept
    return event


def with_versions_moved(event, step):
    """The batch with every object's version `step` higher, so that each pass's writes are accepted,
    as a new change's are."""
    moved = json.loads(json.dumps(event))
    for record in moved["Records"]:
        body = json.loads(record["body"])
        body["value"]["version"] += step
        record["body"] = json.dumps(body, separators=(",", ":"))
    return json.dumps(moved).encode()


def logged_per_call(api, binary, environment, payloads):
    """The bytes and lines a process writes to stdout (what Lambda sends to CloudWatch Logs) per call
    after its first, at the template's application log level."""
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen([binary], env={**environment, "AWS_LAMBDA_LOG_LEVEL": "INFO"}, stdout=output,
                                   stderr=subprocess.DEVNULL)
        try:
            api.invoke(payloads[0])
            output.flush()
            start = output.seek(0, os.SEEK_END)
            output.seek(0)
            before_lines = output.read().count(b"\n")
            for payload in payloads[1:]:
                api.invoke(payload)
        finally:
            process.terminate()
            process.wait(10)
        output.seek(0)
        text = output.read()
    calls = len(payloads) - 1
    return (len(text) - start) / calls, (text.count(b"\n") - before_lines) / calls


def written_items(stack, endpoint, template):
    """The objects table's items as the worker wrote them, and their entries in the byType index."""
    table = template["Resources"]["ObjectsTable"]["Properties"]
    table_keys = [key["AttributeName"] for key in table["KeySchema"]]
    (index,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == "byType"]
    index_keys = [key["AttributeName"] for key in index["KeySchema"]]
    projected = index["Projection"].get("NonKeyAttributes", [])
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id="local", aws_secret_access_key="local")
    items = dynamodb.scan(TableName=stack.created["ObjectsTable"]["name"])["Items"]
    entries = [bill.index_entry(item, table_keys, index_keys, projected) for item in items]
    return items, [entry for entry in entries if entry is not None]


def measure_bill(binaries, environment, payload, figures, stack, endpoint, template):
    """The bill's measured inputs: warm durations (medians above), log bytes per webhook at INFO, and
    the items the worker wrote, on batches of the sample's changes whose every version is new."""
    changes = changes_only(payload("webhook-worker"))
    worker_batch = changes["Records"]
    one = {**changes, "Records": worker_batch[:1]}
    receiver_payloads = [payload("webhook-receiver")] * 21
    with Started() as api:
        receiver_bytes, receiver_lines = logged_per_call(api, binaries["webhook-receiver"],
                                                         environment("webhook-receiver", api), receiver_payloads)
    # Batches of one and of all the sample's changes: what the worker logs per record, and per batch
    # whatever its size (its metrics line), apart.
    logged = {}
    for size, batch in ((1, one), (len(worker_batch), changes)):
        with Started() as api:
            logged[size] = logged_per_call(api, binaries["webhook-worker"], environment("webhook-worker", api),
                                           [with_versions_moved(batch, 1000 * (k + 1)) for k in range(21)])
    (one_bytes, one_lines), (all_bytes, all_lines) = logged[1], logged[len(worker_batch)]
    record_bytes = (all_bytes - one_bytes) / (len(worker_batch) - 1)
    record_lines = (all_lines - one_lines) / (len(worker_batch) - 1)
    items, entries = written_items(stack, endpoint, template)
    parameters = {name: int(spec["Default"]) for name, spec in template["Parameters"].items()
                  if name in ("ReceiverMemorySize", "WorkerMemorySize", "WorkerBatchSize",
                              "WorkerBatchingWindowSeconds")}
    measured = bill.Measured(
        receiver_ms=figures["webhook-receiver"]["warm"] * 1000,
        worker_ms_per_batch=figures["webhook-worker"]["warm"] * 1000,
        worker_batch_measured=len(json.loads(payload("webhook-worker"))["Records"]),
        receiver_log_bytes=receiver_bytes, receiver_log_lines=receiver_lines,
        worker_log_bytes_per_record=record_bytes, worker_log_lines_per_record=record_lines,
        worker_log_bytes_per_batch=one_bytes - record_bytes, worker_log_lines_per_batch=one_lines - record_lines,
        item_sizes=[bill.item_size(item) for item in items],
        index_sizes=[bill.item_size(entry) for entry in entries],
        template=parameters)
    print(f"measured: the receiver logs {receiver_bytes:.0f} B in {receiver_lines:.1f} lines a webhook; the worker "
          f"{record_bytes:.0f} B in {record_lines:.1f} lines a record and {one_bytes - record_bytes:.0f} B in "
          f"{one_lines - record_lines:.1f} lines a batch; {len(items)} items written, {min(measured.item_sizes)} to "
          f"{max(measured.item_sizes)} B, index entries {min(measured.index_sizes)} to {max(measured.index_sizes)} B")
    bill.print_bill(measured)
    return measured


def print_runtime_comparison(figures, cold_share):
    """What init costs a million receiver calls with our init and with other runtimes' published ones."""
    def init_cost(milliseconds):
        return bill.gb_seconds(1e6 * cold_share, milliseconds, 128) * bill.LAMBDA_ARM64_PER_GB_SECOND

    ours = figures["webhook-receiver"]["init"] * 1000
    print(f"init, {cold_share:.0%} of a million receiver calls cold, at 128 MB: ours ({ours:.1f} ms) "
          f"${init_cost(ours):.4f}", end="")
    for runtime, published in PUBLISHED_COLD_START_MS.items():
        print(f"; {runtime}'s published echo cold start ({published} ms) ${init_cost(published):.4f}", end="")
    print(" (Node.js: no published figure measured the same way was found)")


if __name__ == "__main__":
    sys.exit(main())
