//! A real xAPI 1.0.3 LRS for the tests: Ralph (`ralph-malph` from PyPI) on 127.0.0.1
//! with its file-system backend, which keeps every statement in one JSON-lines file of a
//! data directory, so that a stop and a restart keep what it holds.
//!
//! `.ci/run` installs Ralph and sets `REQUIRE_LRS_TESTS=1`, so there a missing Ralph
//! fails; elsewhere the test says it was skipped.
//!
//! Ralph runs as one uvicorn process (not `ralph runserver`, whose reloader leaves its
//! server running when only the reloader is killed), from the Python that sits beside
//! the `ralph` command. Its file-system backend writes with "create" by default, so the
//! statements file takes the first write and every later one fails with a 500 ("already
//! exists"); the server is started with that backend appending instead, which is the
//! only change to Ralph.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const USERNAME: &str = "forwarder";
const PASSWORD: &str = "lrs-test-password";
/// bcrypt (cost 4) of `PASSWORD`, as Ralph's `auth.json` keeps it.
const PASSWORD_HASH: &str = "$2b$04$4Z0n0NdvrpUnTTlcxR/fF.m8vp8Z6n1YxJ0ggRvDmwmrUiU8j/7/O";
const READY_WITHIN: Duration = Duration::from_secs(60);
const STOP_WITHIN: Duration = Duration::from_secs(15);
const INSTALL: &str = "python3 -m venv ~/.cache/partner-catalog/ralph-malph-5.1.0 && \
     ~/.cache/partner-catalog/ralph-malph-5.1.0/bin/pip install 'ralph-malph[cli,lrs]==5.1.0' \
     'requests==2.34.2', then put its bin/ on PATH (bash .ci/run does both)";

/// Run as `python3 -c SERVE <port>`, in the data directory.
const SERVE: &str = r#"
import sys
import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

# Ralph's fs LRS backend "creates" its one statements file, so each write after the
# first fails ("already exists"): append to it instead.
FSLRSBackend.default_operation_type = BaseOperationType.APPEND
uvicorn.run(
    "ralph.api:app",
    host="127.0.0.1",
    port=int(sys.argv[1]),
    log_level="info",
    timeout_graceful_shutdown=10,
)
"#;

/// The `ralph` command on PATH, or in the virtualenv `.ci/run` makes.
fn ralph_command() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join("ralph"))
        .chain([home.join(".cache/partner-catalog/ralph-malph-5.1.0/bin/ralph")])
        .find(|candidate| candidate.is_file())
}

/// Whether Ralph is installed; with `REQUIRE_LRS_TESTS` set, panics when it is not.
pub fn ralph_available() -> bool {
    let ready = ralph_command().is_some();
    if !ready && std::env::var_os("REQUIRE_LRS_TESTS").is_some() {
        panic!("LRS tests required: the `ralph` command is not on PATH; install it: {INSTALL}");
    }
    if !ready {
        eprintln!("skipped: the `ralph` command (Ralph LRS) is not on PATH; {INSTALL}");
    }
    ready
}

/// A port nothing listens on (for now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// A Ralph LRS server, killed (and its directory removed) when dropped.
pub struct Ralph {
    port: u16,
    dir: PathBuf,
    python: PathBuf,
    child: Option<Child>,
    client: reqwest::Client,
}

impl Drop for Ralph {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "Ralph's log ({}):\n{}",
                self.dir.join("ralph.log").display(),
                self.log()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Ralph {
    /// Starts Ralph on a free port with an empty data directory and one user
    /// (`username()`/`password()`, all scopes), and waits until it answers.
    pub async fn start() -> Ralph {
        let ralph = ralph_command().expect("the `ralph` command on PATH (see ralph_available)");
        // A virtualenv's or pyenv's bin/ (also through a symlink to `ralph`) holds the
        // Python that has Ralph; elsewhere, the first python3 on PATH.
        let beside = std::fs::canonicalize(&ralph)
            .unwrap_or(ralph)
            .with_file_name("python3");
        let python = if beside.is_file() {
            beside
        } else {
            PathBuf::from("python3")
        };
        let dir = std::env::temp_dir().join(format!("pc-ralph-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("data")).expect("Ralph's data directory");
        let users = serde_json::json!([{
            "username": USERNAME,
            "hash": PASSWORD_HASH,
            "scopes": ["all"],
            "agent": {
                "objectType": "Agent",
                "account": {"homePage": "http://127.0.0.1", "name": USERNAME},
            },
        }]);
        std::fs::write(dir.join("auth.json"), users.to_string()).expect("Ralph's auth.json");
        let client = reqwest::Client::builder()
            // A restarted server closes what the old one had open: no pooled connections.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let mut lrs = Ralph {
            port: free_port(),
            dir,
            python,
            child: None,
            client,
        };
        lrs.launch().await;
        lrs
    }

    /// The base URL, without `/xAPI`: `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn username(&self) -> &str {
        USERNAME
    }

    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// What the server printed, over all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ralph.log")).unwrap_or_default()
    }

    /// Stops the server (SIGTERM: requests under way finish, so the statements file
    /// never holds half a line; SIGKILL after 15 s), keeping its data directory.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = tokio::time::Instant::now() + STOP_WITHIN;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the server again on the same port with the same data directory (stopping
    /// it first if it runs), and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    /// Every statement Ralph holds, in the order it stored them, following `more` links.
    pub async fn statements(&self) -> Vec<Value> {
        let mut statements = Vec::new();
        let mut next = format!("{}/xAPI/statements?limit=100", self.url());
        for _ in 0..10_000 {
            let response = self
                .client
                .get(&next)
                .basic_auth(USERNAME, Some(PASSWORD))
                .header("X-Experience-API-Version", "1.0.3")
                .send()
                .await
                .unwrap_or_else(|error| panic!("GET {next}: {error}\n{}", self.log()));
            let status = response.status();
            let body = response.text().await.expect("statements body");
            assert_eq!(status.as_u16(), 200, "GET {next}: {body}");
            let mut page: Value = serde_json::from_str(&body).expect("a StatementResult");
            let Some(Value::Array(found)) = page.get_mut("statements").map(Value::take) else {
                panic!("GET {next}: no statements array in {body}");
            };
            let empty = found.is_empty();
            statements.extend(found);
            // Ralph offers one more (empty) page when the count is a multiple of limit.
            match page.get("more").and_then(Value::as_str) {
                Some(more) if !more.is_empty() && !empty => {
                    next = format!("{}{more}", self.url());
                }
                _ => return statements,
            }
        }
        panic!("more than 10 000 pages of statements");
    }

    async fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("ralph.log"))
            .expect("Ralph's log file");
        let err = log.try_clone().expect("Ralph's log file");
        let mut cmd = Command::new(&self.python);
        cmd.arg("-c")
            .arg(SERVE)
            .arg(self.port.to_string())
            // Ralph also reads a `.env` of the working directory.
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("RALPH_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("PYTHONUNBUFFERED", "1")
            .env("RALPH_APP_DIR", &self.dir)
            .env("RALPH_AUTH_FILE", self.dir.join("auth.json"))
            .env("RALPH_HISTORY_FILE", self.dir.join("history.json"))
            .env("RALPH_RUNSERVER_BACKEND", "fs")
            .env(
                "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH",
                self.dir.join("data"),
            );
        let child = cmd
            .spawn()
            .unwrap_or_else(|error| panic!("start {} for Ralph: {error}", self.python.display()));
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// Waits for `/__heartbeat__`, then checks that the credentials are accepted.
    async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        let heartbeat = format!("{}/__heartbeat__", self.url());
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                panic!("Ralph exited ({status}) before answering:\n{}", self.log());
            }
            let answered = self.client.get(&heartbeat).send().await;
            if answered.is_ok_and(|response| response.status().is_success()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Ralph did not answer {heartbeat} within {READY_WITHIN:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let whoami = self
            .client
            .get(format!("{}/whoami", self.url()))
            .basic_auth(USERNAME, Some(PASSWORD))
            .send()
            .await
            .expect("GET /whoami");
        let status = whoami.status();
        let body = whoami.text().await.unwrap_or_default();
        assert_eq!(
            status.as_u16(),
            200,
            "Ralph refused its test credentials: {body}\n{}",
            self.log()
        );
    }
}
