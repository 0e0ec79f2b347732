use diesel::PgConnection;
use serde::Deserialize;

use super::ServiceContext;
use super::accounts::{self, NewAccount};
use super::audit::{self, Subject};
use crate::domain::{EmailAddress, names};
use crate::error::{Error, FieldErrors, Result};
use crate::mail::messages::AccountLink;
use crate::models::partners::{self, Partner, PartnerForm, PartnerRow};
use crate::models::users::{self, User};
use crate::models::{PageRequest, Paginated, organisations};
use crate::policies::Actor;
use crate::policies::access::{require_partner_access, require_staff};

/// As typed into the form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PartnerInput {
    #[serde(default)]
    pub organisation_id: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub homepage_url: String,
    #[serde(default)]
    pub logo_url: String,
    #[serde(default)]
    pub accent_colour: String,
    #[serde(default)]
    pub email_sender_name: String,
    #[serde(default)]
    pub support_email: String,
    #[serde(default)]
    pub time_zone: String,
}

struct ValidPartner {
    organisation_id: i64,
    code: String,
    name: String,
    homepage_url: String,
    logo_url: String,
    accent_colour: String,
    email_sender_name: String,
    support_email: String,
    time_zone: String,
}

impl ValidPartner {
    fn form(&self) -> PartnerForm<'_> {
        PartnerForm {
            organisation_id: self.organisation_id,
            code: &self.code,
            name: &self.name,
            homepage_url: &self.homepage_url,
            logo_url: &self.logo_url,
            accent_colour: &self.accent_colour,
            email_sender_name: &self.email_sender_name,
            support_email: &self.support_email,
            time_zone: &self.time_zone,
        }
    }
}

fn validate(conn: &mut PgConnection, input: &PartnerInput) -> Result<ValidPartner> {
    let mut errors = FieldErrors::new();
    let organisation_id = match input.organisation_id.trim().parse::<i64>() {
        Ok(id) => match organisations::find(conn, id) {
            Ok(o) => Some(o.id),
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
    let code = errors.check("code", names::code(&input.code));
    let name = errors.check("name", names::required_single_line(&input.name, 200));
    let homepage_url = errors.check("homepage_url", names::optional_url(&input.homepage_url));
    let logo_url = errors.check("logo_url", names::optional_url(&input.logo_url));
    let accent_colour = if input.accent_colour.trim().is_empty() {
        Some("#1f6feb".to_string())
    } else {
        errors.check("accent_colour", names::accent_colour(&input.accent_colour))
    };
    let email_sender_name = errors.check(
        "email_sender_name",
        names::single_line(&input.email_sender_name, 100),
    );
    let support_email = errors.check("support_email", names::optional_email(&input.support_email));
    let time_zone = errors.check("time_zone", names::time_zone(&input.time_zone));
    errors.into_result()?;
    Ok(ValidPartner {
        organisation_id: organisation_id.unwrap_or_default(),
        code: code.unwrap_or_default(),
        name: name.unwrap_or_default(),
        homepage_url: homepage_url.unwrap_or_default(),
        logo_url: logo_url.unwrap_or_default(),
        accent_colour: accent_colour.unwrap_or_default(),
        email_sender_name: email_sender_name.unwrap_or_default(),
        support_email: support_email.unwrap_or_default(),
        time_zone: time_zone.unwrap_or_default(),
    })
}

const CODE_TAKEN: &str = "is already used by another partner";

pub fn create(conn: &mut PgConnection, actor: &Actor, input: &PartnerInput) -> Result<Partner> {
    require_staff(actor)?;
    let valid = validate(conn, input)?;
    let partner = partners::insert(conn, &valid.form())
        .map_err(|e| super::unique_violation(e, "code", CODE_TAKEN))?;
    audit::record(
        conn,
        actor,
        "partner.create",
        Subject::new("partner", partner.id).partner(partner.id),
        None,
        Some(audit::to_json(&partner)?),
        None,
    )?;
    Ok(partner)
}

pub fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    input: &PartnerInput,
) -> Result<Partner> {
    require_staff(actor)?;
    let before = partners::find(conn, id)?;
    let valid = validate(conn, input)?;
    let after = partners::update(conn, id, &valid.form())
        .map_err(|e| super::unique_violation(e, "code", CODE_TAKEN))?;
    audit::record(
        conn,
        actor,
        "partner.update",
        Subject::new("partner", id).partner(id),
        Some(audit::to_json(&before)?),
        Some(audit::to_json(&after)?),
        None,
    )?;
    Ok(after)
}

pub fn find(conn: &mut PgConnection, actor: &Actor, id: i64) -> Result<Partner> {
    require_partner_access(actor, id, "partner")?;
    partners::find(conn, id).map_err(|e| match e {
        diesel::result::Error::NotFound => Error::NotFound("partner"),
        other => other.into(),
    })
}

pub fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    search: &str,
    page: PageRequest,
) -> Result<Paginated<PartnerRow>> {
    require_staff(actor)?;
    Ok(partners::search(conn, search, page)?)
}

/// A partner's managers, each with whether the role has been claimed yet.
pub fn managers(
    conn: &mut PgConnection,
    actor: &Actor,
    partner_id: i64,
) -> Result<Vec<(User, bool)>> {
    require_partner_access(actor, partner_id, "partner")?;
    Ok(partners::managers_of(conn, partner_id)?)
}

/// The partner whose manager role waits for this person to claim it.
pub fn pending_assignment(conn: &mut PgConnection, user_id: i64) -> Result<Option<Partner>> {
    Ok(partners::assignment_of(conn, user_id)?
        .filter(|(_, claimed)| !claimed)
        .map(|(partner, _)| partner))
}

/// What assigning a manager came to.
#[derive(Debug)]
pub enum ManagerAssignment {
    /// A verified account with a password: the role took effect at once.
    Active(User),
    /// An unverified or new account: the role waits until its person follows the
    /// emailed link and chooses a password.
    AwaitingClaim(User),
    /// Already waiting: the link was sent again.
    LinkSentAgain(User),
}

impl ManagerAssignment {
    pub fn user(&self) -> &User {
        match self {
            Self::Active(user) | Self::AwaitingClaim(user) | Self::LinkSentAgain(user) => user,
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self, Self::Active(_))
    }
}

/// Makes the person with this email a manager of the partner. Only a verified account
/// that has a password gets the role at once: anyone may have signed up with the address,
/// so an unverified (or new) account is emailed a link to claim it, which sets a new
/// password and ends every other session. A user manages at most one partner.
pub fn assign_manager(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    partner_id: i64,
    raw_email: &str,
) -> Result<ManagerAssignment> {
    require_staff(actor)?;
    let partner = partners::find(conn, partner_id)?;
    let email =
        EmailAddress::parse(raw_email).map_err(|e| Error::invalid("email", e.to_string()))?;
    let user = match users::find_by_email(conn, email.as_str())? {
        Some(user) => user,
        None => accounts::create_account(
            conn,
            &NewAccount {
                email: email.clone(),
                full_name: String::new(),
                password_hash: None,
                email_verified: false,
                is_staff: false,
            },
        )?,
    };
    let send_claim_link = |conn: &mut PgConnection| {
        super::registration::issue_link(
            conn,
            ctx,
            &user,
            AccountLink::ClaimManager {
                partner_name: partner.name.clone(),
            },
            &user.email,
            None,
        )
    };
    if let Some((current, claimed)) = partners::assignment_of(conn, user.id)? {
        if current.id == partner.id && !claimed {
            send_claim_link(conn)?;
            return Ok(ManagerAssignment::LinkSentAgain(user));
        }
        let message = if current.id == partner.id {
            format!("{} already manages this partner", user.email)
        } else {
            format!(
                "{} already manages {}; a person manages at most one partner",
                user.email, current.name
            )
        };
        return Err(Error::invalid("email", message));
    }
    let takes_effect = user.is_verified() && user.password_hash.is_some();
    partners::assign_manager(
        conn,
        partner.id,
        user.id,
        actor.require_user()?,
        takes_effect,
    )?;
    if !takes_effect {
        send_claim_link(conn)?;
    }
    audit::record(
        conn,
        actor,
        "partner.manager_assign",
        Subject::new("partner", partner.id).partner(partner.id),
        None,
        Some(
            serde_json::json!({ "user_id": user.id, "email": user.email, "claimed": takes_effect }),
        ),
        None,
    )?;
    Ok(if takes_effect {
        ManagerAssignment::Active(user)
    } else {
        ManagerAssignment::AwaitingClaim(user)
    })
}

pub fn unassign_manager(
    conn: &mut PgConnection,
    actor: &Actor,
    partner_id: i64,
    user_id: i64,
    reason: Option<&str>,
) -> Result<()> {
    require_staff(actor)?;
    let user = users::find(conn, user_id)?;
    if partners::unassign_manager(conn, partner_id, user_id)? == 0 {
        return Err(Error::NotFound("manager"));
    }
    audit::record(
        conn,
        actor,
        "partner.manager_unassign",
        Subject::new("partner", partner_id).partner(partner_id),
        Some(serde_json::json!({ "user_id": user.id, "email": user.email })),
        None,
        reason,
    )?;
    Ok(())
}
