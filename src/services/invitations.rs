//! Rules 4–6: invitations are created, accepted, declined, removed and resent here,
//! and people join catalogs through them.

use chrono::{DateTime, Utc};
use diesel::PgConnection;

use super::ServiceContext;
use super::audit::{self, Subject};
use super::enrollments;
use super::patterns::PatternCache;
use crate::domain::invitation_status::Channel;
use crate::domain::{EmailAddress, InvitationStatus, SecretToken};
use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::mail::{self, messages};
use crate::models::catalogs::{self, Catalog};
use crate::models::invitations::{self, Invitation, NewInvitation};
use crate::models::learners::{self, CatalogLearner};
use crate::models::partners;
use crate::models::users::{self, User};
use crate::policies::Actor;
use crate::policies::access::require_partner_access;
use crate::policies::joining::{may_self_enroll, require_active, user_limit_allows};

/// A new or renewed invitation and the secret of its link, which is never stored.
#[derive(Debug)]
pub struct SentInvitation {
    pub invitation: Invitation,
    pub token: SecretToken,
}

fn not_found(e: diesel::result::Error, what: &'static str) -> Error {
    match e {
        diesel::result::Error::NotFound => Error::NotFound(what),
        other => other.into(),
    }
}

/// Why an invitation in this state cannot be used.
pub fn unusable_reason(status: InvitationStatus) -> &'static str {
    match status {
        InvitationStatus::Sent => "This invitation is waiting for an answer.",
        InvitationStatus::Accepted => "This invitation has already been accepted.",
        InvitationStatus::Declined => "This invitation was declined.",
        InvitationStatus::Removed => "This invitation was withdrawn.",
        InvitationStatus::Expired => "This invitation has expired. Ask for a new one.",
    }
}

fn refuse_ended(catalog: &Catalog, now: DateTime<Utc>) -> Result<()> {
    if catalog.window().has_ended_at(now) {
        return Err(Error::CatalogUnavailable(format!(
            "{} ended on {}; no more invitations can be sent",
            catalog.name,
            catalog.available_end.format("%Y-%m-%d")
        )));
    }
    Ok(())
}

/// A partner's managers may send at most so many invitation emails an hour (a setting);
/// staff are not limited. Counted under a lock per partner, so parallel requests cannot
/// pass the cap together.
fn check_hourly_cap(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    partner_id: i64,
) -> Result<()> {
    let cap = ctx.invitation_emails_per_hour;
    if actor.is_staff || cap <= 0 {
        return Ok(());
    }
    partners::lock_for_invitation_cap(conn, partner_id)?;
    let since = Utc::now() - chrono::Duration::hours(1);
    if crate::models::outbox::invitation_emails_since(conn, partner_id, since)? >= cap {
        return Err(Error::TooManyRequests(format!(
            "Your organisation has sent {cap} invitation emails in the last hour, the most allowed. Try again later, or ask the platform's staff for a bulk invitation."
        )));
    }
    Ok(())
}

fn queue_invitation_email(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    catalog: &Catalog,
    invitation: &Invitation,
    token: &SecretToken,
) -> Result<()> {
    let partner = partners::find(conn, catalog.partner_id)?;
    let email = messages::invitation(
        &ctx.base_url,
        &partner,
        catalog,
        invitation,
        token.as_str(),
        false,
    )?;
    mail::queue(conn, &ctx.sealer, email)?;
    Ok(())
}

/// Rule 5: invites an email into a catalog, linking an existing account with it and
/// queueing the email. One whose earlier invitation expired is sent a fresh one.
pub fn create(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    catalog_id: i64,
    raw_email: &str,
    channel: Channel,
) -> Result<SentInvitation> {
    let catalog = catalogs::find(conn, catalog_id).map_err(|e| not_found(e, "catalog"))?;
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    let email =
        EmailAddress::parse(raw_email).map_err(|e| Error::invalid("email", e.to_string()))?;
    let now = Utc::now();
    refuse_ended(&catalog, now)?;
    check_hourly_cap(conn, ctx, actor, catalog.partner_id)?;
    if let Some(open) = invitations::find_open(conn, catalog.id, email.as_str())? {
        return match open.status_at(now) {
            InvitationStatus::Expired => renew_and_send(conn, ctx, actor, &catalog, open, now),
            _ => Err(Error::InvitationExists(email.to_string())),
        };
    }
    // Only a verified account is linked: anyone may have signed up with the address.
    let user = users::find_by_email(conn, email.as_str())?.filter(|u| u.is_verified());
    let token = SecretToken::generate();
    let hash = token.hash();
    let invitation = invitations::insert(
        conn,
        &NewInvitation {
            catalog_id: catalog.id,
            email: email.as_str(),
            user_id: user.as_ref().map(|u| u.id),
            token_hash: &hash,
            channel: channel.as_str(),
            invited_by: actor.user_id,
            invited_at: now,
            expires_at: now + ctx.invitation_ttl,
            accepted_at: None,
            send_count: 1,
            last_sent_at: Some(now),
        },
    )
    .map_err(|e| match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => Error::InvitationExists(email.to_string()),
        other => other.into(),
    })?;
    queue_invitation_email(conn, ctx, &catalog, &invitation, &token)?;
    Event::new(events::INVITATION_SENT, catalog.partner_id, catalog.id)
        .invitation(invitation.id, channel.as_str())
        .user(invitation.user_id)
        .record(conn)?;
    audit::record(
        conn,
        actor,
        "invitation.create",
        Subject::new("invitation", invitation.id).catalog(catalog.partner_id, catalog.id),
        None,
        Some(
            serde_json::json!({ "email": invitation.email, "channel": invitation.channel, "expires_at": invitation.expires_at }),
        ),
        None,
    )?;
    Ok(SentInvitation { invitation, token })
}

fn renew_and_send(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    catalog: &Catalog,
    invitation: Invitation,
    now: DateTime<Utc>,
) -> Result<SentInvitation> {
    let token = SecretToken::generate();
    let renewed = invitations::renew(
        conn,
        invitation.id,
        &token.hash(),
        now + ctx.invitation_ttl,
        now,
    )?;
    queue_invitation_email(conn, ctx, catalog, &renewed, &token)?;
    Event::new(events::INVITATION_SENT, catalog.partner_id, catalog.id)
        .invitation(renewed.id, &renewed.channel)
        .user(renewed.user_id)
        .data(serde_json::json!({ "resend": true, "send_count": renewed.send_count }))
        .record(conn)?;
    audit::record(
        conn,
        actor,
        "invitation.resend",
        Subject::new("invitation", renewed.id).catalog(catalog.partner_id, catalog.id),
        Some(
            serde_json::json!({ "expires_at": invitation.expires_at, "send_count": invitation.send_count }),
        ),
        Some(
            serde_json::json!({ "expires_at": renewed.expires_at, "send_count": renewed.send_count }),
        ),
        None,
    )?;
    Ok(SentInvitation {
        invitation: renewed,
        token,
    })
}

/// Rule 6: a new token and expiry, and the email again. Sent or expired invitations only.
pub fn resend(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    actor: &Actor,
    invitation_id: i64,
) -> Result<SentInvitation> {
    let invitation =
        invitations::find(conn, invitation_id).map_err(|e| not_found(e, "invitation"))?;
    let catalog = catalogs::find(conn, invitation.catalog_id)?;
    require_partner_access(actor, catalog.partner_id, "invitation")?;
    let now = Utc::now();
    refuse_ended(&catalog, now)?;
    check_hourly_cap(conn, ctx, actor, catalog.partner_id)?;
    let invitation = invitations::lock(conn, invitation_id)?;
    let status = invitation.status_at(now);
    if !status.can_resend() {
        return Err(Error::InvalidTransition(format!(
            "{} Only sent or expired invitations can be sent again.",
            unusable_reason(status)
        )));
    }
    if let Some(last) = invitation.last_sent_at {
        let wait = (last + ctx.resend_interval) - now;
        if wait > chrono::Duration::zero() {
            return Err(Error::TooManyRequests(format!(
                "This invitation was just sent. Wait {} seconds before sending it again.",
                wait.num_seconds().max(1)
            )));
        }
    }
    renew_and_send(conn, ctx, actor, &catalog, invitation, now)
}

/// Rule 4: the checks every join runs, on a catalog row locked by the caller.
fn join_locked(
    conn: &mut PgConnection,
    catalog: &Catalog,
    user_id: i64,
    invitation_id: i64,
    now: DateTime<Utc>,
) -> Result<CatalogLearner> {
    require_active(catalog, now)?;
    let already_active = learners::find(conn, catalog.id, user_id)?.is_some_and(|l| l.is_active);
    // Without a limit there is nothing to count (and a large catalog is costly to count).
    let active = if catalog.user_limit > 0 {
        learners::count_active(conn, catalog.id)?
    } else {
        0
    };
    if !user_limit_allows(catalog.user_limit, active, already_active) {
        return Err(Error::UserLimitReached(Some(crate::error::RefusedJoin {
            partner_id: catalog.partner_id,
            catalog_id: catalog.id,
            user_id,
        })));
    }
    Ok(learners::activate(
        conn,
        catalog.id,
        user_id,
        invitation_id,
        now,
    )?)
}

/// Rule 6: the signed-in person whose email the invitation was sent to accepts it.
pub fn accept(conn: &mut PgConnection, actor: &Actor, raw_token: &str) -> Result<Invitation> {
    let user_id = actor.require_user()?;
    let token = SecretToken::from_received(raw_token);
    let found = invitations::find_by_token_hash(conn, &token.hash())?
        .ok_or(Error::NotFound("invitation"))?;
    let user = users::find(conn, user_id)?;
    accept_as(conn, actor, &user, found.id, Proof::EmailedLink)
}

/// What shows that the person accepting owns the invited address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proof {
    /// The emailed link's token: it proves the address, which becomes verified.
    EmailedLink,
    /// The account's address, already verified.
    VerifiedAccount,
}

/// Accepts for this user; the token or an equivalent proof was checked by the caller.
pub(crate) fn accept_as(
    conn: &mut PgConnection,
    actor: &Actor,
    user: &User,
    invitation_id: i64,
    proof: Proof,
) -> Result<Invitation> {
    if proof == Proof::VerifiedAccount && !user.is_verified() {
        return Err(Error::Forbidden(
            "Confirm your email address first, or use the link in the invitation email.".into(),
        ));
    }
    let found = invitations::find(conn, invitation_id)?;
    // Catalog first, then invitation: the same order everywhere avoids deadlocks.
    let catalog = catalogs::lock(conn, found.catalog_id)?;
    let invitation = invitations::lock(conn, found.id)?;
    let now = Utc::now();
    if user.email != invitation.email {
        return Err(Error::Forbidden(format!(
            "This invitation was sent to {}, but you are signed in as {}.",
            invitation.email, user.email
        )));
    }
    let status = invitation.status_at(now);
    if !status.can_accept() {
        return Err(Error::InvalidTransition(unusable_reason(status).into()));
    }
    join_locked(conn, &catalog, user.id, invitation.id, now)?;
    let accepted = invitations::mark_accepted(conn, invitation.id, user.id, now)?;
    // Courses the invitation gives (rule 7); a refusal (no seat left) is an answer with
    // its event, not a failure of the acceptance.
    let learner_actor = Actor::for_user(user, None);
    for course_id in &accepted.course_ids {
        match enrollments::request_course_access(conn, &learner_actor, catalog.id, *course_id) {
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if proof == Proof::EmailedLink {
        super::accounts::prove_email(conn, user)?;
    }
    Event::new(events::INVITATION_ACCEPTED, catalog.partner_id, catalog.id)
        .invitation(accepted.id, &accepted.channel)
        .user(Some(user.id))
        .record(conn)?;
    audit::record(
        conn,
        actor,
        "invitation.accept",
        Subject::new("invitation", accepted.id).catalog(catalog.partner_id, catalog.id),
        Some(serde_json::json!({ "status": status.as_str() })),
        Some(serde_json::json!({ "status": "accepted", "user_id": user.id })),
        None,
    )?;
    Ok(accepted)
}

/// Rule 6: declining works from the emailed link, without signing in.
pub fn decline(conn: &mut PgConnection, raw_token: &str) -> Result<Invitation> {
    let token = SecretToken::from_received(raw_token);
    let found = invitations::find_by_token_hash(conn, &token.hash())?
        .ok_or(Error::NotFound("invitation"))?;
    let catalog = catalogs::lock(conn, found.catalog_id)?;
    let invitation = invitations::lock(conn, found.id)?;
    let status = invitation.status();
    if !status.can_decline() {
        return Err(Error::InvalidTransition(unusable_reason(status).into()));
    }
    let declined = invitations::mark_declined(conn, invitation.id, Utc::now())?;
    Event::new(events::INVITATION_DECLINED, catalog.partner_id, catalog.id)
        .invitation(declined.id, &declined.channel)
        .user(declined.user_id)
        .record(conn)?;
    audit::record(
        conn,
        &Actor::invitee(&declined.email, declined.user_id),
        "invitation.decline",
        Subject::new("invitation", declined.id).catalog(catalog.partner_id, catalog.id),
        Some(serde_json::json!({ "status": "sent" })),
        Some(serde_json::json!({ "status": "declined" })),
        None,
    )?;
    Ok(declined)
}

/// The invitation behind a link, for the invitation page.
pub fn by_token(conn: &mut PgConnection, raw_token: &str) -> Result<Invitation> {
    let token = SecretToken::from_received(raw_token);
    invitations::find_by_token_hash(conn, &token.hash())?.ok_or(Error::NotFound("invitation"))
}

/// Rule 6: revokes a sent invitation or removes an accepted one, deactivating the
/// learner and the licences this catalog owns for them. Staff and the partner's
/// managers may; the learner too when the catalog allows leaving.
pub fn remove(
    conn: &mut PgConnection,
    actor: &Actor,
    invitation_id: i64,
    reason: Option<&str>,
) -> Result<Invitation> {
    let found = invitations::find(conn, invitation_id).map_err(|e| not_found(e, "invitation"))?;
    let catalog = catalogs::lock(conn, found.catalog_id)?;
    let is_own = actor.user_id.is_some() && actor.user_id == found.user_id;
    if !actor.can_manage_partner(catalog.partner_id) {
        if !is_own {
            return Err(Error::NotFound("invitation"));
        }
        if !catalog.allow_self_unenrollment {
            return Err(Error::Forbidden(format!(
                "{} does not let learners leave on their own.",
                catalog.name
            )));
        }
    }
    let invitation = invitations::lock(conn, found.id)?;
    let now = Utc::now();
    let status = invitation.status_at(now);
    if !status.can_remove()
        || (is_own
            && !actor.can_manage_partner(catalog.partner_id)
            && status != InvitationStatus::Accepted)
    {
        return Err(Error::InvalidTransition(format!(
            "{} It cannot be removed.",
            unusable_reason(status)
        )));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let removed = invitations::mark_removed(conn, invitation.id, actor.user_id, reason, now)?;
    let mut deactivated = Vec::new();
    if status == InvitationStatus::Accepted {
        if let Some(user_id) = invitation.user_id {
            let learner = learners::find(conn, catalog.id, user_id)?.filter(|l| l.is_active);
            // A learner who joined again through a newer invitation stays, with their licences.
            let stays = learner
                .as_ref()
                .is_some_and(|l| l.invitation_id != invitation.id);
            if let Some(learner) = learner.filter(|_| !stays) {
                learners::deactivate(conn, learner.id, now)?;
            }
            if !stays {
                deactivated = enrollments::deactivate_owned_by_catalog(
                    conn,
                    &catalog,
                    user_id,
                    "learner_removed",
                )?;
            }
        }
    }
    Event::new(events::INVITATION_REMOVED, catalog.partner_id, catalog.id)
        .invitation(removed.id, &removed.channel)
        .user(removed.user_id)
        .reason(if status == InvitationStatus::Accepted {
            "learner_removed"
        } else {
            "revoked"
        })
        .record(conn)?;
    audit::record(
        conn,
        actor,
        if status == InvitationStatus::Accepted {
            "learner.remove"
        } else {
            "invitation.revoke"
        },
        Subject::new("invitation", removed.id).catalog(catalog.partner_id, catalog.id),
        Some(serde_json::json!({ "status": status.as_str(), "email": invitation.email })),
        Some(serde_json::json!({ "status": "removed", "deactivated_licences": deactivated })),
        reason,
    )?;
    Ok(removed)
}

/// Removes an active learner: the invitation that let them in is removed (rule 6).
pub fn remove_learner(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog_id: i64,
    user_id: i64,
    reason: Option<&str>,
) -> Result<Invitation> {
    let catalog = catalogs::find(conn, catalog_id).map_err(|e| not_found(e, "catalog"))?;
    require_partner_access(actor, catalog.partner_id, "catalog")?;
    // The catalog first (see `catalogs::lock`), then the learner it holds.
    catalogs::lock(conn, catalog.id)?;
    let learner = learners::find(conn, catalog_id, user_id)?
        .filter(|l| l.is_active)
        .ok_or(Error::NotFound("learner"))?;
    remove(conn, actor, learner.invitation_id, reason)
}

/// Rule 4: joining a self-enrolment catalog directly. Joining twice is harmless. A
/// catalog the person does not see (rule 3) is "not found": its name stays private.
pub fn join_self_enrollment(
    conn: &mut PgConnection,
    cache: &PatternCache,
    actor: &Actor,
    catalog_id: i64,
) -> Result<CatalogLearner> {
    let user_id = actor.require_user()?;
    let user = users::find(conn, user_id)?;
    let catalog = catalogs::lock(conn, catalog_id).map_err(|e| not_found(e, "catalog"))?;
    let patterns = cache.of(conn, catalog.id)?;
    if !user.is_verified() && catalog.is_self_enrollment && patterns.matches(&user.email) {
        return Err(Error::Forbidden(
            "Verify your email address first: follow the link we sent you, then join.".into(),
        ));
    }
    // Open to this person but for its dates: they may learn when it opens.
    let open_to_them = may_self_enroll(&catalog, &patterns, &user.email, user.is_verified());
    if !open_to_them && !super::visibility::sees(conn, &user, &catalog, &patterns)? {
        return Err(Error::NotFound("catalog"));
    }
    if !catalog.is_self_enrollment {
        return Err(Error::Forbidden(format!(
            "{} is open by invitation only.",
            catalog.name
        )));
    }
    if !may_self_enroll(&catalog, &patterns, &user.email, user.is_verified()) {
        return Err(Error::Forbidden(format!(
            "{} is open to other email addresses than yours.",
            catalog.name
        )));
    }
    if let Some(learner) = learners::find(conn, catalog.id, user.id)? {
        if learner.is_active {
            return Ok(learner);
        }
    }
    let (learner, invitation_id) =
        join_directly(conn, actor, &catalog, &user, Channel::SelfEnrollment)?;
    if let Some(invitation_id) = invitation_id {
        audit::record(
            conn,
            actor,
            "catalog.self_enroll",
            Subject::new("catalog_learner", learner.id).catalog(catalog.partner_id, catalog.id),
            None,
            Some(serde_json::json!({ "user_id": user.id, "invitation_id": invitation_id })),
            None,
        )?;
    }
    Ok(learner)
}

/// Rule 4: the user joins the catalog (locked by the caller) without an emailed link:
/// through a new invitation of `channel`, accepted at once. A waiting invitation of a
/// verified address is accepted instead of doubled; an expired one (or one an unverified
/// address cannot prove) makes way. Returns the learner, and the new invitation when one
/// was made (the caller records its audit entry).
pub(crate) fn join_directly(
    conn: &mut PgConnection,
    actor: &Actor,
    catalog: &Catalog,
    user: &User,
    channel: Channel,
) -> Result<(CatalogLearner, Option<i64>)> {
    let now = Utc::now();
    require_active(catalog, now)?;
    if let Some(open) = invitations::find_open(conn, catalog.id, &user.email)? {
        if open.status_at(now) == InvitationStatus::Sent && user.is_verified() {
            accept_as(conn, actor, user, open.id, Proof::VerifiedAccount)?;
            let learner =
                learners::find(conn, catalog.id, user.id)?.ok_or(Error::NotFound("learner"))?;
            return Ok((learner, None));
        }
        invitations::mark_removed(
            conn,
            open.id,
            Some(user.id),
            Some(&format!(
                "replaced by {}",
                channel.as_str().replace('_', "-")
            )),
            now,
        )?;
    }
    let token = SecretToken::generate();
    let invitation = invitations::insert(
        conn,
        &NewInvitation {
            catalog_id: catalog.id,
            email: &user.email,
            user_id: Some(user.id),
            token_hash: &token.hash(),
            channel: channel.as_str(),
            invited_by: actor.user_id,
            invited_at: now,
            expires_at: now,
            accepted_at: None,
            send_count: 0,
            last_sent_at: None,
        },
    )?;
    let learner = join_locked(conn, catalog, user.id, invitation.id, now)?;
    invitations::mark_accepted(conn, invitation.id, user.id, now)?;
    Event::new(events::INVITATION_ACCEPTED, catalog.partner_id, catalog.id)
        .invitation(invitation.id, channel.as_str())
        .user(Some(user.id))
        .record(conn)?;
    Ok((learner, Some(invitation.id)))
}

/// Accepts a waiting invitation from "My catalogs": the account's verified address
/// stands in for the emailed link.
pub fn accept_by_id(
    conn: &mut PgConnection,
    actor: &Actor,
    invitation_id: i64,
) -> Result<Invitation> {
    let user = users::find(conn, actor.require_user()?)?;
    let invitation =
        invitations::find(conn, invitation_id).map_err(|e| not_found(e, "invitation"))?;
    if invitation.email != user.email {
        return Err(Error::NotFound("invitation"));
    }
    accept_as(conn, actor, &user, invitation.id, Proof::VerifiedAccount)
}

/// A learner leaves a catalog that lets learners leave (rule 6).
pub fn leave(conn: &mut PgConnection, actor: &Actor, catalog_id: i64) -> Result<Invitation> {
    let user_id = actor.require_user()?;
    // The catalog first (see `catalogs::lock`), then the learner it holds.
    match catalogs::lock(conn, catalog_id) {
        Err(diesel::result::Error::NotFound) => return Err(Error::NotFound("catalog")),
        other => other?,
    };
    let learner = learners::find(conn, catalog_id, user_id)?
        .filter(|l| l.is_active)
        .ok_or(Error::NotFound("catalog"))?;
    remove(conn, actor, learner.invitation_id, Some("left the catalog"))
}
