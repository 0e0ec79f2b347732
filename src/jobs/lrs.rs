//! Forwards tracking events as xAPI statements to a learning record store, oldest first,
//! in batches. A statement counts as forwarded once the store holds it; the store keys
//! statements by id (the event's id), so offering one again never counts it twice, and a
//! store that already holds one (409) does not stall the stream: the batch is then offered
//! statement by statement. While the store is unreachable, nothing is marked and the
//! runner backs off.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::{BoxFuture, Job, Progress, Stop};
use crate::configuration::Settings;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::events::xapi::{self, StatementOptions, VERSION};
use crate::models::xapi::{self as rows, StatementRow};

/// A batch stays with its runner this long; after that (a runner that died) another may
/// take it.
const LEASE_SECONDS: i64 = 120;
/// A statement the store refused as invalid is offered again after this long.
const REFUSED_RETRY_SECONDS: i64 = 60 * 60;
/// Longest one request to the store may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest error text kept.
const MAX_ERROR_LEN: usize = 500;

pub struct LrsForwarding {
    db: Db,
    client: reqwest::Client,
    statements_url: String,
    username: Option<String>,
    password: Option<SecretString>,
    batch_size: i64,
    options: StatementOptions,
    interval: Duration,
}

/// How the store answered one request.
enum Answer {
    /// Holds them now.
    Stored,
    /// Already holds a statement with this id.
    AlreadyHeld,
    /// Refused the content (4xx other than 409): offered again much later.
    Refused(String),
    /// Unreachable, failing or refusing us (5xx, 401, 403, timeouts): try again later.
    Unavailable(String),
}

fn shorten(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl LrsForwarding {
    /// The job, when `XAPI_LRS_URL` is set.
    pub fn from_settings(settings: &Settings, db: Db) -> anyhow::Result<Option<Self>> {
        let Some(url) = &settings.xapi_lrs_url else {
            return Ok(None);
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "X-Experience-API-Version",
            HeaderValue::from_static(VERSION),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Some(Self {
            db,
            client,
            statements_url: format!("{url}/xAPI/statements"),
            username: settings.xapi_lrs_username.clone(),
            password: settings.xapi_lrs_password.clone(),
            batch_size: settings.xapi_lrs_batch_size.max(1) as i64,
            options: StatementOptions {
                base_url: settings.base_url.clone(),
                include_email: settings.xapi_include_email,
            },
            interval: Duration::from_millis(settings.worker_poll_ms.max(10)),
        }))
    }

    /// Where statements go, for the start-up message: without credentials written into
    /// the address.
    pub fn describe(&self) -> String {
        crate::services::xapi::shown_destination(&self.statements_url)
    }

    fn request(&self, builder: reqwest::RequestBuilder, body: Vec<u8>) -> reqwest::RequestBuilder {
        let builder = builder.header(CONTENT_TYPE, "application/json").body(body);
        match &self.username {
            Some(user) => builder.basic_auth(
                user,
                self.password
                    .as_ref()
                    .map(|p| p.expose_secret().to_string()),
            ),
            None => builder,
        }
    }

    async fn answer(&self, sent: reqwest::Result<reqwest::Response>) -> Answer {
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Answer::Unavailable(format!(
                    "the store did not answer within {} s",
                    REQUEST_TIMEOUT.as_secs()
                ));
            }
            Err(e) if e.is_connect() => {
                return Answer::Unavailable(
                    "the store could not be reached (connection refused or no route)".into(),
                );
            }
            Err(e) => {
                return Answer::Unavailable(format!(
                    "the store did not answer: {}",
                    e.without_url()
                ));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Stored;
        }
        let body = response.text().await.unwrap_or_default();
        let detail = shorten(format!("{status}: {}", body.trim()));
        match status {
            StatusCode::CONFLICT => Answer::AlreadyHeld,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Answer::Unavailable(format!(
                "the store refused the credentials (XAPI_LRS_USERNAME / XAPI_LRS_PASSWORD): {detail}"
            )),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Answer::Unavailable(detail)
            }
            s if s.is_client_error() => Answer::Refused(detail),
            _ => Answer::Unavailable(detail),
        }
    }

    async fn post_batch(&self, statements: &[serde_json::Value]) -> Answer {
        let body = serde_json::to_vec(statements).unwrap_or_default();
        let sent = self
            .request(self.client.post(&self.statements_url), body)
            .send()
            .await;
        self.answer(sent).await
    }

    async fn put_one(&self, id: &uuid::Uuid, statement: &serde_json::Value) -> Answer {
        let body = serde_json::to_vec(statement).unwrap_or_default();
        let sent = self
            .request(
                self.client
                    .put(&self.statements_url)
                    .query(&[("statementId", id.to_string())]),
                body,
            )
            .send()
            .await;
        self.answer(sent).await
    }

    async fn mark(&self, ids: Vec<uuid::Uuid>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.db
            .run(move |conn| Ok(rows::mark_forwarded(conn, &ids)?))
            .await?;
        Ok(())
    }

    async fn release(&self, ids: Vec<uuid::Uuid>, error: String, retry_in: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.db
            .run(move |conn| Ok(rows::release(conn, &ids, &error, retry_in)?))
            .await?;
        Ok(())
    }

    /// One batch: claimed, offered whole, and statement by statement when the store turns
    /// the whole down for some of them.
    async fn forward(&self, stop: &Stop) -> Result<Progress> {
        let (limit, lease) = (self.batch_size, LEASE_SECONDS);
        let claimed: Vec<StatementRow> = self
            .db
            .run(move |conn| Ok(rows::claim_for_forwarding(conn, limit, lease)?))
            .await?;
        if claimed.is_empty() {
            return Ok(Progress::default());
        }
        let handled = claimed.len();
        let more = handled as i64 == self.batch_size;
        let mut batch = Vec::with_capacity(handled);
        for row in &claimed {
            if let Some(statement) = xapi::statement(row, &self.options) {
                batch.push((row.id, statement));
            }
        }
        let ids: Vec<uuid::Uuid> = batch.iter().map(|(id, _)| *id).collect();
        let statements: Vec<serde_json::Value> = batch.iter().map(|(_, s)| s.clone()).collect();
        match self.post_batch(&statements).await {
            Answer::Stored => {
                self.mark(ids).await?;
                return Ok(Progress { handled, more });
            }
            Answer::Unavailable(error) => {
                self.release(ids, error.clone(), 0).await?;
                return Err(Error::internal(anyhow::anyhow!(
                    "xAPI statements not forwarded: {error}"
                )));
            }
            // Some of them are held already or refused: find out which, one by one.
            Answer::AlreadyHeld | Answer::Refused(_) => {}
        }
        let mut forwarded = Vec::new();
        let mut pending = batch.into_iter();
        for (id, statement) in pending.by_ref() {
            match self.put_one(&id, &statement).await {
                Answer::Stored => forwarded.push(id),
                Answer::AlreadyHeld => {
                    tracing::info!(statement = %id, "the learning record store already held this statement");
                    forwarded.push(id);
                }
                Answer::Refused(error) => {
                    tracing::warn!(statement = %id, error = %error, "the learning record store refused a statement");
                    self.release(vec![id], error, REFUSED_RETRY_SECONDS).await?;
                }
                Answer::Unavailable(error) => {
                    let mut rest = vec![id];
                    rest.extend(pending.map(|(id, _)| id));
                    self.mark(forwarded).await?;
                    self.release(rest, error.clone(), 0).await?;
                    return Err(Error::internal(anyhow::anyhow!(
                        "xAPI statements not forwarded: {error}"
                    )));
                }
            }
            if stop.requested() {
                break;
            }
        }
        // Left when stopping: for the next runner, at once.
        let rest: Vec<uuid::Uuid> = pending.map(|(id, _)| id).collect();
        self.mark(forwarded).await?;
        if !rest.is_empty() {
            self.db
                .run(move |conn| Ok(rows::unlease(conn, &rest)?))
                .await?;
        }
        Ok(Progress { handled, more })
    }
}

impl Job for LrsForwarding {
    fn name(&self) -> &'static str {
        "xapi-forwarding"
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn run_batch<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Progress>> {
        Box::pin(self.forward(stop))
    }
}
