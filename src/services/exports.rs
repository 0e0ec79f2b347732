//! CSV exports of a catalog's invitations, learners and licences, streamed in
//! batches so that a large catalog is never held in memory.

use actix_web::web::Bytes;
use diesel::PgConnection;
use tokio::sync::mpsc;

use crate::db::Db;
use crate::error::Result;
use crate::models::catalogs::Catalog;
use crate::models::{enrollments, invitations, learners};
use crate::policies::Actor;
use crate::policies::access::require_partner_access;

const BATCH: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Invitations,
    Learners,
    Licences,
}

impl ExportKind {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "invitations" => Some(Self::Invitations),
            "learners" => Some(Self::Learners),
            "licences" => Some(Self::Licences),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Invitations => "invitations",
            Self::Learners => "learners",
            Self::Licences => "licences",
        }
    }

    fn header(self) -> &'static [&'static str] {
        match self {
            Self::Invitations => &[
                "email",
                "status",
                "channel",
                "invited_at",
                "expires_at",
                "accepted_at",
                "declined_at",
                "removed_at",
                "removal_reason",
                "send_count",
            ],
            Self::Learners => &["email", "full_name", "active", "joined_at", "removed_at"],
            Self::Licences => &[
                "email",
                "course_key",
                "course_title",
                "owner_catalog",
                "active",
                "granted_at",
                "updated_at",
            ],
        }
    }
}

/// Spreadsheets run cells starting with these as formulas; a leading quote stops that.
pub fn spreadsheet_safe(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

fn time(value: Option<chrono::DateTime<chrono::Utc>>) -> String {
    value.map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// A small CSV file at once (a chart's numbers), cells made safe for spreadsheets.
pub fn csv_bytes(header: &[&str], rows: Vec<Vec<String>>) -> crate::error::Result<Bytes> {
    write_rows(rows, Some(header)).map_err(crate::error::Error::internal)
}

fn write_rows(rows: Vec<Vec<String>>, header: Option<&[&str]>) -> std::io::Result<Bytes> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if let Some(header) = header {
        writer.write_record(header)?;
    }
    for row in rows {
        writer.write_record(row.iter().map(|c| spreadsheet_safe(c)))?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// One batch after `after`: its rows and the last id seen.
fn batch(
    conn: &mut PgConnection,
    kind: ExportKind,
    catalog_id: i64,
    after: i64,
) -> Result<(Vec<Vec<String>>, Option<i64>)> {
    let now = chrono::Utc::now();
    Ok(match kind {
        ExportKind::Invitations => {
            let rows = invitations::batch_after(conn, catalog_id, after, BATCH)?;
            let last = rows.last().map(|r| r.id);
            let cells = rows
                .into_iter()
                .map(|i| {
                    vec![
                        i.email.clone(),
                        i.status_at(now).as_str().to_string(),
                        i.channel.clone(),
                        time(Some(i.invited_at)),
                        time(Some(i.expires_at)),
                        time(i.accepted_at),
                        time(i.declined_at),
                        time(i.removed_at),
                        i.removal_reason.clone().unwrap_or_default(),
                        i.send_count.to_string(),
                    ]
                })
                .collect();
            (cells, last)
        }
        ExportKind::Learners => {
            let rows = learners::batch_after(conn, catalog_id, after, BATCH)?;
            let last = rows.last().map(|r| r.learner.id);
            let cells = rows
                .into_iter()
                .map(|r| {
                    vec![
                        r.email,
                        r.full_name,
                        if r.learner.is_active { "yes" } else { "no" }.to_string(),
                        time(Some(r.learner.joined_at)),
                        time(r.learner.removed_at),
                    ]
                })
                .collect();
            (cells, last)
        }
        ExportKind::Licences => {
            let rows = enrollments::licence_batch_after(conn, catalog_id, after, BATCH)?;
            let last = rows.last().map(|r| r.licence.id);
            let cells = rows
                .into_iter()
                .map(|r| {
                    vec![
                        r.email,
                        r.course_key,
                        r.course_title,
                        r.owner_catalog,
                        if r.licence.is_active { "yes" } else { "no" }.to_string(),
                        time(Some(r.licence.created_at)),
                        time(Some(r.licence.updated_at)),
                    ]
                })
                .collect();
            (cells, last)
        }
    })
}

/// Starts streaming the export; the receiver yields CSV chunks. Access is checked
/// before anything is sent.
pub fn stream(
    db: &Db,
    actor: &Actor,
    catalog: &Catalog,
    kind: ExportKind,
) -> Result<mpsc::Receiver<std::io::Result<Bytes>>> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    let catalog_id = catalog.id;
    Ok(stream_batches(db, kind.header(), move |conn, after| {
        batch(conn, kind, catalog_id, after)
    }))
}

/// Streams a CSV file read in batches: `next(conn, after)` answers the rows after the
/// key `after` (0 at first) and the last key, or none when there are no more. A closed
/// channel means the client went away, and reading stops.
pub fn stream_batches<F>(
    db: &Db,
    header: &'static [&'static str],
    mut next: F,
) -> mpsc::Receiver<std::io::Result<Bytes>>
where
    F: FnMut(&mut PgConnection, i64) -> Result<(Vec<Vec<String>>, Option<i64>)> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    db.spawn_with_connection(move |conn| {
        let mut after = 0;
        let mut header = Some(header);
        loop {
            let (rows, last) = match next(conn, after) {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(error = %e, "export failed");
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                    return;
                }
            };
            let chunk = write_rows(rows, header.take());
            if tx.blocking_send(chunk).is_err() {
                return;
            }
            match last {
                Some(key) => after = key,
                None => return,
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("+1"), "'+1");
        assert_eq!(spreadsheet_safe("@sum"), "'@sum");
        assert_eq!(spreadsheet_safe("ada@example.com"), "ada@example.com");
    }
}
