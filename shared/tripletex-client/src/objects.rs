//! The object endpoints a sync reads (`/product`, `/customer`, `/ledger/voucher`, ...), as the
//! `ObjectsApi` port: list pages with `fields=id,version` and a stable order, objects by id in full,
//! and the by-id GET that confirms a deletion. Every list call sends `If-None-Match` (the page's last
//! digest, or a placeholder) so that Tripletex computes the page's checksum, and a 304 costs no body.

use domain::ports::ObjectsApi;
use domain::sync::{
    FetchRequest, FetchedObject, Listed, ListedPage, Lookup, ObjectTypeSpec, PageRequest, Partition,
};
use domain::tripletex::{ListPage, Single, TripletexError};
use reqwest::Method;
use serde_json::value::RawValue;
use tracing::instrument;

use crate::transport::HttpTripletexApi;

/// Sent when no digest is known yet: any value makes Tripletex compute one.
const NO_DIGEST_YET: &str = "none";

fn filters(
    spec: &ObjectTypeSpec,
    partition: &Partition,
    window: Option<domain::sync::DateWindow>,
) -> Vec<(&'static str, String)> {
    let mut query: Vec<(&'static str, String)> = partition
        .query
        .iter()
        .map(|(name, value)| (*name, (*value).to_owned()))
        .collect();
    if let (Some(names), Some(window)) = (spec.date_window, window) {
        query.extend(window.query(names));
    }
    query
}

impl ObjectsApi for HttpTripletexApi {
    #[instrument(skip_all, fields(object_type = page.spec.object_type, partition = page.partition.name, from = page.from))]
    async fn list_page(&self, page: &PageRequest) -> Result<ListedPage, TripletexError> {
        let mut query = filters(page.spec, page.partition, page.window);
        query.extend([
            ("fields", "id,version".to_owned()),
            ("sorting", "id".to_owned()),
            ("from", page.from.to_string()),
            ("count", page.count.to_string()),
        ]);
        let digest = page.digest.as_deref().unwrap_or(NO_DIGEST_YET);
        let answer: Option<ListPage<Listed>> = self
            .call_if_changed(page.partition.list_path(page.spec), &query, digest)
            .await?;
        Ok(match answer {
            None => ListedPage::Unchanged,
            Some(listed) => ListedPage::Listed {
                objects: listed.values,
                digest: listed.version_digest,
                full_result_size: listed
                    .full_result_size
                    .and_then(|size| u64::try_from(size).ok()),
            },
        })
    }

    #[instrument(skip_all, fields(object_type = request.spec.object_type, ids = request.ids.len()))]
    async fn fetch(
        &self,
        request: &FetchRequest<'_>,
    ) -> Result<Vec<FetchedObject>, TripletexError> {
        if request.ids.is_empty() {
            return Ok(Vec::new());
        }
        if request.partition.fetched_by_id() {
            // Its endpoint filters on no id: one call each, and one that is gone is left out (the
            // step looks up what a fetch leaves out).
            let mut found = Vec::with_capacity(request.ids.len());
            for &id in request.ids {
                if let Lookup::Found(object) =
                    ObjectsApi::lookup(self, request.spec, id, request.fields).await?
                {
                    found.push(object);
                }
            }
            return Ok(found);
        }
        let ids = request
            .ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut query = filters(request.spec, request.partition, request.window);
        query.extend([
            (request.spec.id_filter.parameter(), ids),
            ("fields", request.fields.to_owned()),
            ("count", request.ids.len().to_string()),
        ]);
        let page: ListPage<Box<RawValue>> = self
            .call(Method::GET, request.spec.list_path, &query, None::<&()>)
            .await?;
        page.values.into_iter().map(FetchedObject::read).collect()
    }

    #[instrument(skip(self, spec, fields), fields(object_type = spec.object_type))]
    async fn lookup(
        &self,
        spec: &'static ObjectTypeSpec,
        id: i64,
        fields: &str,
    ) -> Result<Lookup, TripletexError> {
        let answer: Result<Single<Box<RawValue>>, TripletexError> = self
            .call(
                Method::GET,
                &spec.by_id_path(id),
                &[("fields", fields.to_owned())],
                None::<&()>,
            )
            .await;
        match answer {
            Ok(Single { value: Some(value) }) => FetchedObject::read(value).map(Lookup::Found),
            Ok(Single { value: None }) => Err(TripletexError::InvalidResponse {
                source: "a by-id answer without a value".into(),
            }),
            Err(error) if error.is_not_found() => Ok(Lookup::NotFound),
            Err(error) => Err(error),
        }
    }

    fn usage(&self) -> domain::ports::ApiUsage {
        HttpTripletexApi::usage(self)
    }
}
