//! Where each subscribable object type is listed, and what a complete listing of it takes: the list
//! path, the id filter (`id` or `ids`), the date window some endpoints require, and the partitions a
//! default filter hides (inactive customers and suppliers, employees' external contacts), which must
//! be listed too, or a hidden object would look deleted.

/// A named set of query parameters that, together with its siblings, lists every object of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub name: &'static str,
    pub query: &'static [(&'static str, &'static str)],
    /// A list endpoint of its own instead of the type's. Such an endpoint has no id filter, so its
    /// objects are fetched one by one, by id.
    pub own_path: Option<&'static str>,
}

impl Partition {
    /// Where this partition is listed.
    pub fn list_path(&self, spec: &ObjectTypeSpec) -> &'static str {
        self.own_path.unwrap_or(spec.list_path)
    }

    /// Its objects are fetched by id, one call each (its endpoint filters on no id).
    pub fn fetched_by_id(&self) -> bool {
        self.own_path.is_some()
    }
}

/// The one partition of a type nothing is hidden from.
const ALL: &[Partition] = &[Partition {
    name: "all",
    query: &[],
    own_path: None,
}];

/// `/ledger/voucher` searches the ledger; vouchers not yet posted have a list of their own
/// (`>nonPosted`, `includeNonApproved` required), and Tripletex's spec does not say that the first
/// also returns them. Both are listed, so that a non-posted voucher is backfilled and never looks
/// deleted; one found in both is compared once per listing, which is harmless.
const POSTED_AND_NON_POSTED: &[Partition] = &[
    Partition {
        name: "posted",
        query: &[],
        own_path: None,
    },
    Partition {
        name: "nonPosted",
        query: &[("includeNonApproved", "true")],
        own_path: Some("/ledger/voucher/>nonPosted"),
    },
];

/// `isInactive` defaults to `false` on these endpoints: inactive objects are listed only when asked.
const ACTIVE_AND_INACTIVE: &[Partition] = &[
    Partition {
        name: "active",
        query: &[("isInactive", "false")],
        own_path: None,
    },
    Partition {
        name: "inactive",
        query: &[("isInactive", "true")],
        own_path: None,
    },
];

/// `includeContacts` defaults to `false`: an employee's external contacts are listed only when asked.
const EMPLOYEES_AND_CONTACTS: &[Partition] = &[
    Partition {
        name: "employees",
        query: &[("includeContacts", "false")],
        own_path: None,
    },
    Partition {
        name: "contacts",
        query: &[("onlyContacts", "true")],
        own_path: None,
    },
];

/// How a list endpoint filters on object ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdFilter {
    /// `id=1,2,3`
    Id,
    /// `ids=1,2,3` (product, voucherStatus)
    Ids,
}

impl IdFilter {
    pub fn parameter(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Ids => "ids",
        }
    }
}

/// One listable object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectTypeSpec {
    /// The object as event names spell it (`closeGroup`, `voucherstatus`): the key's middle part.
    pub object_type: &'static str,
    /// The list path under `/v2`; the by-id path is this plus `/{id}`.
    pub list_path: &'static str,
    pub id_filter: IdFilter,
    /// The required date parameters (from inclusive, to exclusive), for types listed by window.
    pub date_window: Option<(&'static str, &'static str)>,
    pub partitions: &'static [Partition],
}

impl ObjectTypeSpec {
    pub fn by_id_path(&self, id: i64) -> String {
        format!("{}/{id}", self.list_path)
    }
}

const fn spec(
    object_type: &'static str,
    list_path: &'static str,
    id_filter: IdFilter,
    date_window: Option<(&'static str, &'static str)>,
    partitions: &'static [Partition],
) -> ObjectTypeSpec {
    ObjectTypeSpec {
        object_type,
        list_path,
        id_filter,
        date_window,
        partitions,
    }
}

/// Every type a subscription can name that has a list endpoint (Tripletex API 2.74).
pub const LISTABLE: &[ObjectTypeSpec] = &[
    spec("product", "/product", IdFilter::Ids, None, ALL),
    spec(
        "customer",
        "/customer",
        IdFilter::Id,
        None,
        ACTIVE_AND_INACTIVE,
    ),
    spec(
        "supplier",
        "/supplier",
        IdFilter::Id,
        None,
        ACTIVE_AND_INACTIVE,
    ),
    spec(
        "employee",
        "/employee",
        IdFilter::Id,
        None,
        EMPLOYEES_AND_CONTACTS,
    ),
    spec("contact", "/contact", IdFilter::Id, None, ALL),
    spec("project", "/project", IdFilter::Id, None, ALL),
    spec("account", "/ledger/account", IdFilter::Id, None, ALL),
    spec("voucherstatus", "/voucherStatus", IdFilter::Ids, None, ALL),
    spec(
        "order",
        "/order",
        IdFilter::Id,
        Some(("orderDateFrom", "orderDateTo")),
        ALL,
    ),
    spec(
        "invoice",
        "/invoice",
        IdFilter::Id,
        Some(("invoiceDateFrom", "invoiceDateTo")),
        ALL,
    ),
    spec(
        "voucher",
        "/ledger/voucher",
        IdFilter::Id,
        Some(("dateFrom", "dateTo")),
        POSTED_AND_NON_POSTED,
    ),
    spec(
        "closeGroup",
        "/ledger/closeGroup",
        IdFilter::Id,
        Some(("dateFrom", "dateTo")),
        ALL,
    ),
];

/// Whether a sync can list a type, and so backfill it, reconcile it, and ever tombstone its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconcilable {
    Yes(&'static ObjectTypeSpec),
    /// Nothing to list: reported, never backfilled, never tombstoned.
    No {
        reason: &'static str,
    },
}

/// The spec of a listable type; none for a type with nothing to list.
pub fn listable(object_type: &str) -> Option<&'static ObjectTypeSpec> {
    LISTABLE.iter().find(|s| s.object_type == object_type)
}

/// Object types Tripletex sends webhooks for that no endpoint lists, and why.
const UNLISTABLE: [(&str, &str); 2] = [
    (
        "notification",
        "Tripletex has no endpoint that lists notifications",
    ),
    (
        "archiverelation",
        "Tripletex has no endpoint that lists archive relations",
    ),
];

pub fn spec_for(object_type: &str) -> Reconcilable {
    if let Some(spec) = listable(object_type) {
        return Reconcilable::Yes(spec);
    }
    Reconcilable::No {
        reason: UNLISTABLE
            .iter()
            .find(|(name, _)| *name == object_type)
            .map_or("not a Tripletex object type this sync knows", |(_, why)| {
                why
            }),
    }
}

/// Every Tripletex object type the bundle knows (the part of an event's name before the dot), in
/// name order: a name outside it is a mistake.
pub fn object_types() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = LISTABLE
        .iter()
        .map(|spec| spec.object_type)
        .chain(UNLISTABLE.iter().map(|(name, _)| *name))
        .collect();
    names.sort_unstable();
    names
}

pub fn is_object_type(name: &str) -> bool {
    listable(name).is_some() || UNLISTABLE.iter().any(|(known, _)| *known == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_known_by_its_name_and_a_mistyped_one_is_not() {
        let names = object_types();
        assert!(names.contains(&"closeGroup") && names.contains(&"notification"));
        assert!(
            names.windows(2).all(|pair| pair[0] < pair[1]),
            "in name order"
        );
        assert!(names.iter().all(|name| is_object_type(name)));
        assert!(!is_object_type("banana") && !is_object_type("Customer"));
    }

    #[test]
    fn each_type_is_found_by_the_name_its_events_use() {
        let Reconcilable::Yes(close_group) = spec_for("closeGroup") else {
            panic!("closeGroup is listable");
        };
        assert_eq!(close_group.list_path, "/ledger/closeGroup");
        assert_eq!(close_group.date_window, Some(("dateFrom", "dateTo")));
        assert_eq!(close_group.by_id_path(7), "/ledger/closeGroup/7");
        let Reconcilable::Yes(product) = spec_for("product") else {
            panic!("product is listable");
        };
        assert_eq!(
            product.id_filter.parameter(),
            "ids",
            "product filters with ids"
        );
    }

    #[test]
    fn hidden_partitions_are_listed_beside_the_default_ones() {
        for (object_type, partitions) in [
            ("customer", ["active", "inactive"]),
            ("supplier", ["active", "inactive"]),
            ("employee", ["employees", "contacts"]),
            ("voucher", ["posted", "nonPosted"]),
        ] {
            let Reconcilable::Yes(spec) = spec_for(object_type) else {
                panic!("{object_type} is listable");
            };
            let names: Vec<_> = spec.partitions.iter().map(|p| p.name).collect();
            assert_eq!(names, partitions, "{object_type}");
        }
    }

    #[test]
    fn non_posted_vouchers_are_listed_at_their_own_endpoint_and_fetched_by_id() {
        let voucher = listable("voucher").unwrap();
        let [posted, non_posted] = voucher.partitions else {
            panic!("two partitions");
        };
        assert_eq!(posted.list_path(voucher), "/ledger/voucher");
        assert!(!posted.fetched_by_id());
        assert_eq!(non_posted.list_path(voucher), "/ledger/voucher/>nonPosted");
        assert_eq!(non_posted.query, [("includeNonApproved", "true")]);
        assert!(non_posted.fetched_by_id());
    }

    #[test]
    fn types_with_nothing_to_list_are_never_reconcilable() {
        for object_type in ["notification", "archiverelation", "nonsense"] {
            assert!(
                matches!(spec_for(object_type), Reconcilable::No { .. }),
                "{object_type}"
            );
        }
    }

    #[test]
    fn every_date_windowed_type_is_the_four_the_api_requires_dates_for() {
        let windowed: Vec<_> = LISTABLE
            .iter()
            .filter(|s| s.date_window.is_some())
            .map(|s| s.object_type)
            .collect();
        assert_eq!(windowed, ["order", "invoice", "voucher", "closeGroup"]);
    }
}
