//! Password hashing on a few dedicated threads. Each argon2 hash (OWASP's parameters:
//! 19 MiB, two passes) allocates its memory afresh, and the allocator keeps it in the
//! arena of the thread that ran it: run on a large shared pool, concurrent sign-ins
//! once took the process to gigabytes. Here a fixed number of threads hash (so at most
//! that many arenas hold such memory), a bounded number of requests wait their turn,
//! and beyond that the request is answered "busy" before anything is allocated.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{mpsc, oneshot};

use crate::domain::Password;
use crate::error::{Error, Result};

type Work = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct PasswordHashing {
    /// Threads are started on first use, so that contexts which never hash cost nothing.
    queue: Arc<OnceLock<mpsc::Sender<Work>>>,
    threads: usize,
    max_waiting: usize,
}

impl std::fmt::Debug for PasswordHashing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHashing")
            .field("threads", &self.threads)
            .field("max_waiting", &self.max_waiting)
            .finish()
    }
}

fn busy() -> Error {
    Error::Busy(
        "Too many people are signing in at this moment. Please try again in a few seconds.".into(),
    )
}

impl PasswordHashing {
    pub fn new(threads: usize, max_waiting: usize) -> Self {
        Self {
            queue: Arc::new(OnceLock::new()),
            threads: threads.max(1),
            max_waiting: max_waiting.max(1),
        }
    }

    fn queue(&self) -> &mpsc::Sender<Work> {
        self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel::<Work>(self.max_waiting);
            let receiver = Arc::new(Mutex::new(receiver));
            for n in 0..self.threads {
                let receiver = receiver.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("password-hashing-{n}"))
                    .spawn(move || {
                        loop {
                            // The lock is held only while waiting for the next piece of work.
                            let next = match receiver.lock() {
                                Ok(mut receiver) => receiver.blocking_recv(),
                                Err(_) => None,
                            };
                            match next {
                                Some(work) => work(),
                                // Every sender is gone: the context was dropped.
                                None => return,
                            }
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start a password hashing thread");
                }
            }
            sender
        })
    }

    /// Runs `work` (hashing or verifying) on a hashing thread once one is free.
    async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Work = Box::new(move || {
            let _ = answer.send(work());
        });
        self.queue().try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => busy(),
            mpsc::error::TrySendError::Closed(_) => {
                Error::internal(anyhow::anyhow!("the password hashing threads are gone"))
            }
        })?;
        answered
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("password hashing did not answer")))?
    }

    pub async fn hash(&self, password: Password) -> Result<String> {
        crate::db::release_request_connection();
        self.run(move || super::accounts::hash_password(&password))
            .await
    }

    /// Whether `password` matches `hash`; against no hash, a dummy one keeps the timing.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        crate::db::release_request_connection();
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
        assert!(hashed >= 2, "some were hashed");
        assert_eq!(hashed + busy, 12);
        // Once the queue has room again, hashing works.
        assert!(hashing.hash(password()).await.is_ok());
    }
}
