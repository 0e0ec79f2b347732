//! Runs the real binary as its own process (`serve`, `worker`), for what only a process
//! shows: signals, start-up against a missing database, memory, log lines.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub struct AppProcess {
    child: Child,
    log: PathBuf,
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl AppProcess {
    /// Starts `partner-catalog <command>` with only the given environment (and PATH),
    /// its output going to a log file.
    pub fn start(command: &str, env: &[(&str, String)]) -> Self {
        let log =
            std::env::temp_dir().join(format!("pc-process-{}.log", uuid::Uuid::new_v4().simple()));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let var_dir =
            std::env::temp_dir().join(format!("pc-var-{}", uuid::Uuid::new_v4().simple()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_partner-catalog"));
        cmd.arg(command)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("VAR_DIR", var_dir)
            // The key `Settings::for_database` uses, so that sealed email secrets open.
            .env("SESSION_KEY", "k".repeat(64))
            .env("DATABASE_POOL_SIZE", "3")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (name, value) in env {
            cmd.env(name, value);
        }
        let child = cmd.spawn().expect("start the binary");
        Self { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle`; panics with the log after `within`.
    pub async fn wait_for_log(&self, needle: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.log().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {needle:?} in the log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal by name (`TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// The exit status, once the process ended within `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The most memory the process has held, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
}

/// Waits until `url` answers at all.
pub async fn wait_until_serving(url: &str, process: &mut AppProcess) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if client.get(url).send().await.is_ok() {
            return;
        }
        assert!(
            process.is_running(),
            "the process exited:\n{}",
            process.log()
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "not serving:\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
