use std::collections::HashMap;

use diesel::PgConnection;
use serde::Deserialize;

use super::audit::{self, Subject};
use crate::domain::course_import::{self, RowError, parse_optional_datetime};
use crate::domain::{CourseKey, CourseModes, names};
use crate::error::{Error, FieldErrors, Result};
use crate::models::courses::{self, Course, CourseForm, CourseRow};
use crate::models::{PageRequest, Paginated, organisations};
use crate::policies::Actor;
use crate::policies::access::require_staff;

/// As typed into the form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CourseInput {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub organisation_id: String,
    #[serde(default)]
    pub modes: String,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
}

struct ValidCourse {
    key: String,
    organisation_id: i64,
    title: String,
    starts_at: Option<chrono::DateTime<chrono::Utc>>,
    ends_at: Option<chrono::DateTime<chrono::Utc>>,
    modes: Vec<String>,
}

impl ValidCourse {
    fn form(&self) -> CourseForm<'_> {
        CourseForm {
            key: &self.key,
            organisation_id: self.organisation_id,
            title: &self.title,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            modes: self.modes.clone(),
        }
    }
}

fn validate(conn: &mut PgConnection, input: &CourseInput) -> Result<ValidCourse> {
    let mut errors = FieldErrors::new();
    let key = errors.check("key", CourseKey::parse(&input.key));
    let title = errors.check("title", names::required_text(&input.title, 300));
    let organisation = match input.organisation_id.trim().parse::<i64>() {
        Ok(id) => match organisations::find(conn, id) {
            Ok(o) => Some(o),
            Err(diesel::result::Error::NotFound) => {
                errors.add("organisation_id", "choose an existing organisation");
                None
            }
            Err(e) => return Err(e.into()),
        },
        Err(_) => {
            errors.add("organisation_id", "choose an organisation");
            None
        }
    };
    let modes = errors.check("modes", CourseModes::parse(&input.modes));
    let starts_at = errors.check("starts_at", parse_optional_datetime(&input.starts_at));
    let ends_at = errors.check("ends_at", parse_optional_datetime(&input.ends_at));
    if let (Some(Some(s)), Some(Some(e))) = (starts_at, ends_at) {
        if e < s {
            errors.add("ends_at", "must not be before the start");
        }
    }
    if let (Some(key), Some(org)) = (&key, &organisation) {
        if let Some(key_org) = key.organisation_part() {
            if key_org != org.short_name {
                errors.add(
                    "key",
                    format!("names organisation {key_org}, not {}", org.short_name),
                );
            }
        }
    }
    errors.into_result()?;
    let (Some(key), Some(title), Some(organisation), Some(modes)) =
        (key, title, organisation, modes)
    else {
        return Err(Error::internal(anyhow::anyhow!(
            "validated course is incomplete"
        )));
    };
    Ok(ValidCourse {
        key: key.as_str().to_string(),
        organisation_id: organisation.id,
        title,
        starts_at: starts_at.flatten(),
        ends_at: ends_at.flatten(),
        modes: modes.to_strings(),
    })
}

const KEY_TAKEN: &str = "is already used by another course";

pub fn create(conn: &mut PgConnection, actor: &Actor, input: &CourseInput) -> Result<Course> {
    require_staff(actor)?;
    let valid = validate(conn, input)?;
    let course = courses::insert(conn, &valid.form())
        .map_err(|e| super::unique_violation(e, "key", KEY_TAKEN))?;
    audit::record(
        conn,
        actor,
        "course.create",
        Subject::new("course", course.id),
        None,
        Some(audit::to_json(&course)?),
        None,
    )?;
    Ok(course)
}

pub fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    input: &CourseInput,
) -> Result<Course> {
    require_staff(actor)?;
    let before = courses::find(conn, id)?;
    let valid = validate(conn, input)?;
    let after = courses::update(conn, id, &valid.form())
        .map_err(|e| super::unique_violation(e, "key", KEY_TAKEN))?;
    audit::record(
        conn,
        actor,
        "course.update",
        Subject::new("course", id),
        Some(audit::to_json(&before)?),
        Some(audit::to_json(&after)?),
        None,
    )?;
    Ok(after)
}

pub fn find(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<Course> {
    require_staff(actor)?;
    courses::find(conn, id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("course"),
        other => other.into(),
    })
}

pub fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    search: &str,
    shared_only: bool,
    page: PageRequest,
) -> Result<Paginated<CourseRow>> {
    require_staff(actor)?;
    Ok(courses::search(conn, search, shared_only, page)?)
}

/// The outcome of an import that was refused: every bad row by line.
#[derive(Debug, Clone)]
pub struct ImportRejected(pub Vec<RowError>);

/// Imports every row of the CSV, or nothing when any row is bad.
pub fn import_csv(
    conn: &mut PgConnection,
    actor: &Actor,
    csv_text: &str,
) -> Result<std::result::Result<Vec<Course>, ImportRejected>> {
    require_staff(actor)?;
    let (rows, mut errors) = course_import::parse_course_rows(csv_text);
    let mut organisation_ids: HashMap<String, Option<i64>> = HashMap::new();
    for row in &rows {
        if !organisation_ids.contains_key(&row.organisation) {
            let found = organisations::find_by_short_name(conn, &row.organisation)?.map(|o| o.id);
            organisation_ids.insert(row.organisation.clone(), found);
        }
    }
    let keys: Vec<String> = rows.iter().map(|r| r.key.as_str().to_string()).collect();
    let existing = courses::keys_existing(conn, &keys)?;
    for row in &rows {
        let mut problems = Vec::new();
        if organisation_ids
            .get(&row.organisation)
            .copied()
            .flatten()
            .is_none()
        {
            problems.push(format!("organisation {} does not exist", row.organisation));
        }
        if existing.iter().any(|k| k == row.key.as_str()) {
            problems.push(format!("a course with key {} already exists", row.key));
        }
        if !problems.is_empty() {
            errors.push(RowError {
                line: row.line,
                message: problems.join("; "),
            });
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Ok(Err(ImportRejected(errors)));
    }
    let mut created = Vec::with_capacity(rows.len());
    for row in &rows {
        let course = courses::insert(
            conn,
            &CourseForm {
                key: row.key.as_str(),
                organisation_id: organisation_ids
                    .get(&row.organisation)
                    .copied()
                    .flatten()
                    .unwrap_or_default(),
                title: &row.title,
                starts_at: row.starts_at,
                ends_at: row.ends_at,
                modes: row.modes.to_strings(),
            },
        )?;
        created.push(course);
    }
    audit::record(
        conn,
        actor,
        "course.import",
        Subject::new(
            "course_import",
            created.first().map(|c| c.id).unwrap_or_default(),
        ),
        None,
        Some(serde_json::json!({ "count": created.len(), "keys": keys })),
        None,
    )?;
    Ok(Ok(created))
}

pub fn set_shared(
    conn: &mut PgConnection,
    actor: &Actor,
    course_id: i64,
    shared: bool,
) -> Result<()> {
    require_staff(actor)?;
    let course = courses::find(conn, course_id)?;
    let changed = if shared {
        courses::add_to_shared_pool(conn, course.id, actor.require_user()?)?
    } else {
        courses::remove_from_shared_pool(conn, course.id)?
    };
    if changed > 0 {
        audit::record(
            conn,
            actor,
            if shared {
                "shared_pool.add"
            } else {
                "shared_pool.remove"
            },
            Subject::new("course", course.id),
            None,
            Some(serde_json::json!({ "key": course.key })),
            None,
        )?;
    }
    Ok(())
}
