//! Tripletex's object endpoints in memory, for one company (`FakeTripletexCompany` implements
//! `ObjectsApi` with it): objects by type with the partition that shows them and the date that
//! windows them; pages in id order with a checksum (the same checksum sent back is 304); "result set
//! too large" above a settable limit; fetch by id; 404 for what is gone; scripted failures per call.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use domain::sync::{
    FetchRequest, FetchedObject, Listed, ListedPage, Lookup, ObjectTypeSpec, PageRequest,
};
use domain::tripletex::{
    ApiError, ApiErrorBody, NOT_FOUND_CODE, RESULT_TOO_LARGE_CODE, TripletexError,
};
use jiff::civil::Date;
use serde_json::value::RawValue;

/// One object as the fake holds it.
#[derive(Debug, Clone)]
pub struct FakeObject {
    pub id: i64,
    pub version: i64,
    /// The partition that lists it (`"all"`, `"active"`, `"inactive"`, `"employees"`, `"contacts"`).
    pub partition: &'static str,
    /// The date a windowed listing selects it by.
    pub date: Option<Date>,
    /// Its full JSON, as a fetch returns it (the fake ignores `fields`).
    pub json: String,
}

/// Which object call a scripted failure is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectCallKind {
    ListPage,
    Fetch,
    Lookup,
}

#[derive(Debug, Default)]
pub(crate) struct ObjectsState {
    objects: BTreeMap<(String, i64), FakeObject>,
    failures: HashMap<ObjectCallKind, VecDeque<TripletexError>>,
    calls: Vec<ObjectCallKind>,
    not_modified: usize,
    rate_limited: u64,
    /// Tripletex's 10,000, settable so that tests meet it.
    list_limit: Option<usize>,
    /// Ids the next fetch answers without (replication lag, a permission filter: it must not matter).
    left_out_of_next_fetch: Vec<i64>,
    /// Objects deleted just after the next list page is answered: every later object moves up one
    /// place, as offset paging does when a delete lands mid-scan.
    deleted_after_next_page: Vec<(String, i64)>,
}

/// The object side of one fake company.
#[derive(Debug, Default)]
pub struct FakeTripletexObjects {
    state: Mutex<ObjectsState>,
}

impl FakeTripletexObjects {
    fn state(&self) -> MutexGuard<'_, ObjectsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds or replaces an object of `object_type`.
    pub fn put(&self, object_type: &str, object: FakeObject) {
        self.state()
            .objects
            .insert((object_type.to_owned(), object.id), object);
    }

    /// An object of the default partition with a small JSON of its own.
    pub fn put_simple(&self, object_type: &str, id: i64, version: i64) {
        self.put(
            object_type,
            FakeObject {
                id,
                version,
                partition: "all",
                date: None,
                json: format!(
                    r#"{{"id":{id},"version":{version},"name":"{object_type} {id} v{version}"}}"#
                ),
            },
        );
    }

    /// Every object of a type Tripletex holds, by id, with its version: the truth a copy is held to.
    pub fn versions_of(&self, object_type: &str) -> BTreeMap<i64, i64> {
        self.state()
            .objects
            .iter()
            .filter(|((of_type, _), _)| of_type == object_type)
            .map(|((_, id), object)| (*id, object.version))
            .collect()
    }

    pub fn remove(&self, object_type: &str, id: i64) {
        self.state().objects.remove(&(object_type.to_owned(), id));
    }

    /// The next fetch answers without these ids.
    pub fn leave_out_of_next_fetch(&self, ids: impl IntoIterator<Item = i64>) {
        self.state().left_out_of_next_fetch.extend(ids);
    }

    /// Deletes an object right after the next list page is answered.
    pub fn delete_after_next_page(&self, object_type: &str, id: i64) {
        self.state()
            .deleted_after_next_page
            .push((object_type.to_owned(), id));
    }

    pub fn set_list_limit(&self, limit: usize) {
        self.state().list_limit = Some(limit);
    }

    pub fn fail_next(
        &self,
        kind: ObjectCallKind,
        errors: impl IntoIterator<Item = TripletexError>,
    ) {
        self.state()
            .failures
            .entry(kind)
            .or_default()
            .extend(errors);
    }

    /// Every object call answered, in order, failed ones included.
    pub fn calls(&self) -> Vec<ObjectCallKind> {
        self.state().calls.clone()
    }

    /// How many list pages were answered 304.
    pub fn not_modified(&self) -> usize {
        self.state().not_modified
    }

    /// Every object call counts as one request.
    pub fn usage(&self) -> domain::ports::ApiUsage {
        let state = self.state();
        domain::ports::ApiUsage {
            requests: state.calls.len() as u64,
            rate_limited: state.rate_limited,
        }
    }

    fn begin(&self, kind: ObjectCallKind) -> Result<MutexGuard<'_, ObjectsState>, TripletexError> {
        let mut state = self.state();
        state.calls.push(kind);
        match state.failures.get_mut(&kind).and_then(VecDeque::pop_front) {
            Some(error) => {
                if matches!(error, TripletexError::RateLimited { .. }) {
                    state.rate_limited += 1;
                }
                Err(error)
            }
            None => Ok(state),
        }
    }

    pub(crate) async fn list_page(&self, page: &PageRequest) -> Result<ListedPage, TripletexError> {
        let mut state = self.begin(ObjectCallKind::ListPage)?;
        let selected: Vec<&FakeObject> = state
            .objects
            .iter()
            .filter(|((kind, _), _)| kind == page.spec.object_type)
            .map(|(_, object)| object)
            .filter(|object| object.partition == page.partition.name)
            .filter(|object| match (page.window, object.date) {
                (Some(window), Some(date)) => window.from <= date && date < window.to,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .collect();
        if state.list_limit.is_some_and(|limit| selected.len() > limit) {
            return Err(api_error(
                422,
                RESULT_TOO_LARGE_CODE,
                "Result set too large.",
            ));
        }
        let full_result_size = Some(selected.len() as u64);
        let objects: Vec<Listed> = selected
            .iter()
            .skip(usize::try_from(page.from).unwrap_or(usize::MAX))
            .take(page.count as usize)
            .map(|object| Listed {
                id: object.id,
                version: Some(object.version),
            })
            .collect();
        let digest = digest_of(page.from, &objects);
        for key in std::mem::take(&mut state.deleted_after_next_page) {
            state.objects.remove(&key);
        }
        if page.digest.as_deref() == Some(digest.as_str()) {
            state.not_modified += 1;
            return Ok(ListedPage::Unchanged);
        }
        Ok(ListedPage::Listed {
            objects,
            digest: Some(digest),
            full_result_size,
        })
    }

    pub(crate) async fn fetch(
        &self,
        request: &FetchRequest<'_>,
    ) -> Result<Vec<FetchedObject>, TripletexError> {
        let mut state = self.begin(ObjectCallKind::Fetch)?;
        let left_out = std::mem::take(&mut state.left_out_of_next_fetch);
        request
            .ids
            .iter()
            .filter(|id| !left_out.contains(id))
            .filter_map(|id| {
                state
                    .objects
                    .get(&(request.spec.object_type.to_owned(), *id))
            })
            .filter(|object| object.partition == request.partition.name)
            .map(|object| {
                let value = RawValue::from_string(object.json.clone()).map_err(|source| {
                    TripletexError::InvalidResponse {
                        source: Box::new(source),
                    }
                })?;
                Ok(FetchedObject {
                    id: object.id,
                    version: Some(object.version),
                    value,
                })
            })
            .collect()
    }

    pub(crate) async fn lookup(
        &self,
        spec: &'static ObjectTypeSpec,
        id: i64,
    ) -> Result<Lookup, TripletexError> {
        let state = self.begin(ObjectCallKind::Lookup)?;
        match state.objects.get(&(spec.object_type.to_owned(), id)) {
            Some(object) => {
                let value = RawValue::from_string(object.json.clone()).map_err(|source| {
                    TripletexError::InvalidResponse {
                        source: Box::new(source),
                    }
                })?;
                FetchedObject::read(value).map(Lookup::Found)
            }
            None => Ok(Lookup::NotFound),
        }
    }
}

fn digest_of(from: u64, objects: &[Listed]) -> String {
    let mut hasher = DefaultHasher::new();
    from.hash(&mut hasher);
    for object in objects {
        (object.id, object.version).hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn api_error(status: u16, code: i64, message: &str) -> TripletexError {
    TripletexError::Api(Box::new(ApiError {
        status,
        body: ApiErrorBody {
            status: Some(status),
            code: Some(code),
            message: Some(message.to_owned()),
            ..ApiErrorBody::default()
        },
    }))
}

/// 404, code 6000: what Tripletex answers for an object that does not exist.
pub fn not_found() -> TripletexError {
    api_error(404, NOT_FOUND_CODE, "Object not found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::sync::{DateWindow, FULL_RANGE, listable};

    fn spec(object_type: &str) -> &'static ObjectTypeSpec {
        listable(object_type).unwrap_or_else(|| panic!("{object_type} is listable"))
    }

    fn page(object_type: &str, from: u64, count: u32) -> PageRequest {
        let spec = spec(object_type);
        PageRequest {
            spec,
            partition: &spec.partitions[0],
            window: spec.date_window.map(|_| FULL_RANGE),
            from,
            count,
            digest: None,
        }
    }

    #[tokio::test]
    async fn pages_in_id_order_and_a_known_digest_is_304() {
        let fake = FakeTripletexObjects::default();
        for id in [3, 1, 2] {
            fake.put_simple("product", id, 0);
        }
        let ListedPage::Listed {
            objects, digest, ..
        } = fake.list_page(&page("product", 0, 2)).await.unwrap()
        else {
            panic!("listed");
        };
        assert_eq!(objects.iter().map(|o| o.id).collect::<Vec<_>>(), [1, 2]);
        let again = PageRequest {
            digest,
            ..page("product", 0, 2)
        };
        assert_eq!(fake.list_page(&again).await.unwrap(), ListedPage::Unchanged);
        fake.put_simple("product", 2, 1);
        assert!(matches!(
            fake.list_page(&again).await.unwrap(),
            ListedPage::Listed { .. }
        ));
        assert_eq!(fake.not_modified(), 1);
    }

    #[tokio::test]
    async fn a_window_over_the_limit_is_too_large_and_dates_select() {
        let fake = FakeTripletexObjects::default();
        for (id, year) in [(1, 2020), (2, 2021), (3, 2022)] {
            fake.put(
                "voucher",
                FakeObject {
                    id,
                    version: 0,
                    partition: "posted",
                    date: Some(jiff::civil::date(year, 6, 1)),
                    json: format!(r#"{{"id":{id},"version":0}}"#),
                },
            );
        }
        fake.set_list_limit(2);
        let error = fake.list_page(&page("voucher", 0, 10)).await.unwrap_err();
        assert!(error.is_result_too_large());
        let narrow = PageRequest {
            window: Some(DateWindow {
                from: jiff::civil::date(2021, 1, 1),
                to: jiff::civil::date(2022, 1, 1),
            }),
            ..page("voucher", 0, 10)
        };
        let ListedPage::Listed { objects, .. } = fake.list_page(&narrow).await.unwrap() else {
            panic!("listed");
        };
        assert_eq!(objects.iter().map(|o| o.id).collect::<Vec<_>>(), [2]);
    }

    #[tokio::test]
    async fn lookups_and_scripted_failures() {
        let fake = FakeTripletexObjects::default();
        fake.put_simple("order", 1, 0);
        let order = spec("order");
        let Lookup::Found(found) = fake.lookup(order, 1).await.unwrap() else {
            panic!("found");
        };
        assert_eq!((found.id, found.version), (1, Some(0)));
        assert!(matches!(
            fake.lookup(order, 2).await.unwrap(),
            Lookup::NotFound
        ));
        fake.fail_next(ObjectCallKind::Lookup, [not_found()]);
        assert!(fake.lookup(order, 1).await.unwrap_err().is_not_found());
        assert_eq!(fake.calls().len(), 3);
    }
}
