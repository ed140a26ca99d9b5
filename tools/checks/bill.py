"""What a million webhooks cost, line by line, from quantities measured on what the functions really
do: their billed durations (the cold-start tool's warm calls), the bytes they log per webhook (their
stdout, at the template's log level), and the size of the items the worker writes (read back from the
table), with the template's memory, batch size and batching window. Two cases: a trickle (a million
webhooks a month, 0.39 a second: batches of what the batching window gathers) and a busy stream
(batches full).

Prices are public list prices (us-east-1, 2026): Lambda arm64, SQS standard, DynamoDB on demand,
CloudWatch Logs standard ingestion; free tiers are left out. The durations are measured on this
machine's x86_64 and billed as arm64, rounded up to the millisecond as Lambda bills them.
"""

import dataclasses
import math

LAMBDA_ARM64_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS = 0.20
SQS_PER_MILLION_REQUESTS = 0.40
DYNAMODB_PER_MILLION_WRITE_UNITS = 0.625
LOGS_PER_GB_INGESTED = 0.50
# CloudWatch Logs counts 26 bytes of metadata with each event it ingests.
LOG_EVENT_OVERHEAD_BYTES = 26
WRITE_UNIT_BYTES = 1024
# A month of 30 days.
SECONDS_PER_MONTH = 30 * 24 * 3600
TRICKLE_PER_MONTH = 1_000_000
MILLION = 1_000_000


def number_size(text):
    """DynamoDB's size of a number: one byte per two significant digits, plus one."""
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value):
    """The size DynamoDB counts for one attribute value (in the wire format: {"S": ...}, {"N": ...})."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return len(inner) if isinstance(inner, (bytes, bytearray)) else len(inner.encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(item.encode()) for item in inner)
    if kind == "NS":
        return sum(number_size(item) for item in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(item) for item in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(item) for name, item in inner.items())
    raise ValueError(f"no size for a DynamoDB value of type {kind}")


def item_size(item):
    """An item's size as DynamoDB bills writes: its attribute names and values."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size):
    """Write request units of one write of an item this size (at least one)."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def index_entry(item, table_keys, index_keys, projected):
    """The part of `item` a global secondary index holds: its keys, the table's and the projected
    attributes; none when the item lacks an index key (it is then not in the index)."""
    if any(key not in item for key in index_keys):
        return None
    return {name: item[name] for name in (*table_keys, *index_keys, *projected) if name in item}


def batch_size(rate_per_second, window_seconds, largest):
    """Messages a worker invocation gets: the first, and what arrives while the batching window is
    open, up to the batch size."""
    return min(largest, 1 + rate_per_second * window_seconds)


@dataclasses.dataclass
class Measured:
    """The measured inputs of the bill."""

    receiver_ms: float
    worker_ms_per_batch: float
    worker_batch_measured: int
    receiver_log_bytes: float
    receiver_log_lines: float
    worker_log_bytes_per_record: float
    worker_log_lines_per_record: float
    worker_log_bytes_per_batch: float
    worker_log_lines_per_batch: float
    item_sizes: list
    index_sizes: list
    template: dict


def gb_seconds(invocations, milliseconds, memory_mb):
    """What Lambda bills for these calls' durations: each rounded up to the millisecond (and, since
    August 2025, the init phase too), at the memory configured."""
    return invocations * math.ceil(milliseconds) / 1000 * memory_mb / 1024


def lambda_cost(invocations, milliseconds, memory_mb=128):
    """Requests and durations of these calls."""
    return (invocations / MILLION * LAMBDA_PER_MILLION_REQUESTS
            + gb_seconds(invocations, milliseconds, memory_mb) * LAMBDA_ARM64_PER_GB_SECOND)


def lines(measured, rate_per_second):
    """The bill per million webhooks at this rate, as (what, quantity per million, unit, dollars)."""
    template = measured.template
    batch = batch_size(rate_per_second, template["WorkerBatchingWindowSeconds"], template["WorkerBatchSize"])
    invocations = MILLION / batch
    # The worker's time per batch: what the measured batch took, per record, at this batch's size,
    # and never under one billed millisecond.
    worker_ms = measured.worker_ms_per_batch / measured.worker_batch_measured * batch
    receiver = gb_seconds(MILLION, measured.receiver_ms, template["ReceiverMemorySize"])
    worker = gb_seconds(invocations, worker_ms, template["WorkerMemorySize"])
    item_units = sum(write_units(size) for size in measured.item_sizes) / len(measured.item_sizes)
    index_units = sum(write_units(size) for size in measured.index_sizes) / len(measured.index_sizes)
    log_bytes = (measured.receiver_log_bytes + measured.receiver_log_lines * LOG_EVENT_OVERHEAD_BYTES
                 + measured.worker_log_bytes_per_record
                 + measured.worker_log_lines_per_record * LOG_EVENT_OVERHEAD_BYTES
                 + (measured.worker_log_bytes_per_batch
                    + measured.worker_log_lines_per_batch * LOG_EVENT_OVERHEAD_BYTES) / batch)
    return [
        ("Lambda requests, receiver", MILLION, "calls", LAMBDA_PER_MILLION_REQUESTS),
        (f"Lambda duration, receiver ({measured.receiver_ms:.2f} ms, billed {math.ceil(measured.receiver_ms)} ms "
         f"at {template['ReceiverMemorySize']} MB)", receiver, "GB-s", receiver * LAMBDA_ARM64_PER_GB_SECOND),
        (f"Lambda requests, worker (batches of {batch:.2f})", invocations, "calls",
         invocations / MILLION * LAMBDA_PER_MILLION_REQUESTS),
        (f"Lambda duration, worker ({worker_ms:.2f} ms a batch, billed {math.ceil(worker_ms)} ms at "
         f"{template['WorkerMemorySize']} MB)", worker, "GB-s", worker * LAMBDA_ARM64_PER_GB_SECOND),
        ("SQS SendMessage (receiver)", MILLION, "requests", SQS_PER_MILLION_REQUESTS),
        ("SQS ReceiveMessage with messages (the mapping's poller)", invocations, "requests",
         invocations / MILLION * SQS_PER_MILLION_REQUESTS),
        ("SQS DeleteMessageBatch (the mapping, after each batch)", invocations, "requests",
         invocations / MILLION * SQS_PER_MILLION_REQUESTS),
        (f"DynamoDB table writes ({sum(measured.item_sizes) / len(measured.item_sizes):.0f} B an item: "
         f"{item_units:.2f} units)", MILLION * item_units, "write units",
         item_units * DYNAMODB_PER_MILLION_WRITE_UNITS),
        (f"DynamoDB index writes (byType, {sum(measured.index_sizes) / len(measured.index_sizes):.0f} B an "
         f"entry: {index_units:.2f} units)", MILLION * index_units, "write units",
         index_units * DYNAMODB_PER_MILLION_WRITE_UNITS),
        (f"CloudWatch Logs ({log_bytes:.0f} B a webhook with {LOG_EVENT_OVERHEAD_BYTES} B an event)",
         MILLION * log_bytes, "bytes", MILLION * log_bytes / 1e9 * LOGS_PER_GB_INGESTED),
    ]


def print_bill(measured):
    trickle = TRICKLE_PER_MONTH / SECONDS_PER_MONTH
    template = measured.template
    busy = template["WorkerBatchSize"] / max(template["WorkerBatchingWindowSeconds"], 1)
    cases = (("trickle", trickle), ("busy", busy))
    bills = {name: lines(measured, rate) for name, rate in cases}
    print("the bill per million webhooks, from measured quantities (list prices, us-east-1, 2026; arm64; "
          "free tiers left out):")
    print(f"  trickle: {trickle:.2f} webhooks a second (a million a month); busy: {busy:.0f} a second "
          f"(batches of {template['WorkerBatchSize']} within the {template['WorkerBatchingWindowSeconds']} s "
          "window)")
    width = max(len(what) for bill in bills.values() for what, *_ in bill)
    print(f"  {'':<{width}}  {'trickle':>9}  {'busy':>9}")
    details = []
    for trickle_line, busy_line in zip(bills["trickle"], bills["busy"]):
        label = trickle_line[0]
        if label != busy_line[0]:
            # What differs between the cases (a batch's size, its duration) is said below the table.
            label = label.split(" (")[0]
            details += [f"trickle: {trickle_line[0]}", f"busy: {busy_line[0]}"]
        print(f"  {label:<{width}}  ${trickle_line[3]:>8.3f}  ${busy_line[3]:>8.3f}")
    totals = [sum(line[3] for line in bills[name]) for name, _ in cases]
    print(f"  {'in all':<{width}}  ${totals[0]:>8.3f}  ${totals[1]:>8.3f}")
    for detail in details:
        print(f"  {detail}")
    windows = []
    for window in (0, 1, 5, 10, 20):
        at_window = dataclasses.replace(measured, template={**template, "WorkerBatchingWindowSeconds": window})
        windows.append(f"{window} s ${sum(line[3] for line in lines(at_window, trickle)):.2f}")
    print(f"  the trickle at other batching windows (WorkerBatchingWindowSeconds; a webhook waits up to the "
          f"window before the worker sees it): {', '.join(windows)}")
    print(f"  each KB more in an item: one more write unit, ${DYNAMODB_PER_MILLION_WRITE_UNITS:.3f} a million "
          "webhooks; a refused write (a duplicate, an older version) costs the table's units of the larger of the "
          "two items, and no index write")
    print("  not per webhook, so not above: the mappings' empty long polls of an idle queue (AWS does not publish "
          "how many pollers it keeps), point-in-time recovery and storage (per GB-month), the stream "
          "(free to Lambda), a body over 256 KiB (one S3 put and get: none in this sample)")
    return totals
