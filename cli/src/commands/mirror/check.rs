//! `mirror check`: the mirror's keys and versions against the table's.

use super::*;

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
