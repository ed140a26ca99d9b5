"""The simulator's object endpoints answer like Tripletex's: each list and by-id GET of a listable type in
Tripletex's OpenAPI excerpt (tools/simulator/spec/tripletex-openapi-objects.json) is served with its
documented status and a body that validates against the spec's schema with no field the spec does not
have; paging, fields, sorting, id filters, required date windows and the 10,000 limit, hidden
partitions, If-None-Match and 304, 404 for a deleted object, and the rate limit. The objects are the
ones the simulator sends webhooks about.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import os
import unittest

import jsonschema

from tools.simulator import objects, tripletex_simulator
from tools.simulator.tests.client import SimulatorTestCase, strict

SPEC_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "spec",
                         "tripletex-openapi-objects.json")
COMPANY = 100
WIDE = "?dateFrom=1900-01-01&dateTo=2100-01-01"
WINDOW = {"/order": "?orderDateFrom=1900-01-01&orderDateTo=2100-01-01",
          "/invoice": "?invoiceDateFrom=1900-01-01&invoiceDateTo=2100-01-01",
          "/ledger/voucher": WIDE, "/ledger/closeGroup": WIDE}
# Operations of the excerpt that are not a listable type's list or by-id GET: a sync does not use them.
NOT_SERVED = {"/employee/searchForEmployeesAndContacts", "/ledger/voucher/>voucherReception",
              "/document/{id}"}


class ObjectsTestCase(SimulatorTestCase):
    """A company with a session, and helpers to seed and list its objects."""
    SPEC_PATH = SPEC_PATH

    def setUp(self):
        self.token = None
        self.simulator.reset()
        self.simulator.rate_limit = tripletex_simulator.RateLimit(1000, 60)
        self.simulator.add_company(COMPANY, "consumer", "employee")
        status, body, _ = self.call("POST", "/v2/token/session/:create",
                                    {"consumerToken": "consumer", "employeeToken": "employee",
                                     "expirationDate": "2099-01-01"}, auth=False)
        self.assertEqual(status, 201)
        self.token = body["value"]["token"]

    def seed(self, kind, count=1):
        verb = tripletex_simulator.OBJECT_TYPES.get(kind, (0, ("create",)))[1][0]
        if kind == "voucherstatus":
            verb = "ready"
        return [self.simulator.webhooks.change(COMPANY, kind, verb)[2] for _ in range(count)]

    def listing(self, path, query="", headers=None):
        joiner = "&" if "?" in WINDOW.get(path, "") else "?"
        suffix = WINDOW.get(path, "") + ((joiner + query) if query else "")
        return self.call("GET", "/v2" + path + suffix, headers=headers)


class SimulatorServesObjects(ObjectsTestCase):
    def test_every_list_and_by_id_get_of_a_listable_type_answers_with_its_documented_schema(self):
        seeded = {path: self.seed(kind)[0] for path, (kind, *_rest) in objects.ENDPOINTS.items()}
        self.simulator.webhooks.change(COMPANY, "voucher", "create", fields={"number": 0, "tempNumber": 4})
        served = set()
        for path, operations in self.spec["paths"].items():
            if path in NOT_SERVED or path.startswith("/documentArchive/"):
                continue
            operation = operations["get"]
            list_path = path.removesuffix("/{id}")
            if path.endswith("/{id}"):
                status, body, _ = self.call("GET", f"/v2{list_path}/{seeded[list_path]}?fields=*")
            else:
                contacts_too = "&includeContacts=true" if path == "/employee" else ""
                non_posted = "&includeNonApproved=true" if path in objects.PARTITION_ENDPOINTS else ""
                status, body, _ = self.listing(path, "fields=*" + contacts_too + non_posted)
                self.assertEqual(len(body["values"]), 1, path)
            self.assertIn(str(status), operation["responses"], f"GET {path}: {status} {body}")
            schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
            jsonschema.validate(body, {**strict(schema), "definitions": self.definitions})
            served.add(path)
        self.assertEqual(len(served), 2 * len(objects.ENDPOINTS) + len(objects.PARTITION_ENDPOINTS),
                         "a list and a by-id GET per type, and the lists of a type's partitions")

    def test_pages_with_id_version_fields_in_a_stable_order(self):
        ids = self.seed("product", 5)
        seen = []
        start = 0
        while True:
            status, body, _ = self.listing("/product", f"fields=id,version&sorting=id&from={start}&count=2")
            self.assertEqual(status, 200)
            seen += body["values"]
            if len(body["values"]) < 2:
                break
            start += len(body["values"])
        self.assertEqual(seen, [{"id": i, "version": 0} for i in ids])
        _, descending, _ = self.listing("/product", "fields=id&sorting=-id")
        self.assertEqual([v["id"] for v in descending["values"]], ids[::-1])

    def test_the_id_filter_is_id_or_ids_as_the_endpoint_names_it(self):
        products = self.seed("product", 3)
        customers = self.seed("customer", 3)
        _, body, _ = self.listing("/product", f"ids={products[0]},{products[2]}&fields=id")
        self.assertEqual([v["id"] for v in body["values"]], [products[0], products[2]])
        active = [c for c in customers if c % 7]
        _, body, _ = self.listing("/customer", f"id={active[0]}&fields=id")
        self.assertEqual([v["id"] for v in body["values"]], [active[0]])

    def test_a_required_date_window_is_enforced_and_a_too_large_result_is_refused_with_23000(self):
        orders = self.seed("order", 6)
        status, body, _ = self.call("GET", "/v2/order?fields=id")
        self.assertEqual((status, body["code"]), (422, 15000))
        self.assertEqual({m["field"] for m in body["validationMessages"]}, {"orderDateFrom", "orderDateTo"})
        self.simulator.list_limit = 5
        status, body, _ = self.listing("/order", "count=1")
        self.assertEqual((status, body["code"]), (422, 23000), "count does not lower the limit")
        dates = sorted(self.simulator.webhooks.objects[(COMPANY, "order", i)]["value"]["orderDate"] for i in orders)
        middle = dates[3]
        halves = [f"/v2/order?orderDateFrom=1900-01-01&orderDateTo={middle}&fields=id",
                  f"/v2/order?orderDateFrom={middle}&orderDateTo=2100-01-01&fields=id"]
        listed = [v["id"] for half in halves for v in self.call("GET", half)[1]["values"]]
        self.assertEqual(sorted(listed), sorted(orders), "adjacent windows: every object once")

    def test_inactive_customers_and_employee_contacts_are_listed_only_when_asked(self):
        customers = self.seed("customer", 14)
        inactive = {c for c in customers if c % 7 == 0}
        _, default, _ = self.listing("/customer", "fields=id,isInactive")
        _, hidden, _ = self.listing("/customer", "isInactive=true&fields=id")
        self.assertEqual({v["id"] for v in default["values"]}, set(customers) - inactive)
        self.assertEqual({v["id"] for v in hidden["values"]}, inactive)
        employees = self.seed("employee", 10)
        contacts = {e for e in employees if e % 5 == 0}
        _, default, _ = self.listing("/employee", "fields=id")
        _, only, _ = self.listing("/employee", "onlyContacts=true&fields=id")
        _, both, _ = self.listing("/employee", "includeContacts=true&fields=id")
        self.assertEqual({v["id"] for v in default["values"]}, set(employees) - contacts)
        self.assertEqual({v["id"] for v in only["values"]}, contacts)
        self.assertEqual({v["id"] for v in both["values"]}, set(employees))

    def test_an_unchanged_page_is_304_with_its_digest_and_a_change_gives_a_new_one(self):
        ids = self.seed("product", 3)
        status, body, _ = self.listing("/product", "fields=id,version", headers={"If-None-Match": "any"})
        self.assertEqual(status, 200)
        digest = body["versionDigest"]
        status, body, _ = self.listing("/product", "fields=id,version", headers={"If-None-Match": digest})
        self.assertEqual((status, body), (304, None))
        self.simulator.webhooks.change(COMPANY, "product", "update", ids[1], {"name": "renamed"})
        status, body, _ = self.listing("/product", "fields=id,version", headers={"If-None-Match": digest})
        self.assertEqual(status, 200)
        self.assertNotEqual(body["versionDigest"], digest)
        _, plain, _ = self.listing("/product", "fields=id")
        self.assertEqual(plain["versionDigest"], objects.DIGEST_NOT_ASKED)

    def test_a_deleted_object_is_404_by_id_and_absent_from_the_list(self):
        kept, deleted = self.seed("product", 2)
        self.simulator.webhooks.change(COMPANY, "product", "delete", deleted)
        status, body, _ = self.call("GET", f"/v2/product/{deleted}")
        self.assertEqual((status, body["code"]), (404, 6000))
        self.assertEqual(self.call("GET", "/v2/product/999")[0], 404)
        _, listed, _ = self.listing("/product", "fields=id")
        self.assertEqual([v["id"] for v in listed["values"]], [kept])

    def test_the_objects_are_the_ones_webhooks_are_sent_about(self):
        [order] = self.seed("order")
        self.simulator.webhooks.change(COMPANY, "order", "update", order, {"reference": "PO-7"})
        truth = next(t for t in self.simulator.webhooks.truth() if t["id"] == order)
        _, body, _ = self.call("GET", f"/v2/order/{order}?fields=*")
        self.assertEqual(body["value"], truth["value"])
        self.assertEqual(body["value"]["version"], 1)

    def test_object_lists_share_the_rate_limit_and_429_comes_without_a_reset(self):
        self.seed("product")
        self.simulator.rate_limit = tripletex_simulator.RateLimit(2, 60)
        answers = [self.listing("/product", "fields=id") for _ in range(3)]
        self.assertEqual([a[0] for a in answers], [200, 200, 429])
        self.assertIsNone(answers[2][2].get("X-Rate-Limit-Reset"))
        self.assertEqual(answers[1][2]["X-Rate-Limit-Remaining"], "0")


if __name__ == "__main__":
    unittest.main()


class ObjectFaultsAndScale(ObjectsTestCase):
    """The two faults a sync must survive, and a listing that costs its page at any size."""

    def page_ids(self, start, count=10):
        status, body, _ = self.listing("/product", f"fields=id,version&sorting=id&from={start}&count={count}")
        self.assertEqual(status, 200)
        return [value["id"] for value in body["values"]]

    def test_a_delete_after_a_page_moves_every_later_object_up_one_place(self):
        ids = self.seed("product", 25)
        self.simulator.object_faults.configure({"deleteAfterNextPage": True})
        first = self.page_ids(0)
        self.assertEqual(first, ids[:10])
        second = self.page_ids(10)
        self.assertEqual(second, ids[11:21], "the old first object of page 2 is on no page")
        self.assertEqual(self.simulator.object_faults.counts["deletesDuringListing"], 1)
        gone = [object_id for object_id in ids[:10]
                if self.simulator.webhooks.objects[(COMPANY, "product", object_id)]["deleted"]]
        self.assertEqual(len(gone), 1, "a real delete, its webhook sent as any other")

    def test_a_fetch_answer_can_leave_an_object_out_once(self):
        ids = self.seed("product", 3)
        self.simulator.object_faults.configure({"omitFromNextFetch": [ids[1]]})
        wanted = ",".join(map(str, ids))
        status, body, _ = self.listing("/product", f"ids={wanted}&fields=id,version")
        self.assertEqual([value["id"] for value in body["values"]], [ids[0], ids[2]])
        status, body, _ = self.listing("/product", f"ids={wanted}&fields=id,version")
        self.assertEqual(len(body["values"]), 3, "once only")
        self.assertEqual(self.simulator.object_faults.counts["fetchOmissions"], 1)

    def test_a_listing_by_id_reads_only_its_page_and_skips_deleted_objects(self):
        ids = self.seed("product", 2000)
        self.simulator.webhooks.change(COMPANY, "product", "delete", ids[5])
        values = objects.list_objects(self.simulator.webhooks.objects, self.simulator.webhooks.live_ids,
                                      COMPANY, "/product", {"sorting": "id"})
        self.assertIsInstance(values, objects.IdOrderedValues, "a slice of the sorted ids, no scan")
        self.assertEqual(len(values), 1999)
        self.assertEqual([v["id"] for v in values[4:7]], [ids[4], ids[6], ids[7]])
        self.assertEqual(self.page_ids(1990), ids[1991:])

    def test_vouchers_not_yet_posted_are_listed_at_their_own_endpoint_only(self):
        posted = self.seed("voucher", 1)[0]
        non_posted = self.simulator.webhooks.change(COMPANY, "voucher", "create",
                                                    fields={"number": 0, "tempNumber": 9})[2]
        _, ledger, _ = self.listing("/ledger/voucher", "fields=id")
        self.assertEqual([v["id"] for v in ledger["values"]], [posted])
        status, body, _ = self.call("GET", "/v2/ledger/voucher/>nonPosted?fields=id")
        self.assertEqual((status, body["code"]), (422, 15000), "includeNonApproved is required")
        status, body, _ = self.call("GET", "/v2/ledger/voucher/>nonPosted?includeNonApproved=true&fields=id")
        self.assertEqual([v["id"] for v in body["values"]], [non_posted], "the date window is optional")
        status, body, _ = self.call("GET", f"/v2/ledger/voucher/{non_posted}?fields=id,version")
        self.assertEqual(body["value"], {"id": non_posted, "version": 0}, "by id at the type's endpoint")
