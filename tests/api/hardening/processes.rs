//! What only a real process shows: memory under a sign-up flood, stopping on SIGTERM in
//! the middle of a batch, waiting for a database that is not up yet, and log lines.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{TestDatabase, reserve_connections, spawn_app};
use crate::mail::{all_emails, queue_email};
use crate::process::{AppProcess, wait_until_serving};
use crate::smtp_server::{SmtpServer, free_port};

/// Item 4: each password hash holds ~19 MiB; three hundred sign-ups at once once took
/// the process to gigabytes. Hashing is bounded: memory stays flat, and what cannot be
/// queued is told to try again (503), never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_sign_ups_at_once_keep_memory_bounded() {
    let _budget = reserve_connections(5).await;
    let database = TestDatabase::new();
    let port = free_port();
    let mut server = AppProcess::start(
        "serve",
        &[
            ("DATABASE_URL", database.url()),
            ("BIND", format!("127.0.0.1:{port}")),
            ("RUN_WORKER", "false".into()),
            ("PASSWORD_HASHING_CONCURRENCY", "2".into()),
            ("PASSWORD_HASHING_QUEUE", "16".into()),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_until_serving(&format!("{base}/healthz"), &mut server).await;
    let before = server.peak_rss_kib();

    let mut sign_ups = Vec::new();
    for i in 0..300 {
        let base = base.clone();
        sign_ups.push(tokio::spawn(async move {
            let (client, _) = crate::helpers::new_browser(None);
            let form = client
                .get(format!("{base}/signup"))
                .send()
                .await?
                .text()
                .await?;
            let token = crate::helpers::csrf_in(&form).unwrap_or_default();
            let email = format!("flood{i}@example.org");
            let post = || {
                client
                    .post(format!("{base}/signup"))
                    .form(&[
                        ("csrf_token", token.as_str()),
                        ("email", email.as_str()),
                        ("password", "a long enough password"),
                        ("confirm_password", "a long enough password"),
                    ])
                    .send()
            };
            // Under this load the server may close the kept-alive connection (it answers
            // 408 to a connection idle past its request timeout); a client sends again on
            // a new one, as browsers do.
            match post().await {
                Ok(response) => Ok(response.status()),
                Err(_) => post().await.map(|r| r.status()),
            }
        }));
    }
    let (mut created, mut busy) = (0, 0);
    for sign_up in sign_ups {
        match sign_up
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("an answer: {e}\n{}", server.log()))
        {
            StatusCode::OK => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => busy += 1,
            other => panic!("unexpected {other}:\n{}", server.log()),
        }
    }
    let peak = server.peak_rss_kib();
    assert!(created > 0 && busy > 0, "created {created}, busy {busy}");
    assert!(
        peak < before + 100 * 1024,
        "peak {peak} KiB, from {before} KiB before the flood"
    );
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).await.is_some());
}

/// Item 8: SIGTERM in the middle of the first batch ends the worker cleanly: the emails
/// under way (up to `EMAIL_CONCURRENCY`, 4 by default) are finished and recorded, the rest
/// are given back at once.
#[tokio::test]
async fn the_worker_stops_on_sigterm_during_its_first_batch_and_strands_nothing() {
    let _budget = reserve_connections(4).await;
    let smtp = SmtpServer::start_slow(Duration::from_millis(700)).await;
    let app = spawn_app().await;
    for i in 0..12 {
        queue_email(&app, &format!("learner{i}@example.org")).await;
    }
    let mut worker = AppProcess::start(
        "worker",
        &[
            ("DATABASE_URL", app.database_url.clone()),
            ("SMTP_URL", smtp.url()),
            ("WORKER_POLL_MS", "100".into()),
        ],
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while smtp.received().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing sent:\n{}",
            worker.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.signal("TERM");
    let status = worker
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("still running:\n{}", worker.log()));
    assert!(status.success(), "{status}:\n{}", worker.log());
    let log = worker.log();
    assert!(log.contains("left for another run"), "{log}");
    let emails = all_emails(&app).await;
    let sent = emails.iter().filter(|e| e.status == "sent").count();
    assert!((1..12).contains(&sent), "{sent} sent");
    assert_eq!(sent, smtp.received().len(), "every send was recorded");
    for waiting in emails.iter().filter(|e| e.status == "queued") {
        assert_eq!(waiting.attempts, 0, "given back untried");
        assert!(
            waiting.next_attempt_at <= chrono::Utc::now(),
            "due at once, not after a lease"
        );
    }
}

/// A setting out of its range stops the process at start, naming the variable.
#[tokio::test]
async fn an_email_concurrency_out_of_range_is_refused_at_start() {
    for value in ["0", "33", "many"] {
        let mut worker = AppProcess::start(
            "worker",
            &[
                ("DATABASE_URL", "postgres://127.0.0.1:1/none".into()),
                ("EMAIL_CONCURRENCY", value.into()),
            ],
        );
        let status = worker
            .wait_exit(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("still running:\n{}", worker.log()));
        assert_eq!(status.code(), Some(2), "{}", worker.log());
        assert!(
            worker.log().contains("EMAIL_CONCURRENCY is not valid"),
            "{value}: {}",
            worker.log()
        );
    }
}

/// Forwards connections on `listener` to PostgreSQL: a database that comes up late.
async fn forward_to_postgres(listener: TcpListener) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect("127.0.0.1:5432").await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// Item 11: started while the database is unreachable, `serve` and `worker` wait for it,
/// saying so, and carry on once it is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_worker_wait_for_a_database_that_is_not_up_yet() {
    let _budget = reserve_connections(8).await;
    let database = TestDatabase::new();
    let db_port = free_port();
    let mut url = url::Url::parse(&database.url()).unwrap();
    url.set_port(Some(db_port)).unwrap();
    let http_port = free_port();
    let mut server = AppProcess::start(
        "serve",
        &[
            ("DATABASE_URL", url.to_string()),
            ("BIND", format!("127.0.0.1:{http_port}")),
            ("RUN_WORKER", "false".into()),
        ],
    );
    let mut worker = AppProcess::start("worker", &[("DATABASE_URL", url.to_string())]);
    for process in [&server, &worker] {
        process
            .wait_for_log("not reachable yet; retrying", Duration::from_secs(10))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.is_running(), "{}", server.log());
    assert!(worker.is_running(), "{}", worker.log());

    // The database comes up.
    let listener = TcpListener::bind(("127.0.0.1", db_port)).await.unwrap();
    let proxy = tokio::spawn(forward_to_postgres(listener));
    wait_until_serving(
        &format!("http://127.0.0.1:{http_port}/healthz"),
        &mut server,
    )
    .await;
    worker
        .wait_for_log("Worker running", Duration::from_secs(60))
        .await;
    for process in [&mut server, &mut worker] {
        process.signal("TERM");
        assert!(process.wait_exit(Duration::from_secs(10)).await.is_some());
    }
    proxy.abort();
}

/// Item 18: secrets in emailed links never reach the log, not even when a request with
/// one is refused.
#[tokio::test]
async fn link_secrets_never_reach_the_log() {
    let _budget = reserve_connections(4).await;
    let database = TestDatabase::new();
    let port = free_port();
    let mut server = AppProcess::start(
        "serve",
        &[
            ("DATABASE_URL", database.url()),
            ("BIND", format!("127.0.0.1:{port}")),
            ("RUN_WORKER", "false".into()),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_until_serving(&format!("{base}/healthz"), &mut server).await;
    let client = reqwest::Client::new();
    for path in [
        "/password/reset/SECRETRESETTOKEN123",
        "/invitations/SECRETINVITETOKEN456/decline",
        "/verify-email/SECRETVERIFYTOKEN789",
        "/manager/claim/SECRETCLAIMTOKEN000",
    ] {
        // Without a CSRF token: refused, and the refusal is logged.
        let refused = client
            .post(format!("{base}{path}"))
            .form(&[("password", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        client.get(format!("{base}{path}")).send().await.unwrap();
    }
    server
        .wait_for_log(
            "refused a request without a valid CSRF token",
            Duration::from_secs(5),
        )
        .await;
    let log = server.log();
    assert!(!log.contains("SECRET"), "{log}");
    assert!(log.contains("/password/reset/[secret]"), "{log}");
    assert!(log.contains("/manager/claim/[secret]"), "{log}");
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(10)).await;
}
