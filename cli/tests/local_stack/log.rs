//! `log`: the receipt journal, read from the local functions' output as scripts/run leaves it.

use super::*;

/// The journal's lines as the functions print them, among the log's other lines, `seconds` ago.
fn journal_lines() -> String {
    let at = |seconds_ago: i64| {
        jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(seconds_ago))
            .unwrap()
            .to_string()
    };
    [
        r#"{"level":"INFO","fields":{"message":"batch done"}}"#.to_owned(),
        format!(
            r#"{{"journal":"received","at":"{}","request":"r-stored","tenant":"default","event":"customer.update","id":7,"bytes":96,"status":200,"outcome":"queued","idempotencyKey":"k-1"}}"#,
            at(60)
        ),
        format!(
            r#"{{"journal":"settled","at":"{}","request":"r-stored","message":"m-1","tenant":"default","type":"customer","id":7,"event":"customer.update","version":4,"source":"webhook","outcome":"accepted"}}"#,
            at(59)
        ),
        format!(
            r#"{{"journal":"received","at":"{}","request":"r-stale","tenant":"default","event":"customer.update","id":7,"bytes":96,"status":200,"outcome":"queued"}}"#,
            at(50)
        ),
        format!(
            r#"{{"journal":"settled","at":"{}","request":"r-stale","message":"m-2","tenant":"default","type":"customer","id":7,"event":"customer.update","version":3,"source":"webhook","outcome":"stale"}}"#,
            at(49)
        ),
        format!(
            r#"{{"journal":"received","at":"{}","request":"r-refused","bytes":96,"status":401,"outcome":"unauthorized","reason":"header: credential mismatch"}}"#,
            at(40)
        ),
        format!(
            r#"{{"journal":"received","at":"{}","request":"r-old","tenant":"default","event":"product.create","id":1,"bytes":96,"status":200,"outcome":"queued"}}"#,
            at(7200)
        ),
    ]
    .join("\n")
}

/// The local stack, its functions' output a file that holds `journal_lines()`.
async fn local_stack_writing_the_journal(name: &str) -> (Local, std::path::PathBuf) {
    let log = std::env::temp_dir().join(format!("{name}-{}.log", std::process::id()));
    std::fs::write(&log, journal_lines()).unwrap();
    let more = ["--function-log".to_owned(), log.display().to_string()];
    (
        local_stack_with(name, "http://127.0.0.1:9", &more).await,
        log,
    )
}

/// The request ids of `log --json`'s trails, in order.
fn requests(logged: &Value) -> Vec<&str> {
    logged["trails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|trail| trail["request"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn log_follows_each_request_through_the_hops_and_exits_1_when_one_needs_a_person() {
    let (local, _) = local_stack_writing_the_journal("cli-log").await;

    let (logged, code) = local.json(&["log", "--since", "10m"]);
    assert_eq!(code, Some(1), "a 401 in the window needs a person");
    assert_eq!(
        requests(&logged),
        ["r-stored", "r-stale", "r-refused"],
        "in time order; the request of two hours ago is outside the window"
    );

    let (one, code) = local.json(&["log", "--since", "10m", "--request", "r-stored"]);
    assert_eq!(code, Some(0));
    let entries = one["trails"][0]["entries"].as_array().unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| (
                e["journal"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("received", "queued"), ("settled", "accepted")]
    );

    let table = local.cli(&[
        "log",
        "--since",
        "10m",
        "--company",
        "default",
        "--type",
        "customer",
        "--id",
        "7",
    ]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(0), "{text}");
    assert!(
        text.contains("stored v4") && text.contains("stale v3"),
        "{text}"
    );
    assert!(
        !text.contains("r-refused"),
        "an unauthenticated call is no company's: {text}"
    );

    let (stale, _) = local.json(&["log", "--since", "10m", "--outcome", "stale"]);
    assert_eq!(stale["trails"].as_array().unwrap().len(), 1);

    for (words, said) in [
        (
            vec!["log", "--company", "nosuch"],
            "no company 'nosuch'; companies: ",
        ),
        (
            vec!["log", "--outcome", "banana"],
            "no outcome 'banana'; outcomes: ",
        ),
        (vec!["log", "--type", "banana"], "no object type 'banana'"),
        (vec!["log", "--since", "soon"], "is not a length of time"),
    ] {
        let refused = local.cli(&words);
        let error = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{words:?}: {error}");
        assert!(error.contains(said), "{words:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn log_follow_prints_each_request_as_it_comes_and_again_as_it_moves_on() {
    let (local, log) = local_stack_writing_the_journal("cli-log-follow").await;
    let mut follow = std::process::Command::new(env!("CARGO_BIN_EXE_tripletex-webhooks"))
        .arg(format!("--local={}", local.summary.display()))
        .args(["--json", "log", "--since", "10m", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    // A new request arrives, and is settled.
    let now = jiff::Timestamp::now();
    let mut appended = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    use std::io::Write as _;
    writeln!(
        appended,
        "\n{{\"journal\":\"received\",\"at\":\"{now}\",\"request\":\"r-new\",\"tenant\":\"default\",\"event\":\"product.update\",\"id\":5,\"bytes\":90,\"status\":200,\"outcome\":\"queued\"}}"
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    writeln!(
        appended,
        "{{\"journal\":\"settled\",\"at\":\"{now}\",\"request\":\"r-new\",\"tenant\":\"default\",\"type\":\"product\",\"id\":5,\"version\":2,\"outcome\":\"accepted\"}}"
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    follow.kill().unwrap();
    let output = follow.wait_with_output().unwrap();
    let printed: Vec<(String, usize)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let trail: Value = serde_json::from_str(line).unwrap();
            (
                trail["request"].as_str().unwrap().to_owned(),
                trail["entries"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        printed,
        [
            ("r-stored".to_owned(), 2),
            ("r-stale".to_owned(), 2),
            ("r-refused".to_owned(), 1),
            ("r-new".to_owned(), 1),
            ("r-new".to_owned(), 2),
        ],
        "the window's requests once each, then the new one as it came and as it was stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn log_deployed_reads_the_functions_log_groups_with_logs_insights() {
    // No functionLog in the summary: the deployed path, a Logs Insights query over the receiver's,
    // the worker's and the sync's log groups (moto's, which applies the window and no filter: the
    // command filters the trails itself, as it does with what a real query leaves in).
    let local = local_stack("cli-log-insights").await;
    let sdk = sdk_config_for(MotoServer::shared().endpoint()).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let now = jiff::Timestamp::now().as_millisecond();
    for (group, lines) in [
        (
            "/aws/lambda/webhook-receiver",
            &journal_lines()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()[..5],
        ),
        (
            "/aws/lambda/webhook-worker",
            &[r#"{"level":"INFO","fields":{"message":"batch done"}}"#.to_owned()][..],
        ),
        (
            "/aws/lambda/object-sync",
            &[r#"{"level":"INFO","fields":{"message":"sync run started"}}"#.to_owned()][..],
        ),
    ] {
        logs.create_log_group()
            .log_group_name(group)
            .send()
            .await
            .unwrap();
        logs.create_log_stream()
            .log_group_name(group)
            .log_stream_name("2026/12/06/[$LATEST]abc")
            .send()
            .await
            .unwrap();
        let mut put = logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name("2026/12/06/[$LATEST]abc");
        for line in lines {
            put = put.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now)
                    .message(line)
                    .build()
                    .unwrap(),
            );
        }
        put.send().await.unwrap();
    }
    let (logged, code) =
        local.json(&["log", "--since", "10m", "--company", "default", "--id", "7"]);
    assert_eq!(code, Some(0), "{logged}");
    assert_eq!(requests(&logged), ["r-stored", "r-stale"], "{logged}");
    assert_eq!(logged["truncated"], false);
}
