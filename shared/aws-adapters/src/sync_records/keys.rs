//! The table's keys and attribute names, and the packing of ids and versions into bytes.

use domain::ids::TenantId;
use domain::sync::Listed;

pub mod item {
    pub const KEY: &str = "pk";
    pub const SORT: &str = "sk";
    pub const MODE: &str = "mode";
    pub const STATE: &str = "state";
    pub const STARTED_AT: &str = "startedAt";
    pub const FINISHED_AT: &str = "finishedAt";
    pub const STEPS: &str = "steps";
    pub const TYPES: &str = "types";
    pub const NOT_RECONCILABLE: &str = "notReconcilable";
    pub const FAILURES: &str = "failures";
    pub const FAILED_TYPES: &str = "failedTypes";
    /// On a run record: objects found unstorable, `<type>: id <id> version <v>: <reason>`.
    pub const UNSTORABLE: &str = "unstorable";
    pub const DIGEST: &str = "digest";
    pub const IDS: &str = "ids";
    /// On a page's memory: the version of each of its ids, in the same order (`pack_versions`).
    pub const VERSIONS: &str = "versions";
    /// On a page's memory: its objects are all queued, so its digest may be sent.
    pub const CONFIRMED: &str = "confirmed";
    pub const WINDOWS: &str = "windows";
    /// Epoch seconds; the table's TTL attribute.
    pub const EXPIRES_AT: &str = "expiresAt";
    /// On the unstorable objects of a type: `[{id, version}]` as JSON.
    pub const OBJECTS: &str = "objects";
    /// On a type's confirmation: epoch seconds of the start of the listing that proved it complete.
    pub const CONFIRMED_AT: &str = domain::sync::freshness::CONFIRMED_AT;
    /// On a drift finding: what it brought the copy to (`drift::Held`, `7` or `deleted`).
    pub const HELD: &str = "held";
    /// On a drift finding: the run that counted it.
    pub const RUN: &str = "run";
}

/// The partition key of a company's confirmations, one item per type.
pub fn confirmed_key(tenant: &TenantId) -> String {
    format!("{}{tenant}", domain::sync::freshness::CONFIRMED_KEY_PREFIX)
}

pub(super) const RUN_RECORD_DAYS: i64 = 90;
/// The most unstorable objects remembered per type (the newest kept): about 40 bytes of JSON each,
/// well inside DynamoDB's 400 KB item.
pub(super) const UNSTORABLE_REMEMBERED: usize = 8_000;
pub(super) const LISTED_IDS_DAYS: i64 = 7;

/// The partition key of a company's run records, before the tenant.
pub const RUN_KEY_PREFIX: &str = "run#";

pub fn run_key(tenant: &TenantId) -> String {
    format!("{RUN_KEY_PREFIX}{tenant}")
}

pub(super) fn page_key(tenant: &TenantId) -> String {
    format!("page#{tenant}")
}

/// The partition of a company's markers the worker reached (`sync::marker`), one item per run.
pub fn marker_key(tenant: &TenantId) -> String {
    format!("{MARKER_KEY_PREFIX}{tenant}")
}

/// The partition key of a company's markers, before the tenant: items of the sync table the worker
/// may write.
pub const MARKER_KEY_PREFIX: &str = "marker#";

/// The partition of a company's drift findings (`sync::drift`), one item per object.
pub fn drift_key(tenant: &TenantId) -> String {
    format!("{DRIFT_KEY_PREFIX}{tenant}")
}

/// The partition key of a company's drift findings, before the tenant: items of the sync table the
/// worker may delete.
pub const DRIFT_KEY_PREFIX: &str = "drift#";

pub(super) fn drift_sort_key(object_type: &str, id: i64) -> String {
    format!("{object_type}#{id}")
}

pub(super) fn listed_key(tenant: &TenantId, run_id: &str, object_type: &str) -> String {
    format!("listed#{tenant}#{run_id}#{object_type}")
}

/// A bucket as a sort key that sorts as the bucket does (negative ones included).
pub(super) fn bucket_sort_key(bucket: i64) -> String {
    format!("{:016x}", (bucket as u64) ^ (1 << 63))
}

pub(super) fn bucket_of_sort_key(key: &str) -> Option<i64> {
    let bits = u64::from_str_radix(key.get(..16)?, 16).ok()?;
    Some((bits ^ (1 << 63)) as i64)
}

/// The attribute a count of one type is kept in: `customer:fetched`.
pub fn count_attribute(object_type: &str, count: &str) -> String {
    format!("{object_type}:{count}")
}

/// Ids as 8 little-endian bytes each: a page of 1,000 is 8 KB.
pub fn pack_ids(ids: &[i64]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

/// A page's versions as 8 little-endian bytes each, `i64::MIN` for an object listed without one.
pub fn pack_versions(objects: &[Listed]) -> Vec<u8> {
    objects
        .iter()
        .flat_map(|object| object.version.unwrap_or(i64::MIN).to_le_bytes())
        .collect()
}

/// A page's objects from its packed ids and versions; none when the two do not match.
pub fn unpack_objects(ids: &[u8], versions: &[u8]) -> Option<Vec<Listed>> {
    if ids.len() != versions.len() || !ids.len().is_multiple_of(8) {
        return None;
    }
    Some(
        unpack_ids(ids)
            .zip(unpack_ids(versions))
            .map(|(id, version)| Listed {
                id,
                version: (version != i64::MIN).then_some(version),
            })
            .collect(),
    )
}

pub fn unpack_ids(bytes: &[u8]) -> impl Iterator<Item = i64> + '_ {
    bytes.chunks_exact(8).map(|chunk| {
        let mut id = [0; 8];
        id.copy_from_slice(chunk);
        i64::from_le_bytes(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pack_into_eight_bytes_each_and_back() {
        let ids = [1, -2, i64::MAX, 40_000_000_123];
        let packed = pack_ids(&ids);
        assert_eq!(packed.len(), 32);
        assert_eq!(unpack_ids(&packed).collect::<Vec<_>>(), ids);
    }

    #[test]
    fn bucket_sort_keys_sort_as_their_buckets_and_read_back() {
        let buckets = [i64::MIN, -2, -1, 0, 1, 70, i64::MAX];
        let keys: Vec<String> = buckets.iter().map(|&b| bucket_sort_key(b)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (bucket, key) in buckets.iter().zip(&keys) {
            assert_eq!(bucket_of_sort_key(&format!("{key}#page")), Some(*bucket));
        }
    }
}
