//! `mirror`: the mirror checked against the table, rebuilt, and counted.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn mirror_check_finds_what_the_mirror_lacks_rebuild_fills_it_once_and_status_counts_it() {
    use aws_adapters::blobs::S3BlobStore;
    use aws_adapters::dynamodb::DynamoObjectStore;
    use domain::claim::LargeValues;
    use domain::dedup::{ObjectChange, ObjectKey, Payload, Source, Write};
    use domain::ids::TenantId;
    use domain::ports::ObjectStore;

    let database = test_support::PostgresServer::shared().fresh_database("cli_mirror");
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let secret = format!("cli-mirror-database-{}", std::process::id());
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&secret)
        .secret_string(&database)
        .send()
        .await
        .unwrap();
    let local = local_stack_with(
        "cli-mirror",
        "http://127.0.0.1:9",
        &[
            "--parameter".into(),
            "EnablePostgresMirror=true".into(),
            "--parameter".into(),
            format!("MirrorDatabaseSecretName={secret}"),
        ],
    )
    .await;
    let bucket = local.resources["PayloadBucket"]["name"].as_str().unwrap();
    let store = LargeValues::new(
        DynamoObjectStore::new(local.dynamodb.clone(), local.table("ObjectsTable")),
        S3BlobStore::new(&sdk, bucket),
    );
    for (tenant, id, padding) in [
        ("default", 1, 10),
        ("default", 2, 400_000),
        ("other", 3, 10),
    ] {
        let change = ObjectChange {
            key: ObjectKey {
                tenant: TenantId::parse(tenant).unwrap(),
                object_type: "product".into(),
                object_id: id,
            },
            write: Write::Versioned {
                version: 2,
                payload: Payload::from_json(&format!(
                    r#"{{"id":{id},"version":2,"name":"n","description":"{}"}}"#,
                    "d".repeat(padding)
                )),
            },
            event: "product.update".into(),
            subscription_id: None,
            received_at: jiff::Timestamp::now(),
            source: Source::Resync,
            probe: None,
            request: None,
        };
        store.apply(&change).await.unwrap();
    }

    let (checked, code) = local.json(&["mirror", "check"]);
    assert_eq!(code, Some(1), "{checked}");
    assert_eq!(checked["differences"].as_array().unwrap().len(), 3);
    let (rebuilt, code) = local.json(&["mirror", "rebuild", "--company", "default"]);
    assert_eq!(
        (code, &rebuilt["items"], &rebuilt["rowsChanged"]),
        (Some(0), &2.into(), &2.into())
    );
    let (rebuilt, _) = local.json(&["mirror", "rebuild"]);
    assert_eq!(
        (&rebuilt["items"], &rebuilt["rowsChanged"]),
        (&3.into(), &1.into()),
        "idempotent"
    );
    let (checked, code) = local.json(&["mirror", "check"]);
    assert_eq!(
        (code, checked["differences"].as_array().unwrap().len()),
        (Some(0), 0)
    );
    let (status, code) = local.json(&["mirror", "status"]);
    assert_eq!(code, Some(0));
    let default_products = status["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "default")
        .unwrap();
    assert_eq!(
        (&default_products["rows"], &default_products["items"]),
        (&2.into(), &2.into())
    );
    let large = std::process::Command::new("psql")
        .arg(&database)
        .args([
            "-Atc",
            "SELECT length(value->>'description') FROM tripletex.object WHERE id = 2",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&large.stdout).trim(),
        "400000",
        "read whole from the bucket"
    );
}
