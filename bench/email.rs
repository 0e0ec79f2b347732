//! Email throughput: 10,000 invitation emails, queued by a bulk invitation as the
//! application queues them (link secrets sealed), sent by the worker to a local SMTP
//! sink — against a bare lettre loop sending the same messages to the same sink, run
//! before and after the worker.
//!
//! Run with `cargo bench --bench email` (PostgreSQL on 127.0.0.1:5432, or set
//! `TEST_DATABASE_ADMIN_URL`). It creates and drops its own database. The sink
//! acknowledges what it reads at once; `BENCH_DELAYED_ACK=1` leaves ACKs to the kernel's
//! delayed-ACK timer, as a mail server's are. `BENCH_KEEP_DB=1` keeps the database;
//! `BENCH_EMAIL_CONCURRENCY=n` sets the worker's `EMAIL_CONCURRENCY`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use partner_catalog::configuration::Settings;
use partner_catalog::db::Db;
use partner_catalog::jobs::bulk::BulkJobs;
use partner_catalog::jobs::outbox::{DeliveryConfig, build_message};
use partner_catalog::jobs::{Runner, Stop};
use partner_catalog::mail::Sealer;
use partner_catalog::models::outbox::OutboundEmail;
use partner_catalog::models::schema::outbound_emails;
use partner_catalog::policies::Actor;
use partner_catalog::services::bulk::{self, Source, Upload};
use socket2::SockRef;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const EMAILS: usize = 10_000;

const SEED: &str = r#"
INSERT INTO users (id, email, is_staff, email_verified_at) VALUES (1, 'bench-staff@example.org', true, now());
INSERT INTO organisations (id, short_name, name) VALUES (1, 'BENCHx', 'Bench');
INSERT INTO partners (id, organisation_id, code, name, email_sender_name, support_email, logo_url)
    VALUES (1, 1, 'bench', 'Bench Partner', 'Bench Academy', 'help@bench.example', 'https://bench.example/logo.png');
INSERT INTO catalogs (id, partner_id, slug, name, description, available_start, available_end)
    VALUES (1, 1, 'bench-mail', 'Mail catalog', 'Courses for the whole company.', now() - interval '1 day', now() + interval '300 days');
"#;

/// An SMTP server that accepts every message at once and only counts it, on a thread and
/// runtime of its own so that both senders meet the same server. `quick_ack` acknowledges
/// every read at once; without it the kernel delays ACKs as a mail server's would.
struct Sink {
    port: u16,
    received: watch::Receiver<usize>,
    /// SMTP connections opened to it.
    connections: Arc<AtomicUsize>,
}

impl Sink {
    fn start(quick_ack: bool) -> Self {
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (count_tx, received) = watch::channel(0usize);
        let connections = Arc::new(AtomicUsize::new(0));
        let opened = connections.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("sink runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                port_tx
                    .send(listener.local_addr().expect("address").port())
                    .expect("port");
                let count = Arc::new(count_tx);
                while let Ok((stream, _)) = listener.accept().await {
                    opened.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(session(stream, count.clone(), quick_ack));
                }
            });
        });
        Self {
            port: port_rx.recv().expect("sink started"),
            received,
            connections,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    fn count(&self) -> usize {
        *self.received.borrow()
    }

    /// Completes once `total` messages were accepted.
    fn reached(&self, total: usize) -> impl Future<Output = ()> + Send + 'static {
        let mut received = self.received.clone();
        async move {
            let _ = received.wait_for(|n| *n >= total).await;
        }
    }
}

/// The client's side of a session, acknowledged as soon as it is read when `quick_ack`:
/// lettre writes a message's closing `.` line apart from its body without TCP_NODELAY,
/// so Nagle's algorithm holds that line until the body's ACK, which a receiver's delayed
/// ACK postpones by 40 ms.
struct Acking {
    inner: OwnedReadHalf,
    quick_ack: bool,
}

impl AsyncRead for Acking {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.quick_ack && matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let _ = SockRef::from(this.inner.as_ref()).set_tcp_quickack(true);
        }
        polled
    }
}

async fn session(
    stream: TcpStream,
    count: Arc<watch::Sender<usize>>,
    quick_ack: bool,
) -> std::io::Result<()> {
    let (inner, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, Acking { inner, quick_ack });
    writer.write_all(b"220 sink ESMTP\r\n").await?;
    let (mut has_sender, mut recipients) = (false, 0usize);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(|v| v.to_ascii_uppercase())
            .unwrap_or_default();
        let reply: &[u8] = match &verb[..] {
            b"EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            b"HELO" => b"250 sink\r\n",
            b"MAIL" => {
                (has_sender, recipients) = (true, 0);
                b"250 2.1.0 OK\r\n"
            }
            b"RCPT" if has_sender => {
                recipients += 1;
                b"250 2.1.5 OK\r\n"
            }
            b"RCPT" => b"503 5.5.1 MAIL first\r\n",
            b"DATA" if recipients > 0 => {
                writer.write_all(b"354 go ahead\r\n").await?;
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                }
                (has_sender, recipients) = (false, 0);
                count.send_modify(|n| *n += 1);
                b"250 2.0.0 OK queued\r\n"
            }
            b"DATA" => b"503 5.5.1 RCPT first\r\n",
            b"RSET" => {
                (has_sender, recipients) = (false, 0);
                b"250 2.0.0 OK\r\n"
            }
            b"NOOP" => b"250 2.0.0 OK\r\n",
            b"QUIT" => {
                writer.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not recognised\r\n",
        };
        writer.write_all(reply).await?;
    }
}

fn main() {
    common::block_on(run());
}

/// One sender's run against the sink.
struct Phase {
    started: Instant,
    received_before: usize,
    connections_before: usize,
    cpu_before: Cpu,
}

struct Measured {
    time: Duration,
    received: usize,
    connections: usize,
    cpu: String,
}

impl Phase {
    fn start(sink: &Sink) -> Self {
        Self {
            started: Instant::now(),
            received_before: sink.count(),
            connections_before: sink.connections(),
            cpu_before: Cpu::now(),
        }
    }

    fn end(self, sink: &Sink) -> Measured {
        Measured {
            time: self.started.elapsed(),
            received: sink.count() - self.received_before,
            connections: sink.connections() - self.connections_before,
            cpu: self.cpu_before.since(),
        }
    }
}

impl Measured {
    fn rate(&self) -> f64 {
        EMAILS as f64 / self.time.as_secs_f64()
    }
}

/// CPU time of this process and of the whole machine (the database, and whatever else
/// runs there), in clock ticks, to tell a busy machine from a slow sender.
struct Cpu {
    at: Instant,
    process: u64,
    machine_busy: u64,
}

impl Cpu {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command's closing parenthesis: utime and stime are 12th and 13th.
        let fields: Vec<u64> = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .map(|f| f.parse().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default();
        let process = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
        let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = machine
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // Everything but idle and iowait.
        let machine_busy = ticks.iter().sum::<u64>()
            - ticks.get(3).copied().unwrap_or(0)
            - ticks.get(4).copied().unwrap_or(0);
        Self {
            at: Instant::now(),
            process,
            machine_busy,
        }
    }

    /// Cores the machine kept busy since `self`, on average.
    fn machine_cores(&self) -> f64 {
        let now = Self::now();
        let ticks = (now.at - self.at).as_secs_f64() * 100.0;
        (now.machine_busy - self.machine_busy) as f64 / ticks
    }

    /// Cores kept busy since `self`, on average: by this process, and by the machine.
    fn since(&self) -> String {
        let now = Self::now();
        let ticks = (now.at - self.at).as_secs_f64() * 100.0;
        format!(
            "{:.2} / {:.2}",
            (now.process - self.process) as f64 / ticks,
            (now.machine_busy - self.machine_busy) as f64 / ticks
        )
    }
}

/// Lets the database write out what the previous step left (a checkpoint), then waits
/// up to 30 s for the machine to be idle, so that each sender starts from the same state.
async fn settle(url: &str) {
    PgConnection::establish(url)
        .unwrap()
        .batch_execute("CHECKPOINT")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = Cpu::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = before.machine_cores();
        if busy < 0.25 {
            return;
        }
        if Instant::now() > deadline {
            println!("the machine stayed busy ({busy:.2} cores)");
            return;
        }
    }
}

/// The server's transaction counter; taking it is a write transaction itself.
fn current_xid(url: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Xid {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        xid: i64,
    }
    diesel::sql_query("SELECT pg_current_xact_id()::text::bigint AS xid")
        .get_result::<Xid>(&mut PgConnection::establish(url).unwrap())
        .unwrap()
        .xid
}

async fn run() {
    let (name, url) = common::fresh_database("email");
    let keep = std::env::var("BENCH_KEEP_DB").is_ok_and(|v| !v.is_empty() && v != "0");
    PgConnection::establish(&url)
        .unwrap()
        .batch_execute(SEED)
        .unwrap();
    // BENCH_DELAYED_ACK=1: a sink that delays its ACKs like a mail server on Linux.
    let delayed_ack = std::env::var("BENCH_DELAYED_ACK").is_ok_and(|v| !v.is_empty() && v != "0");
    let sink = Sink::start(!delayed_ack);
    println!(
        "sink on port {}: {}",
        sink.port,
        if delayed_ack {
            "delayed ACKs"
        } else {
            "acknowledges at once"
        }
    );

    // The production defaults, with mail going to the sink.
    let mut settings = Settings::for_database(&url, std::env::temp_dir().join(&name));
    settings.database_pool_size = 10;
    settings.worker_poll_ms = 1000;
    settings.email_send_timeout_seconds = 60;
    settings.bulk_approval_threshold = EMAILS;
    settings.invitation_emails_per_partner_per_hour = 0;
    settings.smtp_url = Some(format!("smtp://127.0.0.1:{}?tls=none", sink.port).into());
    // BENCH_EMAIL_CONCURRENCY=n: the worker's EMAIL_CONCURRENCY (production default 4).
    if let Some(n) = std::env::var("BENCH_EMAIL_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        settings.email_concurrency = n;
    }
    let db = Db::connect(&settings).unwrap();

    // Queued as a bulk invitation queues them: invitations, sealed link secrets, emails.
    let started = Instant::now();
    let staff = db
        .run(|conn| Ok(partner_catalog::models::users::find(conn, 1)?))
        .await
        .unwrap();
    let actor = Actor::for_user(&staff, None);
    let mut csv = String::from("email,full_name\n");
    for i in 0..EMAILS {
        csv.push_str(&format!("person{i}@corp{}.example,Person {i}\n", i % 50));
    }
    let upload_actor = actor.clone();
    let job = db
        .transaction(move |conn| {
            bulk::upload(
                conn,
                &upload_actor,
                1,
                &Upload {
                    kind: "invite",
                    source: Source::Csv(csv.as_bytes()),
                    source_name: "bench.csv",
                    course_ids: &[],
                },
            )
        })
        .await
        .unwrap();
    let ctx = partner_catalog::services::ServiceContext::from_settings(&settings);
    let job_id = job.id;
    db.transaction(move |conn| bulk::submit(conn, &ctx, &actor, job_id))
        .await
        .unwrap();
    let bulk_jobs = BulkJobs::from_settings(&settings, db.clone());
    while bulk_jobs.turn(&Stop::never()).await.unwrap().is_some() {}
    PgConnection::establish(&url)
        .unwrap()
        .batch_execute("VACUUM ANALYZE")
        .unwrap();
    // The rows as queued, for the bare loop (sending erases their sealed secrets).
    let queued: Vec<OutboundEmail> = db
        .run(|conn| {
            Ok(outbound_emails::table
                .select(OutboundEmail::as_select())
                .order(outbound_emails::id)
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(queued.len(), EMAILS);
    assert!(queued.iter().all(|e| e.sealed_secret.is_some()));
    println!(
        "{EMAILS} invitation emails queued in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // The bare loop sends the same messages, built the same way, one after the other
    // through lettre's pooled transport as the application configures it (30 s command
    // timeout, default pool) over a plain connection: once before the worker and once
    // after, so that a machine whose load changes meanwhile shows.
    let sealer = Sealer::from_settings(&settings);
    let from = DeliveryConfig::from_settings(&settings).unwrap().email_from;
    let messages: Vec<(OutboundEmail, Option<String>)> = queued
        .into_iter()
        .map(|e| {
            let secret = e.sealed_secret.as_deref().and_then(|s| sealer.open(s));
            (e, secret)
        })
        .collect();
    // On the benchmark's multi-threaded runtime: it ran faster there than on a runtime of
    // one thread (lettre's pool hands connections back from a task of its own).
    let bare_loop = async || {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(sink.port)
            .timeout(Some(Duration::from_secs(30)))
            .pool_config(PoolConfig::new())
            .build();
        let phase = Phase::start(&sink);
        for (email, secret) in &messages {
            let message = build_message(email, secret.as_deref(), &from).unwrap();
            transport.send(message).await.unwrap();
        }
        phase.end(&sink)
    };
    settle(&url).await;
    let bare_before = bare_loop().await;

    // The worker: the real runner with every job kind, until the sink has them all, on
    // the runtime the `worker` command runs it on (actix's, one thread).
    settle(&url).await;
    let xid_before = current_xid(&url);
    let phase = Phase::start(&sink);
    let (worker_settings, reached) = (
        settings.clone(),
        sink.reached(phase.received_before + EMAILS),
    );
    let destination = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let db = Db::connect(&worker_settings).unwrap();
            let runner = Runner::from_settings(&worker_settings, db).unwrap();
            let destination = runner.mail_destination().to_string();
            runner.run(reached).await;
            destination
        })
    })
    .join()
    .unwrap();
    let worker = phase.end(&sink);
    println!(
        "worker sent to {destination}, {} at once",
        settings.email_concurrency
    );
    // Write transactions of the whole server: a rough count of commits, each one a flush.
    let commits = current_xid(&url) - xid_before - 1;
    let (sent, once): (i64, i64) = db
        .run(|conn| {
            Ok(outbound_emails::table
                .filter(outbound_emails::status.eq("sent"))
                .filter(outbound_emails::sealed_secret.is_null())
                .select((
                    diesel::dsl::count_star(),
                    diesel::dsl::sql::<diesel::sql_types::BigInt>(
                        "COUNT(*) FILTER (WHERE attempts = 1)",
                    ),
                ))
                .first(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(
        (sent, once),
        (EMAILS as i64, EMAILS as i64),
        "every email recorded as sent, at its first attempt"
    );

    settle(&url).await;
    let bare_after = bare_loop().await;
    for phase in [&bare_before, &worker, &bare_after] {
        assert_eq!(phase.received, EMAILS, "the sink got each email once");
    }

    println!();
    println!(
        "| sender | emails | received by the sink | SMTP connections | time | emails/s | cores busy (this process / machine) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, phase) in [
        ("bare lettre loop, before", &bare_before),
        ("worker (outbox, runner)", &worker),
        ("bare lettre loop, after", &bare_after),
    ] {
        println!(
            "| {label} | {EMAILS} | {} | {} | {:.2} s | {:.0} | {} |",
            phase.received,
            phase.connections,
            phase.time.as_secs_f64(),
            phase.rate(),
            phase.cpu
        );
    }
    let bare = (bare_before.rate() + bare_after.rate()) / 2.0;
    println!(
        "| **worker / bare loop** (mean of both) | | | | | **{:.0} %** | |",
        100.0 * worker.rate() / bare
    );
    println!();
    println!(
        "worker: {commits} write transactions ({:.2} per email)",
        commits as f64 / EMAILS as f64
    );

    drop(db);
    if keep {
        println!("\nkept the database {name} (BENCH_KEEP_DB)");
    } else {
        common::drop_database(&name);
    }
}
