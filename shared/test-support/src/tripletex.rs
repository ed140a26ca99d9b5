//! Tripletex's event-subscription API in memory, per company: subscriptions with versions (a PUT
//! with a stale version is refused with 409, as Tripletex does), every call recorded, and failures
//! scripted per kind of call (401, 409, 429, 5xx, or an answer that is not what was asked for).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use crate::tripletex_objects::FakeTripletexObjects;
use domain::ids::TenantId;
use domain::ports::{ApiUsage, ObjectsApi, SubscriptionsApi, TripletexCompanies};
use domain::sync::{FetchRequest, FetchedObject, ListedPage, Lookup, ObjectTypeSpec, PageRequest};
use domain::tripletex::{
    ApiError, ApiErrorBody, REVISION_CONFLICT_CODE, Subscription, SubscriptionStatus,
    SubscriptionWrite, TripletexCredentials, TripletexError,
};

/// Every company's fake API. The keeper gets each company's one instance, as it would get its cached
/// client.
#[derive(Debug, Default, Clone)]
pub struct FakeTripletex(Arc<FakeTripletexState>);

/// What every clone of a [`FakeTripletex`] shares: a clone is a handle on the same fake.
#[derive(Debug, Default)]
pub struct FakeTripletexState {
    companies: Mutex<BTreeMap<TenantId, Arc<FakeTripletexCompany>>>,
    refused: Mutex<BTreeSet<TenantId>>,
    handed_out: Mutex<Vec<(TenantId, String)>>,
}

impl std::ops::Deref for FakeTripletex {
    type Target = FakeTripletexState;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FakeTripletex {
    pub fn new() -> Self {
        Self::default()
    }

    /// The company of `tenant` (made on first use), to seed and to inspect.
    pub fn of(&self, tenant: &str) -> Arc<FakeTripletexCompany> {
        let tenant = TenantId::parse(tenant).unwrap_or_else(|_| panic!("bad tenant {tenant}"));
        Arc::clone(
            self.companies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(tenant)
                .or_default(),
        )
    }

    /// Asking for `tenant`'s API fails as a client that cannot be built would.
    pub fn refuse_client(&self, tenant: &str) {
        let tenant = TenantId::parse(tenant).unwrap_or_else(|_| panic!("bad tenant {tenant}"));
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant);
    }

    /// Each API handed out: the tenant and the employee token it was asked for with.
    pub fn handed_out(&self) -> Vec<(TenantId, String)> {
        self.handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl TripletexCompanies for FakeTripletex {
    type Api = FakeTripletexCompany;

    fn company(
        &self,
        tenant: &TenantId,
        credentials: &TripletexCredentials,
    ) -> Result<Arc<FakeTripletexCompany>, TripletexError> {
        self.handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((
                tenant.clone(),
                credentials.employee_token.expose().to_owned(),
            ));
        if self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(tenant)
        {
            return Err(TripletexError::InvalidResponse {
                source: "the fake refuses to build this client".into(),
            });
        }
        Ok(self.of(tenant.as_str()))
    }
}

/// One call the fake answered, in order.
#[derive(Debug, Clone)]
pub enum TripletexCall {
    List,
    Get(i64),
    Create(SubscriptionWrite),
    Update(i64, SubscriptionWrite),
    Delete(i64),
}

impl TripletexCall {
    pub fn kind(&self) -> CallKind {
        match self {
            Self::List => CallKind::List,
            Self::Get(_) => CallKind::Get,
            Self::Create(_) => CallKind::Create,
            Self::Update(..) => CallKind::Update,
            Self::Delete(_) => CallKind::Delete,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    List,
    Get,
    Create,
    Update,
    Delete,
}

#[derive(Debug, Default)]
pub struct FakeTripletexCompany {
    state: Mutex<State>,
    /// The company's objects, as the sync's endpoints list and fetch them.
    pub objects: FakeTripletexObjects,
}

#[derive(Debug, Default)]
struct State {
    subscriptions: BTreeMap<i64, Subscription>,
    next_id: i64,
    failures: HashMap<CallKind, VecDeque<TripletexError>>,
    /// Answers for the next `get_subscription` calls, instead of the stored subscription.
    scripted_gets: VecDeque<Subscription>,
    /// Applied to the stored subscriptions after the next list: another writer acting between the
    /// keeper's read and its write.
    after_list: Option<AfterList>,
    calls: Vec<TripletexCall>,
}

type Edit = Box<dyn FnOnce(&mut BTreeMap<i64, Subscription>) + Send>;

struct AfterList(Edit);

impl std::fmt::Debug for AfterList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterList(..)")
    }
}

impl FakeTripletexCompany {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a subscription as Tripletex would hold it (an id and version 0 unless given); returns
    /// its id.
    pub fn seed(&self, subscription: Subscription) -> i64 {
        let mut state = self.state();
        state.next_id = state.next_id.max(subscription.id.unwrap_or(0));
        let id = subscription.id.unwrap_or_else(|| {
            state.next_id += 1;
            state.next_id
        });
        let stored = Subscription {
            id: Some(id),
            version: subscription.version.or(Some(0)),
            ..subscription
        };
        state.subscriptions.insert(id, stored);
        id
    }

    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.state().subscriptions.values().cloned().collect()
    }

    pub fn subscription(&self, id: i64) -> Option<Subscription> {
        self.state().subscriptions.get(&id).cloned()
    }

    /// The next calls of `kind` fail with these errors, in order; later calls succeed again.
    pub fn fail_next(&self, kind: CallKind, errors: impl IntoIterator<Item = TripletexError>) {
        self.state()
            .failures
            .entry(kind)
            .or_default()
            .extend(errors);
    }

    /// The next `get_subscription` answers with this, whatever was asked for.
    pub fn answer_next_get(&self, subscription: Subscription) {
        self.state().scripted_gets.push_back(subscription);
    }

    /// Changes the stored subscriptions right after the next list, as another writer would.
    pub fn after_next_list(
        &self,
        edit: impl FnOnce(&mut BTreeMap<i64, Subscription>) + Send + 'static,
    ) {
        self.state().after_list = Some(AfterList(Box::new(edit)));
    }

    pub fn calls(&self) -> Vec<TripletexCall> {
        self.state().calls.clone()
    }

    /// The calls that would change something in Tripletex.
    pub fn writes(&self) -> Vec<TripletexCall> {
        self.calls()
            .into_iter()
            .filter(|call| {
                matches!(
                    call.kind(),
                    CallKind::Create | CallKind::Update | CallKind::Delete
                )
            })
            .collect()
    }

    fn begin(
        &self,
        call: TripletexCall,
    ) -> Result<std::sync::MutexGuard<'_, State>, TripletexError> {
        let mut state = self.state();
        let kind = call.kind();
        state.calls.push(call);
        match state.failures.get_mut(&kind).and_then(VecDeque::pop_front) {
            Some(error) => Err(error),
            None => Ok(state),
        }
    }
}

impl SubscriptionsApi for FakeTripletexCompany {
    async fn list_subscriptions(&self) -> Result<Vec<Subscription>, TripletexError> {
        let mut state = self.begin(TripletexCall::List)?;
        let listed = state.subscriptions.values().cloned().collect();
        if let Some(AfterList(edit)) = state.after_list.take() {
            edit(&mut state.subscriptions);
        }
        Ok(listed)
    }

    async fn get_subscription(&self, id: i64) -> Result<Subscription, TripletexError> {
        let mut state = self.begin(TripletexCall::Get(id))?;
        if let Some(scripted) = state.scripted_gets.pop_front() {
            return Ok(scripted);
        }
        state
            .subscriptions
            .get(&id)
            .cloned()
            .ok_or_else(|| api_error(404, 6000, "Object not found"))
    }

    async fn create_subscription(
        &self,
        write: &SubscriptionWrite,
    ) -> Result<Subscription, TripletexError> {
        let mut state = self.begin(TripletexCall::Create(write.clone()))?;
        state.next_id += 1;
        let id = state.next_id;
        let mut created = Subscription {
            id: Some(id),
            version: Some(0),
            status: Some(SubscriptionStatus::Active),
            ..Subscription::default()
        };
        apply(&mut created, write);
        state.subscriptions.insert(id, created.clone());
        Ok(created)
    }

    async fn update_subscription(
        &self,
        id: i64,
        write: &SubscriptionWrite,
    ) -> Result<Subscription, TripletexError> {
        let mut state = self.begin(TripletexCall::Update(id, write.clone()))?;
        let stored = state
            .subscriptions
            .get_mut(&id)
            .ok_or_else(|| api_error(404, 6000, "Object not found"))?;
        if write.version.is_some() && write.version != stored.version {
            return Err(conflict());
        }
        apply(stored, write);
        stored.version = Some(stored.version.unwrap_or(0) + 1);
        Ok(stored.clone())
    }

    async fn delete_subscription(&self, id: i64) -> Result<(), TripletexError> {
        let mut state = self.begin(TripletexCall::Delete(id))?;
        state
            .subscriptions
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| api_error(404, 6000, "Object not found"))
    }
}

impl ObjectsApi for FakeTripletexCompany {
    async fn list_page(&self, page: &PageRequest) -> Result<ListedPage, TripletexError> {
        self.objects.list_page(page).await
    }

    async fn fetch(
        &self,
        request: &FetchRequest<'_>,
    ) -> Result<Vec<FetchedObject>, TripletexError> {
        self.objects.fetch(request).await
    }

    async fn lookup(
        &self,
        spec: &'static ObjectTypeSpec,
        id: i64,
        _fields: &str,
    ) -> Result<Lookup, TripletexError> {
        self.objects.lookup(spec, id).await
    }

    fn usage(&self) -> ApiUsage {
        self.objects.usage()
    }
}

/// A PUT is a partial update: what the write carries replaces what is stored. Write-only values
/// (auth header value, HMAC secret) are kept by Tripletex and never shown, so not here either.
fn apply(stored: &mut Subscription, write: &SubscriptionWrite) {
    if let Some(event) = &write.event {
        stored.event = Some(event.clone());
    }
    if let Some(target_url) = &write.target_url {
        stored.target_url = Some(target_url.expose().to_owned());
    }
    if let Some(fields) = &write.fields {
        stored.fields = Some(fields.clone());
    }
    if let Some(status) = &write.status {
        stored.status = Some(status.clone());
    }
    if let Some(name) = &write.auth_header_name {
        stored.auth_header_name = Some(name.clone());
    }
}

fn api_error(status: u16, code: i64, message: &str) -> TripletexError {
    let error = Box::new(ApiError {
        status,
        body: ApiErrorBody {
            status: Some(status),
            code: Some(code),
            message: Some(message.to_owned()),
            request_id: Some("fake".to_owned()),
            ..ApiErrorBody::default()
        },
    });
    if status == 401 {
        TripletexError::Unauthorized(error)
    } else {
        TripletexError::Api(error)
    }
}

/// 409: the write named a stale version.
pub fn conflict() -> TripletexError {
    api_error(409, REVISION_CONFLICT_CODE, "Revision conflict")
}

/// 401 that a fresh session did not cure.
pub fn unauthorized() -> TripletexError {
    api_error(401, 3000, "Unauthorized")
}

/// 403: the session may not see this company (a client the key does not reach).
pub fn forbidden() -> TripletexError {
    api_error(403, 9000, "You do not have access to this company")
}

/// 429 that outlasted the client's waits.
pub fn rate_limited() -> TripletexError {
    TripletexError::RateLimited { attempts: 5 }
}

/// 5xx that outlasted the client's retries.
pub fn unavailable() -> TripletexError {
    TripletexError::Unavailable {
        attempts: 5,
        source: Box::new(ApiError {
            status: 503,
            body: ApiErrorBody::default(),
        }),
    }
}
