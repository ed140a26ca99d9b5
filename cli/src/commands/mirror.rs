//! `mirror rebuild | status | check`: the Postgres mirror from the operator's side.

use crate::context::{Answer, CliError, Context};
use clap::Subcommand;

use std::collections::BTreeMap;

use aws_adapters::dynamodb::{DynamoObjectStore, mirror_row, stored_item};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::error::error_chain;
use domain::ids::TenantId;
use domain::mirror::MirrorRow;
use domain::ports::{BlobStore, Mirror};
use postgres_adapter::{DatabaseSettings, PgMirror};
use serde::Serialize;

use crate::deployment::Deployment;
use crate::ops::tables::Item;
use crate::ops::{self, AwsError};

#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    #[command(subcommand)]
    action: MirrorAction,
    /// The database, instead of the one the deployment's secret names (e.g. through a tunnel).
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MirrorAction {
    /// Writes every item of the table (or of one company, one type) into the mirror with the
    /// mirror's own rule, by a parallel scan: idempotent, and safe while the stream runs (neither
    /// can move a row back).
    Rebuild {
        #[arg(long)]
        company: Option<String>,
        #[arg(long = "type", value_name = "TYPE")]
        object_type: Option<String>,
        /// Scan segments read at once.
        #[arg(long, default_value_t = 4)]
        segments: i32,
    },
    /// The stream's lag (IteratorAge) and the rows per company and type beside the table's items.
    Status,
    /// Every object's (tenant, type, id, version, deleted) in the table against the mirror; the
    /// differences listed, exit 1 if any.
    Check,
}

pub async fn run(ctx: &Context, args: &MirrorArgs) -> Result<Answer, CliError> {
    let deployment = &ctx.deployment;
    let dynamodb = ctx.dynamodb();
    let mirror = connect(&ctx.sdk, deployment, args.database_url.as_deref()).await?;
    match &args.action {
        MirrorAction::Rebuild {
            company,
            object_type,
            segments,
        } => {
            let rebuilt = rebuild(
                dynamodb,
                &ctx.payloads(),
                &mirror,
                &deployment.objects_table,
                (company.as_deref(), object_type.as_deref()),
                *segments,
            )
            .await?;
            ctx.answer(&rebuilt, render_rebuilt, false)
        }
        MirrorAction::Status => {
            let status = status(&ctx.sdk, deployment, dynamodb, &mirror).await?;
            ctx.answer(&status, render_status, false)
        }
        MirrorAction::Check => {
            let checked = check(dynamodb, &deployment.objects_table, &mirror).await?;
            let differ = !checked.differences.is_empty();
            ctx.answer(&checked, render_checked, differ)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(
        "the deployment has no Postgres mirror (EnablePostgresMirror), and no --database-url was given"
    )]
    NoMirror,
    #[error("the mirror's database secret is not usable")]
    Settings(#[source] postgres_adapter::ConnectError),
    #[error(transparent)]
    Database(#[from] domain::ports::MirrorError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl From<MirrorError> for CliError {
    fn from(error: MirrorError) -> Self {
        Self::Command(Box::new(error))
    }
}

/// The mirror's database: `--database-url`, or the secret the deployment names.
pub async fn connect(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    database_url: Option<&str>,
) -> Result<PgMirror, MirrorError> {
    let text = match (database_url, &deployment.mirror_database_secret) {
        (Some(url), _) => url.to_owned(),
        (None, Some(secret)) => {
            ops::secret_text(sdk, secret, "the mirror's database secret").await?
        }
        (None, None) => return Err(MirrorError::NoMirror),
    };
    let settings = DatabaseSettings::parse_secret(&text).map_err(MirrorError::Settings)?;
    Ok(PgMirror::connect(settings).await?)
}

/// How many refused items a rebuild names.
const REFUSALS_SHOWN: usize = 10;

/// When a rebuild refreshes the planner's statistics of the mirror's tables.
const ANALYZE_AFTER_ITEMS: u64 = 5_000;

/// What `mirror rebuild` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rebuilt {
    pub items: u64,
    pub rows_changed: u64,
    /// Items not written: what the stream mirror also refuses (an item the codec cannot read, a
    /// value altered in the bucket); the first few named in `refusals`.
    pub refused: u64,
    pub refusals: Vec<String>,
    pub seconds: f64,
    /// Of those, the time spent writing to the database (the rest: reading the table).
    pub writing_seconds: f64,
}

/// Pages of the objects table as a scan reads them, or why a page could not be read.
pub type Pages = tokio::sync::mpsc::Receiver<Result<Vec<Item>, AwsError>>;

/// Every item (of one company, one type) written with the mirror's rule, read by a parallel scan;
/// each page is one transaction. Safe beside the stream: neither can move a row back.
pub async fn rebuild(
    dynamodb: &aws_sdk_dynamodb::Client,
    payloads: &impl BlobStore,
    mirror: &PgMirror,
    table: &str,
    filter: (Option<&str>, Option<&str>),
    segments: i32,
) -> Result<Rebuilt, MirrorError> {
    let started = std::time::Instant::now();
    let pages = scan(dynamodb, table, filter, segments);
    let mut rebuilt = mirror_pages(pages, payloads, mirror).await?;
    rebuilt.seconds = started.elapsed().as_secs_f64();
    Ok(rebuilt)
}

/// A parallel scan of the table: each segment a task that sends its pages as it reads them. The
/// channel holds two pages per segment, so memory stays a few pages whatever the table's size.
pub fn scan(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    filter: (Option<&str>, Option<&str>),
    segments: i32,
) -> Pages {
    let segments = segments.max(1);
    let (pages, received) = tokio::sync::mpsc::channel(segments as usize * 2);
    for segment in 0..segments {
        let (dynamodb, table, pages) = (dynamodb.clone(), table.to_owned(), pages.clone());
        let (company, object_type) = (filter.0.map(str::to_owned), filter.1.map(str::to_owned));
        tokio::spawn(async move {
            let mut start = None;
            loop {
                let mut scan = dynamodb
                    .scan()
                    .table_name(&table)
                    .segment(segment)
                    .total_segments(segments)
                    .set_exclusive_start_key(start);
                let mut conditions = Vec::new();
                if let Some(company) = &company {
                    conditions.push("#tenant = :tenant");
                    scan = scan
                        .expression_attribute_names("#tenant", domain::item::TENANT)
                        .expression_attribute_values(":tenant", AttributeValue::S(company.clone()));
                }
                if let Some(object_type) = &object_type {
                    conditions.push("#type = :type");
                    scan = scan
                        .expression_attribute_names("#type", domain::item::OBJECT_TYPE)
                        .expression_attribute_values(
                            ":type",
                            AttributeValue::S(object_type.clone()),
                        );
                }
                if !conditions.is_empty() {
                    scan = scan.filter_expression(conditions.join(" AND "));
                }
                let page = match scan.send().await {
                    Ok(page) => page,
                    Err(source) => {
                        let error = AwsError::Call {
                            what: format!("scanning {table}"),
                            source: Box::new(source),
                        };
                        let _ = pages.send(Err(error)).await;
                        return;
                    }
                };
                start = page.last_evaluated_key;
                let sent = pages.send(Ok(page.items.unwrap_or_default())).await;
                if sent.is_err() || start.is_none() {
                    return;
                }
            }
        });
    }
    received
}

/// Writes every page into the mirror with its rule (large values read from the payload bucket), one
/// transaction per page, with a line of progress on a terminal.
pub async fn mirror_pages(
    mut pages: Pages,
    payloads: &impl BlobStore,
    mirror: &PgMirror,
) -> Result<Rebuilt, MirrorError> {
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos} items mirrored ({per_sec}), {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let mut rebuilt = Rebuilt {
        items: 0,
        rows_changed: 0,
        refused: 0,
        refusals: Vec::new(),
        seconds: 0.0,
        writing_seconds: 0.0,
    };
    while let Some(page) = pages.recv().await {
        let mut rows = Vec::new();
        for item in page? {
            match mirrored(payloads, &item).await? {
                Ok(row) => rows.push(row),
                Err(refusal) => {
                    rebuilt.refused += 1;
                    if rebuilt.refusals.len() < REFUSALS_SHOWN {
                        rebuilt.refusals.push(refusal);
                    }
                }
            }
        }
        let before = rebuilt.items;
        rebuilt.items += rows.len() as u64;
        let writing = std::time::Instant::now();
        rebuilt.rows_changed += mirror.apply(&rows, &[]).await?;
        rebuilt.writing_seconds += writing.elapsed().as_secs_f64();
        // Into empty tables the planner's statistics say "empty" until autovacuum comes: refreshed
        // once the load is under way, every page after looks its keys up rather than scanning.
        if before < ANALYZE_AFTER_ITEMS && rebuilt.items >= ANALYZE_AFTER_ITEMS {
            mirror.analyze().await?;
        }
        bar.set_position(rebuilt.items);
    }
    bar.finish_and_clear();
    rebuilt.seconds = started.elapsed().as_secs_f64();
    Ok(rebuilt)
}

/// An item as the mirror writes it (`domain::claim::mirrored_row`, as the stream mirror reads it), or
/// why it is refused: an item the codec cannot read, or a value the bucket holds altered. Only an
/// unreachable bucket fails the rebuild.
async fn mirrored(
    payloads: &impl BlobStore,
    item: &Item,
) -> Result<Result<MirrorRow, String>, MirrorError> {
    let named = |reason: String| {
        let key = item
            .get(aws_adapters::dynamodb::item::KEY)
            .and_then(|key| key.as_s().ok())
            .map_or("an item without a key", String::as_str);
        format!("{key}: {reason}")
    };
    match mirror_row(payloads, item).await {
        Ok(row) => Ok(Ok(row)),
        Err(error) if error.is_transient() => Err(MirrorError::Aws(AwsError::Call {
            what: "reading a value from the payload bucket".to_owned(),
            source: Box::new(error),
        })),
        Err(error) => Ok(Err(named(error_chain(&error)))),
    }
}

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
                Err(error) => (None, Some(domain::error::error_chain(&error))),
            }
        }
    };
    Ok(MirrorStatus {
        lag_ms,
        lag_unknown_because,
        types,
    })
}

/// `mirror check`: the objects the table and the mirror disagree on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub items: usize,
    pub rows: usize,
    pub differences: Vec<Difference>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub key: String,
    /// (version, deleted) in the table; none when only the mirror has it.
    pub table: Option<(Option<i64>, bool)>,
    pub mirror: Option<(Option<i64>, bool)>,
}

pub async fn check(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    mirror: &PgMirror,
) -> Result<Checked, MirrorError> {
    let mut in_table = BTreeMap::new();
    for item in ops::tables::scan(dynamodb, table).await? {
        // An item the codec refuses is not mirrored either (see `rebuild`).
        if let Ok(stored) = stored_item(&item) {
            in_table.insert(
                stored.key.to_string(),
                (stored.state.version, stored.state.deleted),
            );
        }
    }
    let mut in_mirror: BTreeMap<String, (Option<i64>, bool)> = mirror
        .keys()
        .await?
        .into_iter()
        .map(|(tenant, object_type, id, version, deleted)| {
            (format!("{tenant}#{object_type}#{id}"), (version, deleted))
        })
        .collect();
    let rows = in_mirror.len();
    let mut differences = Vec::new();
    for (key, table_state) in &in_table {
        let mirror_state = in_mirror.remove(key);
        if mirror_state != Some(*table_state) {
            differences.push(Difference {
                key: key.clone(),
                table: Some(*table_state),
                mirror: mirror_state,
            });
        }
    }
    differences.extend(in_mirror.into_iter().map(|(key, state)| Difference {
        key,
        table: None,
        mirror: Some(state),
    }));
    Ok(Checked {
        items: in_table.len(),
        rows,
        differences,
    })
}

pub fn render_rebuilt(rebuilt: &Rebuilt) -> String {
    let mut out = format!(
        "mirrored {} items in {:.1} s ({:.1} s of it writing to the database): {} rows changed (the rest already held them)\n",
        rebuilt.items, rebuilt.seconds, rebuilt.writing_seconds, rebuilt.rows_changed
    );
    if rebuilt.refused > 0 {
        out.push_str(&format!(
            "{} items refused, as the stream mirror refuses them (fix or forget each, then rebuild):\n",
            rebuilt.refused
        ));
        for refusal in &rebuilt.refusals {
            out.push_str(&format!("  {refusal}\n"));
        }
    }
    out
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

pub fn render_checked(checked: &Checked) -> String {
    let mut out = format!(
        "{} items in the table, {} rows in the mirror: {} differ\n",
        checked.items,
        checked.rows,
        checked.differences.len()
    );
    let state = |s: &Option<(Option<i64>, bool)>| match s {
        None => "absent".to_owned(),
        Some((version, deleted)) => format!(
            "version {}{}",
            version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
            if *deleted { ", deleted" } else { "" }
        ),
    };
    for difference in checked.differences.iter().take(50) {
        out.push_str(&format!(
            "  {}: table {}, mirror {}\n",
            difference.key,
            state(&difference.table),
            state(&difference.mirror)
        ));
    }
    out
}
