//! Password hashing under a concurrency bound. Each argon2 hash (OWASP's parameters:
//! 19 MiB, two passes) holds its memory while it runs, so unbounded concurrent sign-ins
//! would exhaust the machine: a few run at once, a bounded number wait their turn, and
//! beyond that the request is answered "busy" before any memory is taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::db::Db;
use crate::domain::Password;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct PasswordHashing {
    running: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// Counts a request among the waiting ones while it exists.
struct WaitingTicket<'a>(&'a AtomicUsize);

impl Drop for WaitingTicket<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordHashing {
    pub fn new(concurrency: usize, max_waiting: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    /// Runs `work` (hashing or verifying) on the blocking pool once a turn is free.
    async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let ticket = {
            let before = self.waiting.fetch_add(1, Ordering::SeqCst);
            let ticket = WaitingTicket(&self.waiting);
            if before >= self.max_waiting {
                return Err(Error::Busy(
                    "Too many people are signing in at this moment. Please try again in a few seconds."
                        .into(),
                ));
            }
            ticket
        };
        let _turn = self
            .running
            .acquire()
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("hashing closed: {e}")))?;
        drop(ticket);
        Db::cpu(work).await
    }

    pub async fn hash(&self, password: Password) -> Result<String> {
        self.run(move || super::accounts::hash_password(&password))
            .await
    }

    /// Whether `password` matches `hash`; against no hash, a dummy one keeps the timing.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        self.run(move || {
            let matches = super::accounts::verify_password(
                &password,
                hash.as_deref().unwrap_or(super::accounts::DUMMY_HASH),
            );
            Ok(matches && hash.is_some())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_the_answer_is_busy() {
        let hashing = PasswordHashing::new(1, 2);
        let password = || Password::parse("a long enough password").expect("password");
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let hashing = hashing.clone();
            let password = password();
            tasks.push(tokio::spawn(async move { hashing.hash(password).await }));
        }
        let mut hashed = 0;
        let mut busy = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => hashed += 1,
                Err(Error::Busy(_)) => busy += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(busy > 0, "some were refused");
        assert!(hashed >= 1, "some were hashed");
        assert_eq!(hashed + busy, 12);
        assert_eq!(
            hashing.waiting.load(Ordering::SeqCst),
            0,
            "tickets returned"
        );
    }
}
