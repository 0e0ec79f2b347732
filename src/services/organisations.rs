use diesel::PgConnection;
use serde::Deserialize;

use super::audit::{self, Subject};
use crate::domain::names;
use crate::error::{FieldErrors, Result};
use crate::models::organisations::{self, Organisation, OrganisationForm};
use crate::models::{PageRequest, Paginated};
use crate::policies::Actor;
use crate::policies::access::require_staff;

/// As typed into the form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrganisationInput {
    #[serde(default)]
    pub short_name: String,
    #[serde(default)]
    pub name: String,
}

fn validate(input: &OrganisationInput) -> Result<(String, String)> {
    let mut errors = FieldErrors::new();
    let short_name = errors.check(
        "short_name",
        names::organisation_short_name(&input.short_name),
    );
    let name = errors.check("name", names::required_text(&input.name, 200));
    errors.into_result()?;
    Ok((short_name.unwrap_or_default(), name.unwrap_or_default()))
}

const TAKEN: &str = "is already used by another organisation";

pub fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    input: &OrganisationInput,
) -> Result<Organisation> {
    require_staff(actor)?;
    let (short_name, name) = validate(input)?;
    let organisation = organisations::insert(
        conn,
        &OrganisationForm {
            short_name: &short_name,
            name: &name,
        },
    )
    .map_err(|e| super::unique_violation(e, "short_name", TAKEN))?;
    audit::record(
        conn,
        actor,
        "organisation.create",
        Subject::new("organisation", organisation.id),
        None,
        Some(audit::to_json(&organisation)?),
        None,
    )?;
    Ok(organisation)
}

pub fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    input: &OrganisationInput,
) -> Result<Organisation> {
    require_staff(actor)?;
    let before = organisations::find(conn, id)?;
    let (short_name, name) = validate(input)?;
    let after = organisations::update(
        conn,
        id,
        &OrganisationForm {
            short_name: &short_name,
            name: &name,
        },
    )
    .map_err(|e| super::unique_violation(e, "short_name", TAKEN))?;
    audit::record(
        conn,
        actor,
        "organisation.update",
        Subject::new("organisation", id),
        Some(audit::to_json(&before)?),
        Some(audit::to_json(&after)?),
        None,
    )?;
    Ok(after)
}

pub fn find(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<Organisation> {
    require_staff(actor)?;
    Ok(organisations::find(conn, id)?)
}

pub fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    search: &str,
    page: PageRequest,
) -> Result<Paginated<Organisation>> {
    require_staff(actor)?;
    Ok(organisations::search(conn, search, page)?)
}

pub fn all(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<Organisation>> {
    require_staff(actor)?;
    Ok(organisations::all(conn)?)
}
