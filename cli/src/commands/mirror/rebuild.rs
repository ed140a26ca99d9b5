//! `mirror rebuild`: every item of the table (of one company, one type) written with the mirror's
//! rule, read by a parallel scan and the item codec the stream mirror uses.

use super::*;

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
