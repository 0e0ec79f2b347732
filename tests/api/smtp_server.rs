//! A small SMTP server for the tests: speaks real SMTP over TCP (EHLO/HELO, MAIL FROM,
//! RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT) and keeps what it receives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.data).expect("a well-formed message")
    }
}

pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    load: Arc<Load>,
    accept_loop: JoinHandle<()>,
}

/// Connections opened, and messages being taken in at once: now and at most.
#[derive(Default)]
struct Load {
    connections: AtomicUsize,
    taking: AtomicUsize,
    most_taken_at_once: AtomicUsize,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// A port nothing listens on (for now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, Duration::ZERO).await
    }

    /// A server that takes `delay` to accept each message.
    pub async fn start_slow(delay: Duration) -> Self {
        Self::start_with(0, delay).await
    }

    async fn start_with(port: u16, delay: Duration) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the SMTP port");
        let port = listener.local_addr().expect("address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let load = Arc::new(Load::default());
        let (store, counts) = (received.clone(), load.clone());
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counts.connections.fetch_add(1, Ordering::SeqCst);
                let (store, counts) = (store.clone(), counts.clone());
                tokio::spawn(async move {
                    let _ = session(stream, store, counts, delay).await;
                });
            }
        });
        Self {
            port,
            received,
            load,
            accept_loop,
        }
    }

    /// For `SMTP_URL`: plain SMTP, no TLS.
    pub fn url(&self) -> String {
        url_for(self.port)
    }

    /// SMTP connections opened to it so far.
    pub fn connections(&self) -> usize {
        self.load.connections.load(Ordering::SeqCst)
    }

    /// The most messages it was taking in at one time.
    pub fn most_taken_at_once(&self) -> usize {
        self.load.most_taken_at_once.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until at least `count` messages arrived.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} message(s), got {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn url_for(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}?tls=none")
}

fn address(argument: &str) -> String {
    let start = argument.find('<').map(|i| i + 1).unwrap_or(0);
    let end = argument[start..]
        .find('>')
        .map(|i| i + start)
        .unwrap_or(argument.len());
    argument[start..end].to_string()
}

async fn session(
    stream: TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
    load: Arc<Load>,
    delay: Duration,
) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer
        .write_all(b"220 localhost ESMTP test server\r\n")
        .await?;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                b"250-localhost greets you\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"
            }
            "HELO" => b"250 localhost\r\n",
            "MAIL" => {
                mail_from = Some(address(&command));
                rcpt_to.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if mail_from.is_some() => {
                rcpt_to.push(address(&command));
                b"250 2.1.5 OK\r\n"
            }
            "RCPT" => b"503 5.5.1 MAIL first\r\n",
            "DATA" if !rcpt_to.is_empty() => {
                writer
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = Vec::new();
                let mut raw = Vec::new();
                loop {
                    raw.clear();
                    if reader.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" || raw == b".\n" {
                        break;
                    }
                    let unstuffed = if raw.starts_with(b"..") {
                        &raw[1..]
                    } else {
                        &raw[..]
                    };
                    data.extend_from_slice(unstuffed);
                }
                let taking = load.taking.fetch_add(1, Ordering::SeqCst) + 1;
                load.most_taken_at_once.fetch_max(taking, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                load.taking.fetch_sub(1, Ordering::SeqCst);
                store.lock().expect("lock").push(Received {
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
                });
                b"250 2.0.0 OK queued\r\n"
            }
            "DATA" => b"503 5.5.1 RCPT first\r\n",
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                writer.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not recognised\r\n",
        };
        writer.write_all(reply).await?;
    }
}

/// A server that accepts connections and never says a word: no greeting, no replies.
pub struct SilentServer {
    pub port: u16,
    accept_loop: JoinHandle<()>,
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl SilentServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let accept_loop = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Self { port, accept_loop }
    }

    pub fn url(&self) -> String {
        url_for(self.port)
    }
}
