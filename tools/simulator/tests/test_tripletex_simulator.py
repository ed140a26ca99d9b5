"""The simulator answers like Tripletex: every operation of the event and token part of Tripletex's
OpenAPI spec (tools/simulator/spec/tripletex-openapi-events.json) is served with its documented status, and every
body it returns validates against the spec's schema with no field the spec does not have.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import base64
import datetime
import http.client
import json
import os
import unittest

import jsonschema

from tools.simulator import tripletex_simulator
from tools.simulator.tests.client import SimulatorTestCase, strict

SPEC_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "spec", "tripletex-openapi-events.json")


class SimulatorConformsToTheSpec(SimulatorTestCase):
    SPEC_PATH = SPEC_PATH

    def setUp(self):
        self.simulator.reset()
        self.simulator.add_company(100, "consumer", "employee")
        tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
        status, body, _ = self.call("PUT", f"/v2/token/session/:create?consumerToken=consumer&employeeToken=employee&expirationDate={tomorrow}")
        self.assertEqual(status, 200)
        self.token = body["value"]["token"]

    def validate(self, body, operation, status):
        content = operation["responses"][str(status)].get("content", {})
        schema = next(iter(content.values()), {}).get("schema")
        if schema is None:
            self.assertIsNone(body)
            return
        jsonschema.validate(body, {**strict(schema), "definitions": self.definitions})

    def subscription(self, event="product.create"):
        status, body, _ = self.call("POST", "/v2/event/subscription",
                                    {"event": event, "targetUrl": "https://receiver.example/hook",
                                     "fields": "id,version", "authHeaderName": "X-Token",
                                     "authHeaderValue": "secret-value"})
        self.assertEqual(status, 201)
        return body["value"]

    def test_every_operation_of_the_spec_is_served_with_its_documented_status_and_schema(self):
        created = self.subscription()
        other = self.subscription("product.update")
        tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
        requests = {
            ("put", "/token/session/:create"): (f"?consumerToken=consumer&employeeToken=employee&expirationDate={tomorrow}", None),
            ("post", "/token/session/:create"): ("", {"consumerToken": "consumer", "employeeToken": "employee", "expirationDate": tomorrow}),
            ("get", "/token/session/>whoAmI"): ("", None),
            ("get", "/event"): ("", None),
            ("get", "/event/{eventType}"): ("", None),
            ("get", "/event/subscription"): ("?from=0&count=10", None),
            ("post", "/event/subscription"): ("", {"event": "order.create", "targetUrl": "https://r.example/"}),
            ("get", "/event/subscription/{id}"): ("", None),
            ("put", "/event/subscription/{id}"): ("", {"version": created["version"], "status": "DISABLED"}),
            ("post", "/event/subscription/list"): ("", [{"event": "order.update", "targetUrl": "https://r.example/"}]),
            ("put", "/event/subscription/list"): ("", None),
            ("delete", "/event/subscription/list"): ("", None),
            ("delete", "/event/subscription/{id}"): ("", None),
            ("delete", "/token/session/{token}"): ("", None),
        }
        served = set()
        for path, operations in self.spec["paths"].items():
            for method, operation in operations.items():
                query, body = requests[(method, path)]
                concrete = (path.replace("{eventType}", "product.create").replace("{id}", str(created["id"]))
                            .replace("{token}", "not-a-live-token"))
                if (method, path) == ("put", "/event/subscription/list"):
                    current = self.call("GET", f"/v2/event/subscription/{other['id']}")[1]["value"]
                    body = [{"id": other["id"], "version": current["version"], "fields": "id,version,name"}]
                if (method, path) == ("delete", "/event/subscription/list"):
                    query = f"?ids={other['id']}"
                status, answer, _ = self.call(method.upper(), "/v2" + concrete + query, body)
                documented = sorted(operation["responses"])
                self.assertIn(str(status), documented, f"{method.upper()} {path}: {status} {answer}")
                self.validate(answer, operation, status)
                served.add((method, path))
        self.assertEqual(served, set(requests), "the test covers every operation of the spec")

    def test_a_bad_consumer_token_gets_tripletex_s_422_shape(self):
        status, body, headers = self.call("PUT", "/v2/token/session/:create?consumerToken=wrong&employeeToken=employee&expirationDate=2099-01-01", auth=False)
        self.assertEqual(status, 422)
        self.assertEqual(body["code"], 18000)
        self.assertEqual(body["validationMessages"][0]["field"], "arg:consumerToken")
        self.assertEqual(body["requestId"], headers["x-tlx-request-id"])

    def test_requests_without_a_valid_session_are_refused_with_401(self):
        status, body, _ = self.call("GET", "/v2/event/subscription", auth=False)
        self.assertEqual((status, body["code"]), (401, 3000))
        self.simulator.expire_sessions()
        status, _, _ = self.call("GET", "/v2/event/subscription")
        self.assertEqual(status, 401)

    def test_the_event_list_needs_no_auth(self):
        status, body, _ = self.call("GET", "/v2/event", auth=False)
        self.assertEqual(status, 200)
        self.assertIn("product.create", body["value"])

    def test_a_stale_version_gets_409_and_write_only_fields_never_come_back(self):
        created = self.subscription()
        self.assertNotIn("authHeaderValue", created)
        status, _, _ = self.call("PUT", f"/v2/event/subscription/{created['id']}", {"version": 0, "status": "DISABLED"})
        self.assertEqual(status, 200)
        status, body, _ = self.call("PUT", f"/v2/event/subscription/{created['id']}", {"version": 0, "status": "ACTIVE"})
        self.assertEqual((status, body["code"]), (409, 8000))
        status, body, _ = self.call("GET", f"/v2/event/subscription/{created['id']}")
        self.assertEqual(body["value"]["version"], 1)
        self.assertNotIn("authHeaderValue", body["value"])
        self.assertNotIn("hmacSharedSecret", body["value"])

    def test_only_https_or_loopback_targets_and_known_events_are_accepted(self):
        for body in ({"event": "product.create", "targetUrl": "http://receiver.example/"},
                     {"event": "no.such", "targetUrl": "https://receiver.example/"},
                     {"event": "product.create", "targetUrl": "https://r.example/", "hmacSharedSecret": "short"}):
            status, answer, _ = self.call("POST", "/v2/event/subscription", body)
            self.assertEqual(status, 422, body)
            self.assertEqual(answer["status"], 422)

    def test_rate_limit_headers_count_down_and_a_429_leaves_out_the_reset_header(self):
        self.simulator.rate_limit = tripletex_simulator.RateLimit(2, 60)
        _, _, first = self.call("GET", "/v2/event/subscription")
        self.assertEqual(first["X-Rate-Limit-Remaining"], "1")
        self.assertIsNotNone(first["X-Rate-Limit-Reset"])
        self.call("GET", "/v2/event/subscription")
        status, _, third = self.call("GET", "/v2/event/subscription")
        self.assertEqual(status, 429)
        self.assertIsNone(third["X-Rate-Limit-Reset"])

    def test_paging_and_the_checksum(self):
        for event in ("product.create", "product.update", "product.delete"):
            self.subscription(event)
        status, page, _ = self.call("GET", "/v2/event/subscription?from=1&count=1")
        self.assertEqual((page["from"], page["count"], len(page["values"])), (1, 1, 1))
        _, listing, _ = self.call("GET", "/v2/event/subscription", headers={"If-None-Match": "x"})
        digest = listing["versionDigest"]
        status, body, _ = self.call("GET", "/v2/event/subscription", headers={"If-None-Match": digest})
        self.assertEqual((status, body), (304, None))

    def test_a_fault_answered_before_the_body_is_used_leaves_a_kept_alive_connection_usable(self):
        _, created, _ = self.call("POST", "/v2/event/subscription",
                                  {"event": "product.create", "targetUrl": "https://receiver.example.com/"})
        sid = created["value"]["id"]
        auth = {"Authorization": "Basic " + base64.b64encode(f"0:{self.token}".encode()).decode(),
                "Content-Type": "application/json"}
        body = json.dumps({"id": sid, "version": 0, "status": "ACTIVE", "fields": "x" * 2000})
        for fault in ({"status": 409}, {"status": 429}, {"status": 401}):
            self.simulator.faults.append({"count": 1, "method": "PUT", "path": f"/v2/event/subscription/{sid}",
                                          **fault})
            connection = http.client.HTTPConnection("127.0.0.1", self.server.server_address[1], timeout=10)
            try:
                connection.request("PUT", f"/v2/event/subscription/{sid}", body=body, headers=auth)
                first = connection.getresponse()
                first.read()
                self.assertEqual(first.status, fault["status"])
                connection.request("GET", f"/v2/event/subscription/{sid}", headers=auth)
                second = connection.getresponse()
                self.assertEqual(second.status, 200, f"after an injected {fault['status']}")
                self.assertEqual(json.loads(second.read())["value"]["id"], sid)
            finally:
                connection.close()

    def test_another_company_s_subscription_is_not_found(self):
        self.simulator.create(200, {"event": "product.create", "targetUrl": "https://r.example/"})
        _, listing, _ = self.call("GET", "/v2/event/subscription")
        self.assertEqual(listing["values"], [])
        status, _, _ = self.call("GET", "/v2/event/subscription/1")
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
