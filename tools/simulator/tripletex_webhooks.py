"""The webhook side of the Tripletex simulator: objects that change, and the deliveries of those changes
to every matching ACTIVE subscription, the way Tripletex's webhook documentation describes them:

- objects carry Tripletex-style ids and versions; a change bumps the version;
- for each change, a POST of `{subscriptionId, event, id, value}` to each ACTIVE subscription of the
  company for that event, `value` filtered by the subscription's `fields` (null on delete), with its
  auth: the custom header, Basic from `user:pass@` in targetUrl, a query token left in targetUrl, and
  with `hmacSharedSecret` an `idempotency-key` header (stable across retries) and `x-request-signature`;
- changes in quick succession are coalesced: a pending delivery is replaced by the newer version, so
  versions are skipped as Tripletex skips them;
- a failed delivery (non-2xx, no answer) is retried with growing intervals (Tripletex's ~30 hours,
  scaled by `timeScale`); a subscription failing continuously for `disableAfterSeconds` becomes
  DISABLED_TOO_MANY_ERRORS, its pending deliveries are dropped and no more are made for it;
- faults on demand: duplicate deliveries, reordering (random extra delay), drops, and a subscription
  whose deliveries fail until it is disabled.

It keeps the truth (every object's current state) and counts what it did, for a chaos run to compare.
"""

import base64
import bisect
import collections
import datetime
import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import random
import threading
import time
import urllib.parse
import uuid

# Tripletex's retry intervals in seconds, about 30 hours in all (the docs give only "increasing
# intervals over about 30 hours"); multiplied by timeScale.
RETRY_SCHEDULE = [60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 7200]
OBJECT_TYPES = {
    # type -> (first id, events it has): the types the seeded workload changes
    "product": (10_000_000, ("create", "update", "delete")),
    "customer": (20_000_000, ("create", "update", "delete")),
    "order": (30_000_000, ("create", "update", "delete")),
    "voucher": (40_000_000, ("create", "update", "delete")),
    "invoice": (50_000_000, ("charged",)),
}

# Every type the object endpoints serve (tools/simulator/objects.py): its first id, and the field an
# update changes. Objects carry only fields Tripletex's schema for the type has.
FIRST_IDS = {
    **{kind: first for kind, (first, _) in OBJECT_TYPES.items()},
    "supplier": 60_000_000, "employee": 70_000_000, "contact": 75_000_000, "project": 80_000_000,
    "account": 85_000_000, "voucherstatus": 90_000_000, "closeGroup": 95_000_000,
}
UPDATED_FIELD = {
    "product": "name", "customer": "name", "supplier": "name", "project": "name", "account": "name",
    "order": "reference", "voucher": "description", "invoice": "comment", "employee": "lastName",
    "contact": "lastName",
}
FIRST_DATE = datetime.date(2015, 1, 1)


def object_date(object_id):
    """A stable date between 2015 and 2027 for a dated object: windows and their halving matter."""
    return (FIRST_DATE + datetime.timedelta(days=(object_id * 7919) % 4400)).isoformat()


def new_object(kind, object_id, base_url):
    """A new object of `kind` with the fields Tripletex's schema for it has, at version 0."""
    value = {"id": object_id, "version": 0, "url": f"{base_url}/{kind}/{object_id}"}
    number = object_id % 100_000
    value.update({
        "product": lambda: {"name": f"product {object_id}", "number": str(number), "isInactive": False},
        # About one customer or supplier in seven is inactive: hidden from a default listing.
        "customer": lambda: {"name": f"customer {object_id}", "customerNumber": number,
                             "isInactive": object_id % 7 == 0},
        "supplier": lambda: {"name": f"supplier {object_id}", "supplierNumber": number,
                             "isInactive": object_id % 7 == 0},
        "order": lambda: {"number": str(number), "orderDate": object_date(object_id), "reference": ""},
        # About one voucher in seven is not posted yet: a temporary number, listed at >nonPosted.
        "voucher": lambda: {"date": object_date(object_id), "description": f"voucher {object_id}",
                            **({"number": 0, "tempNumber": number + 1} if object_id % 7 == 3 else
                               {"number": number + 1, "tempNumber": 0})},
        "invoice": lambda: {"invoiceNumber": number, "invoiceDate": object_date(object_id), "comment": ""},
        # About one employee in five is an external contact: hidden unless asked for.
        "employee": lambda: {"firstName": "Employee", "lastName": str(object_id), "isContact": object_id % 5 == 0},
        "contact": lambda: {"firstName": "Contact", "lastName": str(object_id)},
        "project": lambda: {"name": f"project {object_id}", "number": str(number)},
        "account": lambda: {"name": f"account {object_id}", "number": number, "isInactive": False},
        "voucherstatus": lambda: {"status": "WAITING", "type": "TRIPLETEX"},
        "closeGroup": lambda: {"date": object_date(object_id)},
    }[kind]())
    return value


def filter_fields(value, fields):
    """The object as a subscription's `fields` shows it (top-level names; `*` or empty = all)."""
    names = {name.split("(")[0].strip() for name in (fields or "").split(",") if name.strip()}
    if not names or "*" in names:
        return dict(value)
    return {key: item for key, item in value.items() if key in names}


class ObjectDeleted(ValueError):
    """A change to an object already deleted (Tripletex never changes one, nor reuses its id)."""


class DeliveryConfig:
    def __init__(self):
        self.time_scale = 1.0
        self.disable_after_seconds = 7 * 24 * 3600.0
        self.duplicate_rate = 0.0
        self.max_copies = 1
        self.reorder_max_seconds = 0.0
        self.drop_rate = 0.0
        self.timeout_seconds = 10.0
        self.seed = 1

    def update(self, body):
        for key, attribute, kind in (("timeScale", "time_scale", float),
                                     ("disableAfterSeconds", "disable_after_seconds", float),
                                     ("duplicateRate", "duplicate_rate", float), ("maxCopies", "max_copies", int),
                                     ("reorderMaxSeconds", "reorder_max_seconds", float),
                                     ("dropRate", "drop_rate", float), ("timeoutSeconds", "timeout_seconds", float),
                                     ("seed", "seed", int)):
            if key in body:
                setattr(self, attribute, kind(body[key]))


class Delivery:
    def __init__(self, subscription_id, company, event, object_key, envelope, original=None):
        self.subscription_id = subscription_id
        self.company = company
        self.event = event
        self.object_key = object_key
        self.original = original  # a duplicate is the same delivery sent again: it has no body of its own
        self._envelope = envelope
        self.idempotency_key = original.idempotency_key if original else str(uuid.uuid4())
        self.attempt = 0
        self._sent = False

    # A duplicate reads (and freezes) its original's body: one idempotency-key, one body, however the
    # original was coalesced before the first of them went out.
    @property
    def envelope(self):
        return self.original.envelope if self.original else self._envelope

    @envelope.setter
    def envelope(self, envelope):
        if self.original:
            self.original.envelope = envelope
        else:
            self._envelope = envelope

    @property
    def sent(self):
        """Once any copy went out, a newer change no longer replaces the body."""
        return self.original.sent if self.original else self._sent

    @sent.setter
    def sent(self, sent):
        if self.original:
            self.original.sent = sent
        else:
            self._sent = sent


class Webhooks:
    """Objects, workload and deliveries; shares the simulator's lock and subscriptions."""

    def __init__(self, simulator, workers=8):
        self.sim = simulator
        self.config = DeliveryConfig()
        self.random = random.Random(1)
        self.objects = {}  # (company, type, id) -> {"value": dict, "deleted": bool}
        # (company, type) -> the ids of its live objects, sorted: a listing by id is a slice of it
        self.live_ids = {}
        self.next_ids = dict(FIRST_IDS)
        self.missed = set()  # object keys with a change no subscription could deliver (disabled)
        # object keys whose latest change was dropped on purpose (only a reconciliation brings it)
        self.undelivered = set()
        self.pending = {}  # (subscription id, object key) -> Delivery not yet sent
        self.queue = []  # heap of (due, sequence, Delivery)
        self.sequence = itertools.count()
        self.in_flight = 0
        self.failing = {}  # subscription id -> time of its first failure since a success
        self.broken = set()  # subscription ids whose deliveries fail on purpose
        self.stats = {key: 0 for key in (
            "changes", "deliveriesMade", "attempts", "succeeded", "failedAttempts", "retries",
            "duplicatesSent", "dropped", "givenUp", "droppedAtDisable", "subscriptionsDisabled",
            "changesWhileDisabled", "droppedSuperseded")}
        self.disabled_log = []  # (subscription id, event, company)
        self.answers = collections.Counter()  # the receiver's answers by status ("no answer" when none)
        self.workload_running = False
        self.workload_error = None  # why the last workload stopped before its end, if it did
        self.wakeup = threading.Condition(self.sim.lock)
        for _ in range(workers):
            threading.Thread(target=self.deliver_forever, daemon=True).start()

    # -- changes -----------------------------------------------------------------------------------

    def change(self, company, kind, verb, object_id=None, fields=None, deliver=True):
        """One change to an object, and its deliveries (none with `deliver=False`: a webhook Tripletex
        dropped). Returns the object's key."""
        with self.sim.lock:
            if verb in ("create", "charged", "ready"):
                object_id = self.next_ids[kind]
                self.next_ids[kind] += 1
                value = new_object(kind, object_id, self.sim.base_url)
                value.update(fields or {})
                self.objects[(company, kind, object_id)] = {"value": value, "deleted": False,
                                                            "changedAt": time.time()}
                # Ids only grow, so appending keeps the list sorted.
                self.live_ids.setdefault((company, kind), []).append(object_id)
            else:
                current = self.objects[(company, kind, object_id)]
                if current["deleted"]:
                    raise ObjectDeleted(f"{kind} {object_id} of company {company} is deleted: it does not change")
                if verb == "delete":
                    current["deleted"] = True
                    ids = self.live_ids.get((company, kind), [])
                    at = bisect.bisect_left(ids, object_id)
                    if at < len(ids) and ids[at] == object_id:
                        del ids[at]
                else:
                    current["value"] = {**current["value"], **(fields or {}),
                                        "version": current["value"]["version"] + 1}
                current["changedAt"] = time.time()
            key = (company, kind, object_id)
            self.stats["changes"] += 1
            if deliver:
                self.fan_out(company, f"{kind}.{verb}", key)
            else:
                self.stats["dropped"] += 1
                self.undelivered.add(key)
            return key

    def fan_out(self, company, event, key):
        state = self.objects[key]
        covering = [s for s in self.sim.subscriptions.values() if s["_company"] == company and s["event"] == event]
        if not any(s["status"] == "ACTIVE" for s in covering):
            if covering:
                self.missed.add(key)
                self.stats["changesWhileDisabled"] += 1
            return
        for subscription in covering:
            if subscription["status"] != "ACTIVE":
                self.missed.add(key)
                self.stats["changesWhileDisabled"] += 1
                continue
            value = None if state["deleted"] else filter_fields(state["value"], subscription.get("fields"))
            envelope = {"subscriptionId": subscription["id"], "event": event, "id": key[2], "value": value}
            waiting = self.pending.get((subscription["id"], key))
            if waiting is not None and not waiting.sent and waiting.event == event:
                waiting.envelope = envelope  # coalesced: the newer version replaces the waiting one
                continue
            delivery = Delivery(subscription["id"], company, event, key, envelope)
            self.stats["deliveriesMade"] += 1
            if self.random.random() < self.config.drop_rate:
                self.stats["dropped"] += 1
                self.undelivered.add(key)
                continue
            if key in self.undelivered:
                # A later change of the object is on its way: the dropped one needs no sync.
                self.undelivered.discard(key)
                self.stats["droppedSuperseded"] += 1
            self.pending[(subscription["id"], key)] = delivery
            copies = 1
            if self.config.max_copies > 1 and self.random.random() < self.config.duplicate_rate:
                copies = self.random.randint(2, self.config.max_copies)
                self.stats["duplicatesSent"] += copies - 1
            for copy in range(copies):
                self.schedule(delivery if copy == 0 else self.copy_of(delivery), self.jitter())

    def copy_of(self, delivery):
        return Delivery(delivery.subscription_id, delivery.company, delivery.event, delivery.object_key,
                        None, original=delivery)

    def jitter(self):
        return self.random.uniform(0, self.config.reorder_max_seconds) if self.config.reorder_max_seconds else 0.0

    def schedule(self, delivery, delay):
        heapq.heappush(self.queue, (time.monotonic() + delay, next(self.sequence), delivery))
        self.wakeup.notify()

    # -- delivery ----------------------------------------------------------------------------------

    def deliver_forever(self):
        while True:
            with self.sim.lock:
                while not self.queue or self.queue[0][0] > time.monotonic():
                    timeout = None if not self.queue else max(0.0, self.queue[0][0] - time.monotonic())
                    self.wakeup.wait(timeout)
                _, _, delivery = heapq.heappop(self.queue)
                subscription = self.sim.subscriptions.get(delivery.subscription_id)
                if subscription is None or subscription["status"] != "ACTIVE":
                    self.forget(delivery)
                    continue
                if self.pending.get((delivery.subscription_id, delivery.object_key)) is delivery:
                    del self.pending[(delivery.subscription_id, delivery.object_key)]
                delivery.sent = True
                delivery.attempt += 1
                self.stats["attempts"] += 1
                self.in_flight += 1
                target = subscription["targetUrl"]
                headers = self.auth_headers(subscription, delivery)
                broken = delivery.subscription_id in self.broken
                body = json.dumps(delivery.envelope).encode()
            status = None if broken else self.post(target, headers, body, delivery)
            ok = status is not None and 200 <= status < 300
            with self.sim.lock:
                self.in_flight -= 1
                if not broken:
                    self.answers[str(status) if status is not None else "no answer"] += 1
                if ok:
                    self.stats["succeeded"] += 1
                    self.failing.pop(delivery.subscription_id, None)
                else:
                    self.failed(delivery)
                self.wakeup.notify_all()

    def auth_headers(self, subscription, delivery):
        headers = {"Content-Type": "application/json", "User-Agent": "Tripletex-Webhook-Simulator"}
        if subscription.get("authHeaderName") and subscription.get("authHeaderValue"):
            headers[subscription["authHeaderName"]] = subscription["authHeaderValue"]
        parsed = urllib.parse.urlsplit(subscription["targetUrl"])
        if parsed.username is not None:
            credentials = f"{urllib.parse.unquote(parsed.username)}:{urllib.parse.unquote(parsed.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        secret = subscription.get("hmacSharedSecret")
        if secret:
            body = json.dumps(delivery.envelope).encode()
            message = delivery.idempotency_key.encode() + b"&" + body
            headers["idempotency-key"] = delivery.idempotency_key
            headers["x-request-signature"] = base64.b64encode(
                hmac.new(secret.encode(), message, hashlib.sha512).digest()).decode()
        return headers

    def post(self, target, headers, body, delivery):
        parsed = urllib.parse.urlsplit(target)
        path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        connection_type = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
        connection = connection_type(parsed.hostname, parsed.port, timeout=self.config.timeout_seconds)
        try:
            connection.request("POST", path, body=body, headers=headers)
            return connection.getresponse().status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def failed(self, delivery):
        self.stats["failedAttempts"] += 1
        now = time.monotonic()
        first_failure = self.failing.setdefault(delivery.subscription_id, now)
        subscription = self.sim.subscriptions.get(delivery.subscription_id)
        if subscription is None:
            return
        if now - first_failure >= self.config.disable_after_seconds * self.config.time_scale:
            self.disable(subscription)
            self.forget(delivery)
            return
        if delivery.attempt > len(RETRY_SCHEDULE):
            self.stats["givenUp"] += 1
            self.missed.add(delivery.object_key)
            return
        self.stats["retries"] += 1
        self.schedule(delivery, RETRY_SCHEDULE[delivery.attempt - 1] * self.config.time_scale)

    def disable(self, subscription):
        if subscription["status"] == "ACTIVE":
            subscription["status"] = "DISABLED_TOO_MANY_ERRORS"
            self.stats["subscriptionsDisabled"] += 1
            self.disabled_log.append((subscription["id"], subscription["event"], subscription["_company"]))
        self.broken.discard(subscription["id"])
        self.failing.pop(subscription["id"], None)
        # What is still queued for it is dropped as it comes due (deliver_forever), as with Tripletex.

    def forget(self, delivery):
        key = (delivery.subscription_id, delivery.object_key)
        if self.pending.get(key) is delivery:
            del self.pending[key]
        self.missed.add(delivery.object_key)
        self.stats["droppedAtDisable"] += 1

    def on_status_change(self, subscription):
        """A PUT set a subscription's status: an ACTIVE one starts afresh."""
        if subscription["status"] == "ACTIVE":
            self.failing.pop(subscription["id"], None)

    # -- workload ----------------------------------------------------------------------------------

    def run_workload(self, companies, changes, objects, rate, seed, kinds=None, burst_max=4, delete_rate=0.05):
        """`changes` changes over about `objects` objects per company set, at `rate` changes/s: creates
        first, then updates in bursts (so versions are skipped) and some deletes."""
        generator = random.Random(seed)
        kinds = kinds or list(OBJECT_TYPES)
        live = []
        created = done = 0
        interval = 1.0 / rate if rate else 0.0
        with self.sim.lock:
            self.workload_running = True
            self.workload_error = None
        try:
            while done < changes:
                done_before = done
                company = generator.choice(companies)
                # Spread the creates over the run: a non-create step makes about 2.5 changes (a burst).
                share = (objects - created) / max(1, changes - done)
                if created < objects and (not live or generator.random() < 2.5 * share / (1 + 1.5 * share)):
                    kind = generator.choice(kinds)
                    verb = OBJECT_TYPES[kind][1][0]
                    live.append(self.change(company, kind, verb))
                    created += 1
                    done += 1
                else:
                    candidates = [k for k in live if OBJECT_TYPES[k[1]][1] != ("charged",)]
                    if not candidates:
                        if created >= objects:
                            break  # nothing left that can change
                        continue
                    key = generator.choice(candidates)
                    try:
                        if generator.random() < delete_rate:
                            self.change(key[0], key[1], "delete", key[2])
                            live.remove(key)
                            done += 1
                        else:
                            for _ in range(min(generator.randint(1, burst_max), changes - done)):
                                text = f"changed {generator.random():.6f}"
                                self.change(key[0], key[1], "update", key[2], {UPDATED_FIELD[key[1]]: text})
                                done += 1
                    except ObjectDeleted:
                        # A fault (a deletion mid-listing) deleted it: it is no longer the workload's.
                        live.remove(key)
                if interval:
                    # Paced by the changes made, a burst counting each of its updates.
                    time.sleep(interval * (done - done_before))
        except Exception as error:
            # Said by the status, so that a driver waiting for the workload fails with the cause.
            with self.sim.lock:
                self.workload_error = f"the workload stopped at {done} of {changes} changes: {error!r}"
            raise
        finally:
            with self.sim.lock:
                self.workload_running = False

    # -- views -------------------------------------------------------------------------------------

    def truth(self, company_id=None):
        """Every object as Tripletex has it (of one company, when named)."""
        with self.sim.lock:
            return [{"companyId": company, "type": kind, "id": object_id, "deleted": state["deleted"],
                     "version": state["value"]["version"], "value": state["value"],
                     "missedWhileDisabled": (company, kind, object_id) in self.missed,
                     "lastChangeDropped": (company, kind, object_id) in self.undelivered,
                     "changedAt": state.get("changedAt")}
                    for (company, kind, object_id), state in self.objects.items()
                    if company_id is None or company == company_id]

    def status(self):
        with self.sim.lock:
            return {**self.stats, "answers": dict(self.answers), "pending": len(self.queue), "inFlight": self.in_flight,
                    "workloadRunning": self.workload_running, "workloadError": self.workload_error,
                    "disabled": [{"subscriptionId": s, "event": e, "companyId": c} for s, e, c in self.disabled_log]}

    def reset(self):
        with self.sim.lock:
            self.objects.clear()
            self.live_ids.clear()
            self.missed.clear()
            self.undelivered.clear()
            self.pending.clear()
            self.queue.clear()
            self.failing.clear()
            self.broken.clear()
            self.disabled_log.clear()
            self.next_ids = dict(FIRST_IDS)
            for key in self.stats:
                self.stats[key] = 0
            self.answers.clear()
            self.config = DeliveryConfig()
            self.random = random.Random(1)
