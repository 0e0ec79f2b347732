//! What the partner console shows: each use case checks that the actor manages the
//! partner (rule 10: anything else is "not found").

use std::collections::HashMap;

use chrono::Utc;
use diesel::{Connection, PgConnection};

use super::ServiceContext;
use super::invitations;
use crate::domain::invitation_status::Channel;
use crate::domain::{EmailAddress, EmailPatterns};
use crate::error::{Error, Result};
use crate::models::audit::{self, AuditFilter};
use crate::models::catalog_counts::{self, CatalogFigures};
use crate::models::catalogs::{self, Catalog};
use crate::models::courses::{self, Course};
use crate::models::enrollments::{self, LicenceRow};
use crate::models::invitations::{self as invitation_rows, Invitation, InvitationFilter};
use crate::models::learners::{self, LearnerRow};
use crate::models::partners::{self, Partner};
use crate::models::{PageRequest, Paginated, users};
use crate::policies::Actor;
use crate::policies::access::require_partner_access;
use crate::policies::joining::may_self_enroll;

/// At most this many addresses may be pasted at once; more go through bulk jobs.
pub const MAX_PASTED_INVITATIONS: usize = 50;
/// The dashboard counts pending invitations exactly up to this many.
pub const PENDING_COUNT_CAP: i64 = 1_000;

pub fn partner_by_code(conn: &mut PgConnection, actor: &Actor, code: &str) -> Result<Partner> {
    let partner = partners::find_by_code(conn, code)?.ok_or(Error::NotFound("partner"))?;
    require_partner_access(actor, partner.id, "partner")?;
    Ok(partner)
}

/// The partner named by `code` and, when asked for, its catalog `catalog_id`, read in one
/// statement. Another partner's catalog is not found, as is a partner the actor does not
/// manage.
pub fn partner_and_catalog(
    conn: &mut PgConnection,
    actor: &Actor,
    code: &str,
    catalog_id: Option<i64>,
) -> Result<(Partner, Option<Catalog>)> {
    let Some(catalog_id) = catalog_id else {
        return Ok((partner_by_code(conn, actor, code)?, None));
    };
    let (partner, catalog) = partners::find_by_code_with_catalog(conn, code, catalog_id)?
        .ok_or(Error::NotFound("partner"))?;
    require_partner_access(actor, partner.id, "partner")?;
    // The join only finds the partner's own catalog.
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    Ok((partner, Some(catalog)))
}

pub struct CatalogSummary {
    pub catalog: Catalog,
    pub active_learners: i64,
    pub active_licences: i64,
    /// Counted up to `PENDING_COUNT_CAP + 1`; more shows as "more than".
    pub pending_invitations: i64,
    pub blocked: BlockedAttempts,
}

/// How long refused attempts are counted for managers.
pub const BLOCKED_WINDOW_DAYS: i64 = 30;

/// Attempts a catalog's limits refused lately: people who could not take a paid seat
/// (none left) and people who could not join (learner limit reached).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockedAttempts {
    pub seats_full: i64,
    pub learner_limit: i64,
}

impl BlockedAttempts {
    pub fn any(&self) -> bool {
        self.seats_full + self.learner_limit > 0
    }
}

/// The figures of these catalogs' summaries, by catalog.
fn figures_by_catalog(
    conn: &mut PgConnection,
    of: catalog_counts::FiguresOf,
) -> Result<HashMap<i64, CatalogFigures>> {
    Ok(
        catalog_counts::figures(conn, of, BLOCKED_WINDOW_DAYS, PENDING_COUNT_CAP + 1)?
            .into_iter()
            .map(|f| (f.catalog_id, f))
            .collect(),
    )
}

impl From<&CatalogFigures> for BlockedAttempts {
    fn from(f: &CatalogFigures) -> Self {
        Self {
            seats_full: f.seats_full,
            learner_limit: f.learner_limit,
        }
    }
}

/// A catalog's refused attempts of the last 30 days.
pub fn blocked_attempts(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
) -> Result<BlockedAttempts> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    Ok(
        figures_by_catalog(conn, catalog_counts::FiguresOf::Catalog(catalog.id))?
            .get(&catalog.id)
            .map(BlockedAttempts::from)
            .unwrap_or_default(),
    )
}

pub struct Dashboard {
    pub catalogs: Vec<CatalogSummary>,
    /// Archived catalogs, left out of `catalogs`.
    pub archived: i64,
    pub recent: Vec<crate::services::audit::AuditLine>,
}

pub fn dashboard(conn: &mut PgConnection, actor: &Actor, partner: &Partner) -> Result<Dashboard> {
    require_partner_access(actor, partner.id, "partner")?;
    let list = catalogs::for_partner(conn, partner.id)?;
    let figures = figures_by_catalog(
        conn,
        catalog_counts::FiguresOf::ActiveCatalogsOf(partner.id),
    )?;
    let catalogs = list
        .into_iter()
        .map(|catalog| {
            let f = figures.get(&catalog.id).copied().unwrap_or_default();
            CatalogSummary {
                blocked: BlockedAttempts::from(&f),
                active_learners: f.learners,
                active_licences: f.paid_seats,
                pending_invitations: f.open_invitations,
                catalog,
            }
        })
        .collect();
    let recent = audit::recent_for_partner(conn, partner.id, 10)?;
    let recent = crate::services::audit::describe(conn, recent)?;
    let archived = catalogs::count_archived(conn, partner.id)?;
    Ok(Dashboard {
        archived,
        catalogs,
        recent,
    })
}

pub fn eligible_courses(
    conn: &mut PgConnection,
    actor: &Actor,
    partner: &Partner,
    catalog: &Catalog,
    search: &str,
) -> Result<Vec<Course>> {
    require_partner_access(actor, partner.id, "partner")?;
    Ok(courses::eligible_for_catalog(
        conn,
        partner.organisation_id,
        catalog.id,
        search,
        50,
    )?)
}

pub fn invitations(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    filter: &InvitationFilter,
    page: PageRequest,
) -> Result<Paginated<Invitation>> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    Ok(invitation_rows::list_for_catalog(
        conn,
        catalog.id,
        filter,
        Utc::now(),
        page,
    )?)
}

pub struct LearnerListing {
    pub row: LearnerRow,
    pub licences_held: i64,
}

pub fn learners(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    active: Option<bool>,
    search: &str,
    page: PageRequest,
) -> Result<Paginated<LearnerListing>> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    let rows = learners::list_for_catalog(conn, catalog.id, active, search, page)?;
    let user_ids: Vec<i64> = rows.items.iter().map(|r| r.learner.user_id).collect();
    let held: HashMap<i64, i64> = enrollments::active_owned_per_user(conn, catalog.id, &user_ids)?
        .into_iter()
        .collect();
    Ok(rows.map(|row| LearnerListing {
        licences_held: held.get(&row.learner.user_id).copied().unwrap_or(0),
        row,
    }))
}

pub fn licences(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    course_id: Option<i64>,
    active: Option<bool>,
    page: PageRequest,
) -> Result<Paginated<LicenceRow>> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    Ok(enrollments::list_owned_by_catalog(
        conn, catalog.id, course_id, active, page,
    )?)
}

/// The partner's audit log; `actor_email` narrows to one person.
pub fn audit_log(
    conn: &mut PgConnection,
    actor: &Actor,
    partner: &Partner,
    catalog_id: Option<i64>,
    actor_email: &str,
    action: Option<String>,
    page: PageRequest,
) -> Result<Paginated<crate::services::audit::AuditLine>> {
    require_partner_access(actor, partner.id, "partner")?;
    let actor_user_id = if actor_email.trim().is_empty() {
        None
    } else {
        match users::find_by_email(conn, &actor_email.trim().to_lowercase())? {
            Some(user) => Some(user.id),
            None => {
                return Ok(Paginated::empty(page));
            }
        }
    };
    let filter = AuditFilter {
        partner_id: Some(partner.id),
        catalog_id,
        actor_user_id,
        action,
        ..AuditFilter::default()
    };
    let rows = audit::list(conn, &filter, page)?;
    crate::services::audit::described_page(conn, rows)
}

/// What happened to one pasted address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteOutcome {
    Sent,
    /// Sent, though the address matches none of the catalog's patterns (allowed).
    SentOutsidePatterns,
    /// Sent, though the catalog has fewer places left than people invited.
    SentBeyondPlaces,
    AlreadyInvited,
    AlreadyLearner,
    Invalid(String),
    /// Appears earlier in the same list.
    Repeated,
    Refused(String),
}

impl InviteOutcome {
    /// A stable code, for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::SentOutsidePatterns => "sent_outside_patterns",
            Self::SentBeyondPlaces => "sent_beyond_places",
            Self::AlreadyInvited => "already_invited",
            Self::AlreadyLearner => "already_learner",
            Self::Invalid(_) => "invalid_email",
            Self::Repeated => "duplicate_in_request",
            Self::Refused(_) => "refused",
        }
    }

    pub fn was_sent(&self) -> bool {
        matches!(
            self,
            Self::Sent | Self::SentOutsidePatterns | Self::SentBeyondPlaces
        )
    }

    /// In words, for the list shown after sending.
    pub fn words(&self) -> String {
        match self {
            Self::Sent => "invitation sent".into(),
            Self::SentOutsidePatterns => {
                "invitation sent (the address matches none of the catalog's email patterns)".into()
            }
            Self::SentBeyondPlaces => {
                "invitation sent, but the catalog has no place left for them to join yet".into()
            }
            Self::AlreadyInvited => {
                "not sent: already invited and the invitation is still waiting".into()
            }
            Self::AlreadyLearner => "not sent: already a learner of this catalog".into(),
            Self::Invalid(why) => format!("not sent: {why}"),
            Self::Repeated => "not sent again: appears earlier in the list".into(),
            Self::Refused(why) => format!("not sent: {why}"),
        }
    }
}

/// What happened to each pasted address, in the order typed.
#[derive(Debug, Default)]
pub struct InviteReport {
    pub entries: Vec<(String, InviteOutcome)>,
}

impl InviteReport {
    pub fn sent(&self) -> usize {
        self.entries.iter().filter(|(_, o)| o.was_sent()).count()
    }

    pub fn not_sent(&self) -> usize {
        self.entries.len() - self.sent()
    }

    /// The addresses that were not sent, for the box to correct them in.
    pub fn not_sent_addresses(&self) -> String {
        self.entries
            .iter()
            .filter(|(_, o)| !o.was_sent())
            .map(|(address, _)| address.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Splits pasted text into entries: one per line, or separated by commas or semicolons.
/// Whatever stands between separators is one entry, so text that is not an address is
/// reported once, whole.
pub fn split_addresses(text: &str) -> Vec<String> {
    text.split(['\n', ',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a manager should know before sending: addresses outside the catalog's patterns,
/// and more people than places left.
#[derive(Debug, Default, Clone)]
pub struct InviteWarnings {
    pub outside_patterns: Vec<String>,
    /// (places left, valid addresses to invite) when the second is larger.
    pub beyond_places: Option<(i64, usize)>,
}

impl InviteWarnings {
    pub fn is_empty(&self) -> bool {
        self.outside_patterns.is_empty() && self.beyond_places.is_none()
    }
}

fn places_left(conn: &mut PgConnection, catalog: &Catalog) -> Result<Option<i64>> {
    if catalog.user_limit <= 0 {
        return Ok(None);
    }
    let active = learners::count_active(conn, catalog.id)?;
    Ok(Some((i64::from(catalog.user_limit) - active).max(0)))
}

/// Checks a pasted list before anything is sent.
pub fn invite_warnings(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    text: &str,
) -> Result<InviteWarnings> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    let patterns = EmailPatterns::from_stored(
        catalogs::patterns_of(conn, catalog.id)?
            .iter()
            .map(String::as_str),
    );
    let valid: Vec<EmailAddress> = split_addresses(text)
        .iter()
        .filter_map(|a| EmailAddress::parse(a).ok())
        .collect();
    let outside_patterns = if patterns.is_empty() {
        Vec::new()
    } else {
        valid
            .iter()
            .filter(|a| !patterns.matches(a.as_str()))
            .map(|a| a.as_str().to_string())
            .collect()
    };
    let beyond_places = places_left(conn, catalog)?
        .filter(|left| (valid.len() as i64) > *left)
        .map(|left| (left, valid.len()));
    Ok(InviteWarnings {
        outside_patterns,
        beyond_places,
    })
}

/// Invites up to 50 pasted addresses; each is its own unit, so one bad address does
/// not stop the others, and each outcome is reported.
pub fn invite_many(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    catalog: &Catalog,
    text: &str,
) -> Result<InviteReport> {
    let addresses = split_addresses(text);
    if addresses.len() > MAX_PASTED_INVITATIONS {
        require_partner_access(actor, catalog.partner_id, "catalog")?;
        return Err(Error::invalid(
            "emails",
            format!(
                "{} addresses were pasted; at most {MAX_PASTED_INVITATIONS} can be invited here. Use a bulk list for more.",
                addresses.len()
            ),
        ));
    }
    invite_addresses(conn, ctx, actor, catalog, addresses, Channel::Manual)
}

/// Invites each address on its own (a savepoint each), reporting every outcome; one bad
/// address does not stop the others.
pub fn invite_addresses(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    catalog: &Catalog,
    addresses: Vec<String>,
    channel: Channel,
) -> Result<InviteReport> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    if addresses.is_empty() {
        return Err(Error::invalid("emails", "enter at least one email address"));
    }
    let patterns = EmailPatterns::from_stored(
        catalogs::patterns_of(conn, catalog.id)?
            .iter()
            .map(String::as_str),
    );
    let mut places = places_left(conn, catalog)?;
    let mut report = InviteReport::default();
    let mut seen = std::collections::HashSet::new();
    for raw in addresses {
        let email = match EmailAddress::parse(&raw) {
            Ok(email) => email,
            Err(e) => {
                report
                    .entries
                    .push((raw, InviteOutcome::Invalid(e.to_string())));
                continue;
            }
        };
        if !seen.insert(email.as_str().to_string()) {
            report.entries.push((raw, InviteOutcome::Repeated));
            continue;
        }
        // A savepoint per address: a refusal leaves the others in place.
        let outcome = match conn.transaction(|conn| {
            invitations::create(conn, ctx, actor, catalog.id, email.as_str(), channel)
        }) {
            Ok(_) => {
                let beyond = places.is_some_and(|left| left <= 0);
                places = places.map(|left| left - 1);
                if beyond {
                    InviteOutcome::SentBeyondPlaces
                } else if !patterns.is_empty() && !patterns.matches(email.as_str()) {
                    InviteOutcome::SentOutsidePatterns
                } else {
                    InviteOutcome::Sent
                }
            }
            Err(Error::Internal(e)) => return Err(Error::Internal(e)),
            Err(e @ Error::CatalogUnavailable(_)) => return Err(e),
            Err(Error::InvitationExists(_)) => {
                let accepted = invitation_rows::find_open(conn, catalog.id, email.as_str())?
                    .is_some_and(|i| i.accepted_at.is_some());
                if accepted {
                    InviteOutcome::AlreadyLearner
                } else {
                    InviteOutcome::AlreadyInvited
                }
            }
            Err(Error::Invalid(errors)) => {
                InviteOutcome::Invalid(errors.get("email").unwrap_or("is not valid").to_string())
            }
            Err(e) => InviteOutcome::Refused(e.public_message()),
        };
        report.entries.push((email.as_str().to_string(), outcome));
    }
    Ok(report)
}

/// The "test an address" box of the catalog editor.
pub struct AddressTest {
    pub email: String,
    pub matching_pattern: Option<String>,
    pub verdict: String,
}

pub fn test_address(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    raw: &str,
) -> Result<AddressTest> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    let email =
        EmailAddress::parse(raw).map_err(|e| Error::invalid("test_email", e.to_string()))?;
    let stored = catalogs::patterns_of(conn, catalog.id)?;
    let patterns = EmailPatterns::from_stored(stored.iter().map(String::as_str));
    let matching_pattern = patterns.first_match(email.as_str()).map(str::to_string);
    let verdict = if catalog.is_self_enrollment {
        if may_self_enroll(catalog, &patterns, email.as_str(), true) {
            if patterns.is_empty() {
                "Could join: this catalog is open to everyone (no patterns).".to_string()
            } else {
                "Could join on their own once their email address is verified.".to_string()
            }
        } else {
            "Could not join on their own: no pattern matches. An invitation still lets them in."
                .to_string()
        }
    } else if matching_pattern.is_some() {
        "Sees this catalog (a pattern matches), but joins by invitation: self-enrolment is off."
            .to_string()
    } else {
        "Joins only by invitation: no pattern matches and self-enrolment is off.".to_string()
    };
    Ok(AddressTest {
        email: email.into_string(),
        matching_pattern,
        verdict,
    })
}

/// An invitation of this catalog, for the console's actions.
pub fn invitation_in(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    invitation_id: i64,
) -> Result<Invitation> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    match invitation_rows::find(conn, invitation_id) {
        Ok(invitation) if invitation.catalog_id == catalog.id => Ok(invitation),
        Ok(_) | Err(diesel::result::Error::NotFound) => Err(Error::NotFound("invitation")),
        Err(e) => Err(e.into()),
    }
}

/// A licence this catalog owns, for the console's actions.
pub fn licence_in(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    licence_id: i64,
) -> Result<enrollments::Licence> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    match enrollments::lock_licence(conn, licence_id) {
        Ok(licence) if licence.catalog_id == catalog.id => Ok(licence),
        Ok(_) | Err(diesel::result::Error::NotFound) => Err(Error::NotFound("paid seat")),
        Err(e) => Err(e.into()),
    }
}

/// A learner of this catalog with their email, for the removal confirmation.
pub fn learner_in(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    user_id: i64,
) -> Result<(learners::CatalogLearner, String)> {
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    let learner = learners::find(conn, catalog.id, user_id)?.ok_or(Error::NotFound("learner"))?;
    let user = users::find(conn, user_id)?;
    Ok((learner, user.email))
}

#[cfg(test)]
mod tests {
    use super::split_addresses;

    #[test]
    fn pasted_addresses_split_on_lines_commas_and_spaces() {
        assert_eq!(
            split_addresses("a@x.com, b@x.com;c@x.com\n\n d@x.com "),
            vec!["a@x.com", "b@x.com", "c@x.com", "d@x.com"]
        );
        assert!(split_addresses("  \n ").is_empty());
    }
}
