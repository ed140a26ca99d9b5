"""A local stand-in for Tripletex's API v2: the event and token part, as Tripletex's OpenAPI spec
(tools/simulator/spec/tripletex-openapi-events.json, v2.74.00) describes it.

It is the one stateful Tripletex of the local stack and the tests: session tokens, Basic auth, the
event catalogue, event subscriptions with versions, write-only secrets, Tripletex's envelopes and error
format, rate-limit headers and 429s; and objects that change, whose webhooks it delivers with retries,
disabling, duplicates and reordering (tools/simulator/tripletex_webhooks.py). A control API under /_sim/ lets a
test set a subscription's status (as Tripletex does when it disables one), inject 429/5xx/latency/
concurrent edits, expire sessions, make changes or run a workload, and read the truth.

Listens on loopback only.

  python3 -m tools.simulator.tripletex_simulator --port 8700 [--config infra/local/tripletex-simulator.json]

Where it knowingly differs from Tripletex:
- a targetUrl on a loopback host may use plain http (the local receiver has no TLS); any other target
  must be absolute https, as in Tripletex;
- setting `status` by PUT accepts ACTIVE and DISABLED only (the DISABLED_* values are the system's).
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

from tools.simulator import objects
from tools.simulator.tripletex_webhooks import OBJECT_TYPES, Webhooks

OSLO = ZoneInfo("Europe/Oslo")
STATUSES = ("ACTIVE", "DISABLED", "DISABLED_TOO_MANY_ERRORS", "DISABLED_RATE_LIMIT_EXCEEDED", "DISABLED_MISUSE")
SETTABLE_STATUSES = ("ACTIVE", "DISABLED")
WRITE_ONLY = ("authHeaderValue", "hmacSharedSecret")
SUBSCRIPTION_FIELDS = ("id", "version", "changes", "url", "event", "targetUrl", "fields", "status",
                       "authHeaderName", "authHeaderValue", "hmacSharedSecret")
DEFAULT_EVENTS = {
    f"{subject}.{verb}": f"{verb.capitalize()} of {subject}"
    for subject in ("customer", "supplier", "product", "order", "project", "voucher", "employee",
                    "contact", "account")
    for verb in ("create", "update", "delete")
}
DEFAULT_EVENTS.update({
    "invoice.charged": "An invoice is charged",
    "notification.sent": "A notification is sent to the token's employee",
    "voucherstatus.ready": "A voucher is ready",
    "closeGroup.create": "Postings are matched (closed)",
    "closeGroup.delete": "A close group is removed",
})


class ApiError(Exception):
    """An error in Tripletex's envelope."""

    def __init__(self, status, code, message, validation=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.validation = validation or []
        self.headers = headers or {}

    def body(self, request_id):
        return {
            "status": self.status, "code": self.code, "message": self.message,
            "link": "https://tripletex.no/v2-docs/", "developerMessage": None,
            "validationMessages": [
                {"field": field, "message": message, "path": None, "rootId": None}
                for field, message in self.validation
            ] or None,
            "requestId": request_id,
        }


def validation_failed(field, message, code=18000):
    return ApiError(422, code, "Validering feilet.", [(field, message)])


class Company:
    def __init__(self, company_id, consumer_token, employee_token, client_company_ids=()):
        self.id = company_id
        self.consumer_token = consumer_token
        self.employee_token = employee_token
        self.client_company_ids = set(client_company_ids)


class RateLimit:
    """Counted per employee per consumer, as Tripletex does; `reset` is seconds left in the period."""

    def __init__(self, limit, period_seconds):
        self.limit, self.period = limit, period_seconds
        self.windows = {}

    def take(self, key, now):
        started, used = self.windows.get(key, (now, 0))
        if now - started >= self.period:
            started, used = now, 0
        used += 1
        self.windows[key] = (started, used)
        remaining = max(0, self.limit - used)
        reset = max(0, int(round(self.period - (now - started))))
        headers = {"X-Rate-Limit-Limit": str(self.limit), "X-Rate-Limit-Remaining": str(remaining),
                   "X-Rate-Limit-Reset": str(reset)}
        return used <= self.limit, headers


class Simulator:
    """All of Tripletex's state; every method runs under one lock."""

    def __init__(self, events=None, rate_limit=1000, rate_period=60, base_url="https://tripletex.no/v2"):
        self.lock = threading.RLock()
        self.base_url = base_url
        self.events = dict(events or DEFAULT_EVENTS)
        self.companies = {}
        self.sessions = {}  # token -> {"company": Company, "expires": date, "id": int}
        self.subscriptions = {}  # id -> dict (with write-only fields) and "_company"
        self.next_id = 1
        self.rate_limit = RateLimit(rate_limit, rate_period)
        self.faults = []
        self.latency_ms = 0
        self.list_limit = objects.LIST_LIMIT
        self.object_faults = objects.ObjectFaults()
        self.requests = []  # (method, path) of every API call, for tests
        self.webhooks = Webhooks(self)

    # -- set-up ----------------------------------------------------------------------------------

    def add_company(self, company_id, consumer_token, employee_token, client_company_ids=()):
        with self.lock:
            self.companies[employee_token] = Company(company_id, consumer_token, employee_token,
                                                     client_company_ids)

    def reset(self):
        with self.lock:
            self.companies.clear()
            self.sessions.clear()
            self.subscriptions.clear()
            self.faults.clear()
            self.requests.clear()
            self.latency_ms = 0
            self.list_limit = objects.LIST_LIMIT
            self.object_faults = objects.ObjectFaults()
            self.next_id = 1
            self.rate_limit.windows.clear()
            self.webhooks.reset()

    # -- faults ----------------------------------------------------------------------------------

    def take_fault(self, method, path):
        with self.lock:
            for fault in self.faults:
                if fault.get("method", method) != method or not path.startswith(fault.get("path", "/v2/")):
                    continue
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self.faults.remove(fault)
                return dict(fault)
        return None

    # -- tokens ----------------------------------------------------------------------------------

    def create_session(self, consumer_token, employee_token, expiration_date):
        with self.lock:
            company = self.companies.get(employee_token or "")
            if not consumer_token or not any(c.consumer_token == consumer_token for c in self.companies.values()):
                raise validation_failed("arg:consumerToken", "The consumer token is invalid or does not exist.")
            if company is None or company.consumer_token != consumer_token:
                raise validation_failed("arg:employeeToken", "The employee token is invalid or does not exist.")
            try:
                expires = datetime.date.fromisoformat(expiration_date or "")
            except ValueError:
                raise validation_failed("arg:expirationDate", "Ugyldig dato.", code=21000) from None
            if expires < datetime.datetime.now(OSLO).date():
                raise validation_failed("arg:expirationDate", "The expiration date has passed.")
            token = base64.b64encode(json.dumps({"tokenId": len(self.sessions) + 1,
                                                 "token": str(uuid.uuid4())}).encode()).decode()
            session_id = len(self.sessions) + 1
            self.sessions[token] = {"company": company, "expires": expires, "id": session_id}
            return {
                "id": session_id, "version": 0, "url": f"{self.base_url}/token/session/{session_id}",
                "consumerToken": {"id": 1, "version": 0, "url": f"{self.base_url}/token/consumer/1"},
                "employeeToken": {"id": 1, "version": 0, "url": f"{self.base_url}/token/employee/1"},
                "expirationDate": expires.isoformat(), "token": token,
            }

    def authenticate(self, authorization):
        """The company a request acts for, from `Authorization: Basic <company>:<session token>`."""
        unauthorized = ApiError(401, 3000, "Authorization is required.")
        if not authorization or not authorization.startswith("Basic "):
            raise unauthorized
        try:
            user, _, token = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise unauthorized from None
        with self.lock:
            session = self.sessions.get(token)
            if session is None or session["expires"] < datetime.datetime.now(OSLO).date():
                raise ApiError(401, 3000, "The session token is invalid or has expired.")
            company = session["company"]
            if user not in ("", "0") and (not user.isdigit() or int(user) not in company.client_company_ids):
                raise ApiError(403, 9000, "You do not have access to this company.")
            acting_for = company.id if user in ("", "0") else int(user)
            return company, acting_for

    def expire_sessions(self):
        with self.lock:
            for session in self.sessions.values():
                session["expires"] = datetime.date(2000, 1, 1)

    # -- subscriptions ---------------------------------------------------------------------------

    def public(self, subscription, fields=""):
        selected = parse_fields(fields)
        shown = {}
        for name in SUBSCRIPTION_FIELDS:
            if name in WRITE_ONLY or name.startswith("_"):
                continue
            if name == "changes" and "changes" not in selected:
                continue
            if selected and "*" not in selected and name not in selected:
                continue
            if name in subscription:
                shown[name] = subscription[name]
        return shown

    def owned(self, acting_for, subscription_id):
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None or subscription["_company"] != acting_for:
            raise ApiError(404, 6000, "Object not found.")
        return subscription

    def validate(self, body, creating):
        if not isinstance(body, dict):
            raise ApiError(422, 22000, "Request body is not a JSON object.")
        unknown = sorted(set(body) - set(SUBSCRIPTION_FIELDS))
        if unknown:
            raise validation_failed(unknown[0], "Feltet eksisterer ikke i objektet.", code=16000)
        if creating and (body.get("id") is not None or body.get("version") is not None):
            raise validation_failed("id", "A new object must not have id or version set.")
        if creating or "event" in body:
            if body.get("event") not in self.events:
                raise validation_failed("event", f"Unknown event: {body.get('event')}")
        if creating or "targetUrl" in body:
            check_target_url(body.get("targetUrl"))
        if "status" in body and body["status"] not in SETTABLE_STATUSES:
            raise validation_failed("status", "Status can be set to ACTIVE or DISABLED.", code=15000)
        secret = body.get("hmacSharedSecret")
        if secret is not None and not 10 <= len(secret) <= 100:
            raise validation_failed("hmacSharedSecret", "Must be 10 to 100 characters.", code=15000)
        for name, limit in (("event", 255), ("fields", 255), ("authHeaderName", 255), ("authHeaderValue", 4096),
                            ("targetUrl", 65535)):
            if isinstance(body.get(name), str) and len(body[name]) > limit:
                raise validation_failed(name, f"Longer than {limit} characters.", code=15000)

    def create(self, acting_for, body):
        with self.lock:
            self.validate(body, creating=True)
            subscription_id = self.next_id
            self.next_id += 1
            subscription = {
                "id": subscription_id, "version": 0, "url": f"{self.base_url}/event/subscription/{subscription_id}",
                "event": body["event"], "targetUrl": body["targetUrl"], "fields": body.get("fields") or "",
                "status": body.get("status") or "ACTIVE", "authHeaderName": body.get("authHeaderName"),
                "changes": [change("CREATE")], "_company": acting_for,
            }
            for name in WRITE_ONLY:
                if body.get(name) is not None:
                    subscription[name] = body[name]
            self.subscriptions[subscription_id] = subscription
            return subscription

    def update(self, acting_for, subscription_id, body):
        with self.lock:
            subscription = self.owned(acting_for, subscription_id)
            self.validate(body, creating=False)
            self.check_version(subscription, body)
            self.apply_update(subscription, body)
            return subscription

    def check_version(self, subscription, body):
        if body.get("version") is not None and body["version"] != subscription["version"]:
            raise ApiError(409, 8000, "Objektet har blitt endret av en annen bruker (revisjonsfeil).",
                           [("version", f"Current version is {subscription['version']}.")])

    def apply_update(self, subscription, body):
        for name in ("event", "targetUrl", "fields", "status", "authHeaderName", *WRITE_ONLY):
            if name in body and body[name] is not None:
                subscription[name] = body[name]
        subscription["version"] += 1
        subscription["changes"].append(change("UPDATE"))
        self.webhooks.on_status_change(subscription)

    def update_list(self, acting_for, bodies):
        with self.lock:
            if not isinstance(bodies, list):
                raise ApiError(422, 22000, "Request body is not a JSON array.")
            targets = []
            for body in bodies:
                if not isinstance(body, dict) or body.get("id") is None or body.get("version") is None:
                    raise validation_failed("id", "Every object must have id and version.")
                subscription = self.owned(acting_for, body["id"])
                self.validate(body, creating=False)
                self.check_version(subscription, body)
                targets.append((subscription, body))
            for subscription, body in targets:
                self.apply_update(subscription, body)
            return [subscription for subscription, _ in targets]

    def create_list(self, acting_for, bodies):
        with self.lock:
            if not isinstance(bodies, list):
                raise ApiError(422, 22000, "Request body is not a JSON array.")
            for body in bodies:
                self.validate(body, creating=True)
            return [self.create(acting_for, body) for body in bodies]

    def delete(self, acting_for, subscription_ids):
        with self.lock:
            for subscription_id in subscription_ids:
                self.owned(acting_for, subscription_id)
            for subscription_id in subscription_ids:
                del self.subscriptions[subscription_id]

    def listing(self, acting_for, sorting=""):
        with self.lock:
            values = [s for s in self.subscriptions.values() if s["_company"] == acting_for]
        for key in reversed([k for k in sorting.split(",") if k]):
            name = key.lstrip("-")
            values.sort(key=lambda s, n=name: (s.get(n) is None, s.get(n)), reverse=key.startswith("-"))
        return values

    def set_status(self, subscription_id, status):
        """What Tripletex itself does: no version bump, no PUT."""
        with self.lock:
            subscription = self.subscriptions.get(subscription_id)
            if subscription is None:
                raise ApiError(404, 6000, "Object not found.")
            if status not in STATUSES:
                raise validation_failed("status", f"Unknown status {status}")
            subscription["status"] = status

    def bump_version(self, subscription_id):
        """Someone else edits the subscription: the next PUT with the old version gets a 409."""
        with self.lock:
            subscription = self.subscriptions[subscription_id]
            subscription["version"] += 1
            subscription["changes"].append(change("UPDATE"))


def change(kind):
    return {"employeeId": 1, "timestamp": datetime.datetime.now(OSLO).strftime("%Y-%m-%dT%H:%M:%S"),
            "changeType": kind}


def parse_fields(fields):
    """Top-level names of a fields filter (`a,b(c,d),*`)."""
    names, depth, current = set(), 0, ""
    for char in fields or "":
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            names.add(current.strip())
            current = ""
            continue
        if depth == 0 and char not in "()":
            current += char
    if current.strip():
        names.add(current.strip())
    return names


def check_target_url(url):
    parsed = urllib.parse.urlsplit(url or "")
    loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
        raise validation_failed("targetUrl", "Must be absolute and use HTTPS.", code=15000)
    if not parsed.hostname:
        raise validation_failed("targetUrl", "Must be absolute and use HTTPS.", code=15000)


def version_digest(values):
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TripletexSimulator/1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle and delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    @property
    def sim(self):
        return self.server.simulator

    def do_GET(self):  # noqa: N802 - http.server's names
        self.dispatch("GET")

    def do_POST(self):  # noqa: N802
        self.dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self.dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self.dispatch("DELETE")

    def read_body(self):
        raw = self.raw_body
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(422, 22000, "Request body is not valid JSON.") from None

    def send(self, status, body=None, headers=None):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("x-tlx-request-id", self.request_id)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def dispatch(self, method):
        self.request_id = str(uuid.uuid4())
        # Read the whole body before any answer, injected faults and refusals included: on a kept-alive
        # connection, an unread body would be taken for the start of the next request.
        length = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if path.startswith("/_sim/"):
                return self.control(method, path, query)
            with self.sim.lock:
                self.sim.requests.append((method, path))
                latency = self.sim.latency_ms
            fault = self.sim.take_fault(method, path)
            delay = (fault or {}).get("latencyMs", latency)
            if delay:
                time.sleep(delay / 1000)
            if fault and fault.get("kind") == "concurrentEdit":
                self.sim.bump_version(int(path.rsplit("/", 1)[-1]))
            elif fault and fault.get("status"):
                raise injected(fault)
            status, body, headers = self.route(method, path, query)
            self.send(status, body, headers)
        except ApiError as error:
            self.send(error.status, error.body(self.request_id), error.headers)

    def authenticated(self):
        company, acting_for = self.sim.authenticate(self.headers.get("Authorization"))
        with self.sim.lock:
            allowed, headers = self.sim.rate_limit.take((company.consumer_token, company.employee_token),
                                                        time.monotonic())
        if not allowed:
            headers = dict(headers)
            headers.pop("X-Rate-Limit-Reset")  # Tripletex leaves it out of 429s (tripletex-api2 #103)
            raise ApiError(429, 0, "Too many requests.", headers=headers)
        return acting_for, headers

    def route(self, method, path, query):
        sim = self.sim
        if not path.startswith("/v2/"):
            raise ApiError(404, 6000, "Object not found.")
        path = path[3:]
        if path == "/token/session/:create" and method == "PUT":
            return 200, {"value": sim.create_session(query.get("consumerToken"), query.get("employeeToken"),
                                                     query.get("expirationDate"))}, {}
        if path == "/token/session/:create" and method == "POST":
            body = self.read_body() or {}
            return 201, {"value": sim.create_session(body.get("consumerToken"), body.get("employeeToken"),
                                                     body.get("expirationDate"))}, {}
        if path == "/event" and method == "GET":
            return 200, {"value": {name: {"description": text} for name, text in sim.events.items()}}, {}
        if path.startswith("/event/") and not path.startswith("/event/subscription") and method == "GET":
            name = path[len("/event/"):]
            if name not in sim.events:
                raise ApiError(404, 6000, "Object not found.")
            subject = name.split(".")[0]
            example = {"subscriptionId": 1, "event": name, "id": 1,
                       "value": None if name.endswith(".delete") else {"id": 1, "version": 0}}
            return 200, {"value": {"name": name, "description": sim.events[name],
                                   "payloadModel": subject[:1].upper() + subject[1:], "examples": [example]}}, {}

        acting_for, limits = self.authenticated()
        if path == "/token/session/>whoAmI" and method == "GET":
            return 200, {"value": {"employeeId": 1, "actualEmployeeId": 1, "companyId": acting_for,
                                   "language": "no", "loggedInWithConnect": False, "employeeIsProxy": False}}, limits
        if path == "/company/>withLoginAccess" and method == "GET":
            # The client companies the session's key may log into (Basic user = their company id).
            company, _ = sim.authenticate(self.headers.get("Authorization"))
            clients = [{"id": 500_000 + client, "version": 0, "name": f"Client company {client}",
                        "organizationNumber": f"{900_000_000 + client}", "customerCompanyId": client,
                        "accountantOrSimilar": False}
                       for client in sorted(company.client_company_ids)]
            status, body = objects.page_of(clients, query, None)
            return status, body, limits
        if path.startswith("/token/session/") and method == "DELETE":
            with sim.lock:
                sim.sessions.pop(path[len("/token/session/"):], None)
            return 204, None, limits
        if path == "/event/subscription" and method == "GET":
            return self.list_response(sim.listing(acting_for, query.get("sorting", "")), query, limits)
        if path == "/event/subscription" and method == "POST":
            return 201, {"value": sim.public(sim.create(acting_for, self.read_body()))}, limits
        if path == "/event/subscription/list":
            if method == "POST":
                created = sim.create_list(acting_for, self.read_body())
                return 201, list_envelope([sim.public(s) for s in created], 0), limits
            if method == "PUT":
                updated = sim.update_list(acting_for, self.read_body())
                return 200, list_envelope([sim.public(s) for s in updated], 0), limits
            if method == "DELETE":
                sim.delete(acting_for, parse_ids(query.get("ids")))
                return 204, None, limits
        match = re.fullmatch(r"/event/subscription/(-?\d+)", path)
        if match:
            subscription_id = int(match.group(1))
            if method == "GET":
                return 200, {"value": sim.public(sim.owned(acting_for, subscription_id), query.get("fields", ""))}, limits
            if method == "PUT":
                return 200, {"value": sim.public(sim.update(acting_for, subscription_id, self.read_body()))}, limits
            if method == "DELETE":
                sim.delete(acting_for, [subscription_id])
                return 204, None, limits
        located = objects.endpoint_of(path)
        if located and method == "GET":
            return self.object_answer(located, acting_for, query) + (limits,)
        raise ApiError(404, 6000, "Object not found.")

    def object_answer(self, located, acting_for, query):
        """A list page or one object of the endpoints a sync reads (tools/simulator/objects.py), with
        the object faults set for it."""
        list_path, object_id = located
        sim = self.sim
        kind, id_filter = objects.ENDPOINTS[objects.PARTITION_ENDPOINTS.get(list_path, list_path)][:2]
        try:
            with sim.lock:
                if object_id is not None:
                    return 200, objects.get_object(sim.webhooks.objects, acting_for, list_path, object_id, query)
                values = objects.list_objects(sim.webhooks.objects, sim.webhooks.live_ids, acting_for, list_path,
                                              query, sim.list_limit)
                fetch = list_path in objects.ENDPOINTS and bool(query.get(id_filter))
                if fetch:
                    values = sim.object_faults.omit_from_fetch(values)
                status, body = objects.page_of(values, query, self.headers.get("If-None-Match"))
                full_page = body is not None and body["count"] == int(query.get("count") or 1000)
                victim = None
                if not fetch and full_page and "delete" in OBJECT_TYPES.get(kind, (0, ()))[1]:
                    victim = sim.object_faults.delete_after_page(body["values"])
            if victim is not None:
                sim.webhooks.change(acting_for, kind, "delete", victim)
            return status, body
        except objects.ObjectError as error:
            raise ApiError(error.status, error.code, error.message, error.validation) from None

    def list_response(self, values, query, limits):
        try:
            start = int(query.get("from") or 0)
            count = int(query.get("count") or 1000)
        except ValueError:
            raise validation_failed("from", "Must be a whole number.", code=21000) from None
        shown = [self.sim.public(s, query.get("fields", "")) for s in values]
        page = shown[start:start + count]
        envelope = list_envelope(page, start, full_size=len(shown))
        if self.headers.get("If-None-Match") is not None:
            digest = version_digest(shown)
            if self.headers.get("If-None-Match") == digest:
                return 304, None, limits
            envelope["versionDigest"] = digest
        return 200, envelope, limits

    def control(self, method, path, query):
        sim = self.sim
        body = self.read_body() or {}
        if path == "/_sim/reset" and method == "POST":
            sim.reset()
        elif path == "/_sim/companies" and method == "POST":
            sim.add_company(int(body["companyId"]), body["consumerToken"], body["employeeToken"],
                            body.get("clientCompanyIds", []))
        elif path == "/_sim/faults" and method == "POST":
            with sim.lock:
                sim.faults.append({"count": 1, **body})
        elif path == "/_sim/latency" and method == "POST":
            with sim.lock:
                sim.latency_ms = int(body.get("ms", 0))
        elif path == "/_sim/sessions/expire" and method == "POST":
            sim.expire_sessions()
        elif path == "/_sim/rate-limit" and method == "POST":
            with sim.lock:
                sim.rate_limit = RateLimit(int(body["limit"]), float(body.get("periodSeconds", 60)))
        elif path == "/_sim/subscriptions" and method == "GET":
            with sim.lock:  # includes write-only fields: this is the tests' view, never Tripletex's
                return self.send(200, {"values": [dict(s) for s in sim.subscriptions.values()]})
        elif (match := re.fullmatch(r"/_sim/subscriptions/(\d+)/status", path)) and method == "PUT":
            sim.set_status(int(match.group(1)), body.get("status"))
        elif path == "/_sim/subscriptions" and method == "POST":
            # Another integration's (or a person's) subscription, created in a company directly.
            subscription = sim.create(int(body.pop("_company")), body)
            return self.send(201, {"value": sim.public(subscription)})
        elif path == "/_sim/webhooks/config" and method == "POST":
            with sim.lock:
                sim.webhooks.config.update(body)
                sim.webhooks.random = random.Random(sim.webhooks.config.seed)
        elif path == "/_sim/changes" and method == "POST":
            key = sim.webhooks.change(int(body["companyId"]), body["type"], body["verb"], body.get("id"),
                                      body.get("fields"), deliver=body.get("deliver", True))
            return self.send(201, {"companyId": key[0], "type": key[1], "id": key[2]})
        elif path == "/_sim/workload" and method == "POST":
            arguments = (body["companyIds"], int(body["changes"]), int(body["objects"]),
                         float(body.get("rate", 0)), int(body.get("seed", 1)), body.get("types"))
            threading.Thread(target=sim.webhooks.run_workload, args=arguments, daemon=True).start()
            with sim.lock:
                sim.webhooks.workload_running = True
        elif path == "/_sim/objects" and method == "GET":
            company = query.get("companyId")
            return self.send(200, {"values": sim.webhooks.truth(int(company) if company else None)})
        elif path == "/_sim/objects" and method == "POST":
            # Objects made in Tripletex, e.g. before the stack subscribed: what a backfill must bring.
            kind, company = body["type"], int(body["companyId"])
            verb = OBJECT_TYPES.get(kind, (0, ("create",)))[1][0]
            # deliver: false makes objects no webhook announces even where a subscription exists.
            ids = [sim.webhooks.change(company, kind, verb, fields=body.get("fields"),
                                       deliver=body.get("deliver", True))[2]
                   for _ in range(int(body.get("count", 1)))]
            return self.send(201, {"companyId": company, "type": kind, "ids": ids})
        elif path == "/_sim/object-faults" and method == "POST":
            with sim.lock:  # deletes between the pages of a listing, fetch answers that leave one out
                sim.object_faults.configure(body)
        elif path == "/_sim/object-faults" and method == "GET":
            with sim.lock:
                return self.send(200, dict(sim.object_faults.counts))
        elif path == "/_sim/list-limit" and method == "POST":
            with sim.lock:  # Tripletex's 10,000, made small so that tests meet it
                sim.list_limit = int(body["limit"])
        elif path == "/_sim/webhooks/status" and method == "GET":
            return self.send(200, sim.webhooks.status())
        elif (match := re.fullmatch(r"/_sim/subscriptions/(\d+)/break", path)) and method == "POST":
            with sim.lock:  # its deliveries fail until Tripletex disables it
                sim.webhooks.broken.add(int(match.group(1)))
        elif path == "/_sim/requests" and method == "GET":
            with sim.lock:
                return self.send(200, {"values": [list(r) for r in sim.requests]})
        else:
            raise ApiError(404, 6000, "No such control.")
        return self.send(204)


def injected(fault):
    status = int(fault["status"])
    headers = {}
    if status == 429 and fault.get("resetSeconds") is not None:
        headers["X-Rate-Limit-Reset"] = str(fault["resetSeconds"])
    code = {429: 0, 500: 1000, 502: 1000, 503: 1000, 409: 8000, 401: 3000}.get(status, 1000)
    return ApiError(status, code, fault.get("message", "Injected by the simulator."), headers=headers)


def list_envelope(values, start, full_size=None):
    return {"fullResultSize": len(values) if full_size is None else full_size, "from": start,
            "count": len(values), "versionDigest": None, "values": values}


def parse_ids(text):
    try:
        return [int(part) for part in (text or "").split(",") if part.strip()]
    except ValueError:
        raise validation_failed("ids", "Must be a comma-separated list of ids.", code=12000) from None


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port, simulator):
        self.simulator = simulator
        super().__init__(("127.0.0.1", port), Handler)


def load_config(simulator, path):
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    for company in config.get("companies", []):
        simulator.add_company(int(company["companyId"]), company["consumerToken"], company["employeeToken"],
                              company.get("clientCompanyIds", []))
    if "rateLimit" in config:
        simulator.rate_limit = RateLimit(int(config["rateLimit"]["limit"]),
                                         float(config["rateLimit"].get("periodSeconds", 60)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("TRIPLETEX_SIMULATOR_PORT", 8700)))
    parser.add_argument("--config", help="JSON with companies (consumer/employee tokens) and rate limits")
    args = parser.parse_args()
    simulator = Simulator()
    if args.config:
        load_config(simulator, args.config)
    server = SimulatorServer(args.port, simulator)
    print(f"[tripletex-simulator] listening on http://127.0.0.1:{server.server_address[1]}/v2", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
