//! `mirror status`: the stream's lag and the mirror's rows per type.

use super::*;

/// `mirror status`: the lag and the counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorStatus {
    /// The stream's IteratorAge, its latest minute, in milliseconds; none when CloudWatch has none.
    pub lag_ms: Option<u64>,
    pub lag_unknown_because: Option<String>,
    pub types: Vec<TypeRows>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeRows {
    pub tenant: String,
    pub object_type: String,
    pub rows: i64,
    pub tombstones: i64,
    /// Items of the table (tombstones included), by its byType index.
    pub items: Option<u64>,
}

pub async fn status(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    dynamodb: &aws_sdk_dynamodb::Client,
    mirror: &PgMirror,
) -> Result<MirrorStatus, MirrorError> {
    let store = DynamoObjectStore::new(dynamodb.clone(), &deployment.objects_table);
    let mut types = Vec::new();
    for (tenant, object_type, rows, tombstones) in mirror.rows_per_type().await? {
        let items = match TenantId::parse(&tenant) {
            Ok(id) => store.count_of_type(&id, &object_type).await.ok(),
            Err(_) => None,
        };
        types.push(TypeRows {
            tenant,
            object_type,
            rows,
            tombstones,
            items,
        });
    }
    let (lag_ms, lag_unknown_because) = match &deployment.mirror_function {
        None => (
            None,
            Some("the deployment has no mirror function".to_owned()),
        ),
        Some(function) => {
            let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
            match crate::ops::metrics::latest_maxima(
                &cloudwatch,
                ("AWS/Lambda", "IteratorAge", "FunctionName"),
                &[function],
                jiff::Timestamp::now(),
            )
            .await
            {
                Ok(ages) => match ages.first().copied().flatten() {
                    Some(age) => (Some(age), None),
                    None => (None, Some("CloudWatch has no IteratorAge of the last minutes (the local stack keeps no Lambda metrics)".to_owned())),
                },
                Err(error) => (
                    None,
                    Some(format!(
                        "reading the stream's IteratorAge from CloudWatch failed: {}",
                        aws_adapters::sdk::words(&error)
                    )),
                ),
            }
        }
    };
    Ok(MirrorStatus {
        lag_ms,
        lag_unknown_because,
        types,
    })
}

pub fn render_status(status: &MirrorStatus) -> String {
    let mut out = match (status.lag_ms, &status.lag_unknown_because) {
        (Some(ms), _) => format!(
            "lag (the stream's IteratorAge): {:.1} s\n",
            ms as f64 / 1000.0
        ),
        (None, Some(why)) => format!("lag unknown: {why}\n"),
        (None, None) => "lag unknown\n".to_owned(),
    };
    for row in &status.types {
        let items = row
            .items
            .map_or_else(|| "-".to_owned(), |items| items.to_string());
        out.push_str(&format!(
            "  {:<12} {:<12} rows {:>8} ({} tombstones), items in the table {items}\n",
            row.tenant,
            row.object_type,
            row.rows + row.tombstones,
            row.tombstones
        ));
    }
    out
}
