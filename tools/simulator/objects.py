"""The object endpoints of the Tripletex simulator: the list and by-id GETs a sync uses, over the same
objects the simulator sends webhooks about (tools/simulator/tripletex_webhooks.py), as Tripletex's
OpenAPI excerpt (tools/simulator/spec/tripletex-openapi-objects.json) describes them:

- `from`/`count` paging, `fields` (`id,version`, `*`, or names), `sorting` (`id`, `-id`, any field);
- the id filter, `id` or `ids` (product, voucherStatus) as the endpoint names it, comma-separated;
- the date window some endpoints require (`orderDateFrom`/`orderDateTo`, ...: from inclusive, to
  exclusive), 422 when it is missing, and 422 code 23000 when a result would exceed the list limit
  (10,000, as Tripletex; settable for tests), however small `count` is;
- partitions hidden by default: inactive customers and suppliers (`isInactive` defaults to false),
  employees' external contacts (`includeContacts` defaults to false);
- `If-None-Match`: `versionDigest` is the page's checksum, and the same checksum sent back gets 304;
- by id: the object, or 404 code 6000 when it does not exist or was deleted.

A listing sorted by id is a slice of each company's sorted live ids (no scan, no sort: a page costs
its size at any number of objects); a date window or a partition filters that list in id order.

Two faults a sync must survive (`ObjectFaults`, set through `/_sim/object-faults`): a delete that
lands between two pages of a listing (every later object moves up one place, so offset paging skips
one), and a fetch by ids whose answer leaves one out (replication lag, a permission filter).
"""

import datetime
import hashlib
import json
import random

# list path -> (object type as events name it, id filter, (from, to) date parameters, the object's date field)
ENDPOINTS = {
    "/product": ("product", "ids", None, None),
    "/customer": ("customer", "id", None, None),
    "/supplier": ("supplier", "id", None, None),
    "/employee": ("employee", "id", None, None),
    "/contact": ("contact", "id", None, None),
    "/project": ("project", "id", None, None),
    "/ledger/account": ("account", "id", None, None),
    "/voucherStatus": ("voucherstatus", "ids", None, None),
    "/order": ("order", "id", ("orderDateFrom", "orderDateTo"), "orderDate"),
    "/invoice": ("invoice", "id", ("invoiceDateFrom", "invoiceDateTo"), "invoiceDate"),
    "/ledger/voucher": ("voucher", "id", ("dateFrom", "dateTo"), "date"),
    "/ledger/closeGroup": ("closeGroup", "id", ("dateFrom", "dateTo"), "date"),
}

# List endpoints of one partition of a type: its objects are fetched by id at the type's endpoint.
# Whether `/ledger/voucher` also returns vouchers not yet posted, Tripletex's spec does not say; the
# simulator takes the case a sync must handle: it does not.
PARTITION_ENDPOINTS = {"/ledger/voucher/>nonPosted": "/ledger/voucher"}

LIST_LIMIT = 10_000
DIGEST_NOT_ASKED = "'If-None-Match' header not specified"


class ObjectError(Exception):
    """An answer in Tripletex's error envelope: (status, code, message, [(field, message)])."""

    def __init__(self, status, code, message, validation=()):
        super().__init__(message)
        self.status, self.code, self.message, self.validation = status, code, message, list(validation)


def endpoint_of(path):
    """(list path, object id or None) for an object path under /v2, or None."""
    if path in ENDPOINTS or path in PARTITION_ENDPOINTS:
        return path, None
    head, _, tail = path.rpartition("/")
    if head in ENDPOINTS and tail.lstrip("-").isdigit():
        return head, int(tail)
    return None


def select_fields(value, fields):
    """The object as `fields` shows it: top-level names, `*` or nothing for all."""
    names = {name.split("(")[0].strip() for name in (fields or "").split(",") if name.strip()}
    if not names or "*" in names:
        return dict(value)
    return {key: item for key, item in value.items() if key in names}


def posted(value):
    """A voucher with a number of its own is posted; one not yet posted has a temporary number."""
    return bool(value.get("number"))


def visible(kind, value, query):
    """Whether the default filters of the endpoint (or the ones asked for) show this object."""
    if kind == "voucher":
        return posted(value)
    if kind in ("customer", "supplier"):
        wanted = query.get("isInactive", "false").lower() == "true"
        return bool(value.get("isInactive")) == wanted
    if kind == "employee":
        contact = bool(value.get("isContact"))
        if query.get("onlyContacts", "false").lower() == "true":
            return contact
        return not contact or query.get("includeContacts", "false").lower() == "true"
    return True


def parse_date(name, text):
    try:
        return datetime.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ObjectError(422, 15000, "Validering feilet.", [(name, "Ugyldig dato.")]) from None


def sort_key(sorting):
    """`sorting=id`, `-id`, `name,-id`: the key and whether to reverse, on the first field."""
    first = (sorting or "id").split(",")[0].strip() or "id"
    field = first.lstrip("-")
    return (lambda value: (value.get(field) is None, value.get(field), value.get("id"))), first.startswith("-")


class IdOrderedValues:
    """The live objects of one company and type in id order, as a sequence whose slices read only
    the objects they hold."""

    def __init__(self, objects, company, kind, ids):
        self.objects, self.company, self.kind, self.ids = objects, company, kind, ids

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, part):
        ids = self.ids[part] if isinstance(part, slice) else [self.ids[part]]
        values = [self.objects[(self.company, self.kind, object_id)]["value"] for object_id in ids]
        return values if isinstance(part, slice) else values[0]


def list_objects(objects, live_ids, company, list_path, query, list_limit=LIST_LIMIT):
    """Every live object of the endpoint's type for `company` that the query selects, sorted.
    `live_ids` maps (company, type) to the sorted ids of its live objects."""
    if list_path in PARTITION_ENDPOINTS:
        return list_non_posted(objects, live_ids, company, query)
    kind, id_filter, window, date_field = ENDPOINTS[list_path]
    ids = query.get(id_filter)
    sorting = (query.get("sorting") or "id").strip()
    if ids:
        try:
            wanted = {int(part) for part in ids.split(",") if part.strip()}
        except ValueError:
            raise ObjectError(422, 15000, "Validering feilet.", [(id_filter, "Ugyldig liste.")]) from None
        # By key, not by scanning every object: a sync fetches in batches of ids from large sets.
        states = (objects.get((company, kind, object_id)) for object_id in sorted(wanted))
        selected = [state["value"] for state in states if state is not None and not state["deleted"]]
    else:
        ordered = live_ids.get((company, kind), [])
        if not window and kind not in PARTITIONED and sorting == "id":
            if len(ordered) > list_limit:
                raise ObjectError(422, 23000, too_large(list_limit))
            return IdOrderedValues(objects, company, kind, ordered)
        selected = [objects[(company, kind, object_id)]["value"] for object_id in ordered]
    if window:
        missing = [name for name in window if not query.get(name)]
        if missing:
            raise ObjectError(422, 15000, "Validering feilet.", [(name, "Kan ikke være null.") for name in missing])
        start, end = (parse_date(name, query[name]) for name in window)
        selected = [value for value in selected
                    if start <= datetime.date.fromisoformat(value[date_field]) < end]
    selected = [value for value in selected if visible(kind, value, query)]
    if len(selected) > list_limit:
        raise ObjectError(422, 23000, too_large(list_limit))
    if sorting == "id":
        return selected  # already in id order
    key, reverse = sort_key(sorting)
    return sorted(selected, key=key, reverse=reverse)


# Types whose default filter hides some objects (`visible`).
PARTITIONED = ("customer", "supplier", "employee", "voucher")


def list_non_posted(objects, live_ids, company, query):
    """`/ledger/voucher/>nonPosted`: `includeNonApproved` required, the date window optional, no id
    filter."""
    if query.get("includeNonApproved") is None:
        raise ObjectError(422, 15000, "Validering feilet.", [("includeNonApproved", "Kan ikke være null.")])
    values = [objects[(company, "voucher", object_id)]["value"] for object_id in live_ids.get((company, "voucher"), [])]
    values = [value for value in values if not posted(value)]
    if query.get("dateFrom") or query.get("dateTo"):
        start = parse_date("dateFrom", query.get("dateFrom") or "1900-01-01")
        end = parse_date("dateTo", query.get("dateTo") or "2100-01-01")
        values = [value for value in values if start <= datetime.date.fromisoformat(value["date"]) < end]
    sorting = (query.get("sorting") or "id").strip()
    if sorting != "id":
        key, reverse = sort_key(sorting)
        values = sorted(values, key=key, reverse=reverse)
    return values


def too_large(list_limit):
    return f"Result set too large. Limit of {list_limit:,} reached.".replace(",", ".")


class ObjectFaults:
    """Faults of the object endpoints, at a seeded rate or once for named ids. The simulator applies
    them (tripletex_simulator.py): `omit_from_fetch` thins a fetch's answer; `delete_after_page`
    names an object on a full page just served, which the simulator then deletes (with its delete
    webhook, as a person deleting it mid-scan would cause)."""

    def __init__(self):
        self.configure({})

    def configure(self, body):
        self.fetch_omission_rate = float(body.get("fetchOmissionRate", 0))
        self.delete_during_listing_rate = float(body.get("deleteDuringListingRate", 0))
        self.omit_next_fetch = set(body.get("omitFromNextFetch", ()))
        self.delete_after_next_page = bool(body.get("deleteAfterNextPage", False))
        self.random = random.Random(int(body.get("seed", 1)))
        self.counts = {"fetchOmissions": 0, "deletesDuringListing": 0}

    def omit_from_fetch(self, values):
        """The fetch's answer with what this fault leaves out."""
        left = [v for v in values if v.get("id") not in self.omit_next_fetch]
        self.omit_next_fetch -= {v.get("id") for v in values}
        if left and self.random.random() < self.fetch_omission_rate:
            left.pop(self.random.randrange(len(left)))
        self.counts["fetchOmissions"] += len(values) - len(left)
        return left

    def delete_after_page(self, page):
        """An id of this full page to delete now, or None."""
        if not page:
            return None
        if self.delete_after_next_page or self.random.random() < self.delete_during_listing_rate:
            self.delete_after_next_page = False
            self.counts["deletesDuringListing"] += 1
            return self.random.choice(page).get("id")
        return None


def page_of(values, query, if_none_match):
    """(status, body) for one page of a listing; 304 when `If-None-Match` names the page's checksum."""
    try:
        start = int(query.get("from") or 0)
        count = int(query.get("count") or 1000)
    except ValueError:
        raise ObjectError(422, 21000, "Validering feilet.", [("from", "Must be a whole number.")]) from None
    page = [select_fields(value, query.get("fields")) for value in values[start:start + count]]
    envelope = {"fullResultSize": len(values), "from": start, "count": len(page),
                "versionDigest": DIGEST_NOT_ASKED, "values": page}
    if if_none_match is not None:
        digest = hashlib.sha256(json.dumps([start, count, page], sort_keys=True).encode()).hexdigest()
        if if_none_match == digest:
            return 304, None
        envelope["versionDigest"] = digest
    return 200, envelope


def get_object(objects, company, list_path, object_id, query):
    kind = ENDPOINTS[list_path][0]
    state = objects.get((company, kind, object_id))
    if state is None or state["deleted"]:
        raise ObjectError(404, 6000, "Object not found.")
    return {"value": select_fields(state["value"], query.get("fields"))}
