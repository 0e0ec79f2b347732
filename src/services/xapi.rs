//! The statement stream (rule 12): staff read every partner's, a partner's managers
//! their own partner's, in order, a page at a time.

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::events::xapi::{self, StatementOptions};
use crate::models::xapi as rows;
use crate::policies::Actor;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

/// The query as received; everything optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatementsQuery {
    pub since: Option<String>,
    /// The id of the last statement already received (from a `more` link).
    pub after: Option<String>,
    pub limit: Option<String>,
}

/// One page in the shape of an xAPI StatementResult: `more` is the address of the next
/// page, or empty when there is none.
#[derive(Debug, Clone)]
pub struct StatementPage {
    pub statements: Vec<Value>,
    pub more: String,
}

struct Parsed {
    since: DateTime<Utc>,
    after: Option<uuid::Uuid>,
    limit: i64,
}

fn parse(query: &StatementsQuery) -> Result<Parsed> {
    let mut errors = crate::error::FieldErrors::new();
    let since = match query
        .since
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => DateTime::<Utc>::UNIX_EPOCH,
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => at.with_timezone(&Utc),
            Err(_) => {
                errors.add(
                    "since",
                    format!("{text:?} is not an RFC 3339 time such as 2026-11-01T00:00:00Z"),
                );
                DateTime::<Utc>::UNIX_EPOCH
            }
        },
    };
    let after = match query
        .after
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => match uuid::Uuid::parse_str(text) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add("after", "must be a statement id taken from a `more` link");
                None
            }
        },
    };
    let limit = match query
        .limit
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.add(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                );
                DEFAULT_LIMIT
            }
        },
    };
    if after.is_some() && query.since.is_none() {
        errors.add("since", "a `more` link gives `since` together with `after`");
    }
    errors.into_result()?;
    Ok(Parsed {
        since,
        after,
        limit,
    })
}

/// Whose statements the actor may read: `None` for all, or one partner's.
fn scope(actor: &Actor) -> Result<Option<i64>> {
    if actor.is_staff {
        return Ok(None);
    }
    match actor.managed_partner_id {
        Some(partner) => Ok(Some(partner)),
        None => Err(Error::Forbidden(
            "xAPI statements are for staff and partner managers".into(),
        )),
    }
}

/// A page of statements; `path` is the address the `more` link points at.
pub fn statements(
    conn: &mut PgConnection,
    actor: &Actor,
    query: &StatementsQuery,
    options: &StatementOptions,
    path: &str,
) -> Result<StatementPage> {
    let partner = scope(actor)?;
    let parsed = parse(query)?;
    let (found, has_more) = super::api::split_page(
        rows::page(conn, partner, parsed.since, parsed.after, parsed.limit + 1)?,
        parsed.limit,
    );
    let more = match (has_more, found.last()) {
        (true, Some(last)) => {
            let since = last
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("since", &since)
                .append_pair("after", &last.id.to_string())
                .append_pair("limit", &parsed.limit.to_string())
                .finish();
            format!("{path}?{query}")
        }
        _ => String::new(),
    };
    let statements = found
        .iter()
        .filter_map(|row| xapi::statement(row, options))
        .collect();
    Ok(StatementPage { statements, more })
}

/// What staff see of the forwarding to the learning record store.
pub fn forwarding_state(conn: &mut PgConnection, actor: &Actor) -> Result<rows::ForwardingState> {
    if !actor.is_staff {
        return Err(Error::Forbidden("the forwarding state is for staff".into()));
    }
    Ok(rows::forwarding_state(conn)?)
}

/// The store's address as shown to people: without any credentials written into it.
pub fn shown_destination(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_destination_carries_no_credentials() {
        assert_eq!(
            shown_destination("https://user:secret@lrs.example.org/xAPI/statements"),
            "https://lrs.example.org/xAPI/statements"
        );
        assert_eq!(shown_destination("not a url"), "");
    }
}
