//! The emails the application sends, each an askama `.txt` and `.html` pair.

use askama::Template;

use super::outbox::{OutgoingEmail, SECRET_MARKER};
use crate::error::{Error, Result};
use crate::models::catalogs::Catalog;
use crate::models::invitations::Invitation;
use crate::models::partners::Partner;

/// What the invitation emails show.
struct InvitationView<'a> {
    partner_name: &'a str,
    sender_name: &'a str,
    logo_url: &'a str,
    accent_colour: &'a str,
    catalog_name: &'a str,
    description: &'a str,
    accept_url: String,
    decline_url: String,
    expires: String,
    support_email: &'a str,
    reminder: bool,
}

#[derive(Template)]
#[template(path = "email/invitation.txt")]
struct InvitationText<'a> {
    v: &'a InvitationView<'a>,
}

#[derive(Template)]
#[template(path = "email/invitation.html")]
struct InvitationHtml<'a> {
    v: &'a InvitationView<'a>,
}

/// The invitation (or its reminder); the link's secret is spliced in at sending.
pub fn invitation(
    base_url: &str,
    partner: &Partner,
    catalog: &Catalog,
    invitation: &Invitation,
    secret: &str,
    reminder: bool,
) -> Result<OutgoingEmail> {
    let mut email =
        invitation_to_anyone(base_url, partner, catalog, invitation.expires_at, reminder)?;
    email.to = invitation.email.clone();
    email.invitation_id = Some(invitation.id);
    email.secret = Some(secret.to_string());
    Ok(email)
}

/// The invitation as every recipient of a batch gets it (its body names no recipient);
/// the caller fills in the recipient, the invitation and the secret.
pub fn invitation_to_anyone(
    base_url: &str,
    partner: &Partner,
    catalog: &Catalog,
    expires_at: chrono::DateTime<chrono::Utc>,
    reminder: bool,
) -> Result<OutgoingEmail> {
    let sender_name = if partner.email_sender_name.is_empty() {
        &partner.name
    } else {
        &partner.email_sender_name
    };
    let support_email = if !catalog.support_email.is_empty() {
        &catalog.support_email
    } else {
        &partner.support_email
    };
    let expires = expires_at
        .with_timezone(&partner.tz())
        .format("%-d %B %Y at %H:%M %Z")
        .to_string();
    let view = InvitationView {
        partner_name: &partner.name,
        sender_name,
        logo_url: &partner.logo_url,
        accent_colour: &partner.accent_colour,
        catalog_name: &catalog.name,
        description: &catalog.description,
        accept_url: format!("{base_url}/invitations/{SECRET_MARKER}"),
        decline_url: format!("{base_url}/invitations/{SECRET_MARKER}/decline"),
        expires,
        support_email,
        reminder,
    };
    let render_failed =
        |e: askama::Error| Error::internal(anyhow::anyhow!("rendering the invitation email: {e}"));
    let subject = if reminder {
        format!("Reminder: your invitation to {} expires soon", catalog.name)
    } else {
        format!("You are invited to {} by {}", catalog.name, partner.name)
    };
    Ok(OutgoingEmail {
        kind: if reminder {
            "invitation_reminder"
        } else {
            "invitation"
        },
        to: String::new(),
        from_name: sender_name.to_string(),
        reply_to: (!support_email.is_empty()).then(|| support_email.to_string()),
        subject,
        text_body: InvitationText { v: &view }
            .render()
            .map_err(render_failed)?,
        html_body: InvitationHtml { v: &view }
            .render()
            .map_err(render_failed)?,
        secret: None,
        partner_id: Some(partner.id),
        invitation_id: None,
    })
}

/// An account email: a one-time link (verify an address, reset a password, claim a
/// manager role) or a notice with a plain link to a page.
struct ActionView<'a> {
    subject: &'a str,
    name: &'a str,
    intro: String,
    button: &'a str,
    url: String,
    /// Until when a one-time link works; notices carry none.
    expires: Option<String>,
    outro: &'a str,
}

#[derive(Template)]
#[template(path = "email/action.txt")]
struct ActionText<'a> {
    v: &'a ActionView<'a>,
}

#[derive(Template)]
#[template(path = "email/action.html")]
struct ActionHtml<'a> {
    v: &'a ActionView<'a>,
}

/// Which account link to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountLink {
    VerifyEmail,
    ChangeEmail,
    ResetPassword,
    /// A manager role waiting for its person: set a password to take it on.
    ClaimManager {
        partner_name: String,
    },
}

fn render_action(
    view: &ActionView<'_>,
    kind: &'static str,
    to: &str,
    secret: Option<&str>,
) -> Result<OutgoingEmail> {
    let render_failed =
        |e: askama::Error| Error::internal(anyhow::anyhow!("rendering an account email: {e}"));
    Ok(OutgoingEmail {
        kind,
        to: to.to_string(),
        from_name: String::new(),
        reply_to: None,
        subject: view.subject.to_string(),
        text_body: ActionText { v: view }.render().map_err(render_failed)?,
        html_body: ActionHtml { v: view }.render().map_err(render_failed)?,
        secret: secret.map(str::to_string),
        partner_id: None,
        invitation_id: None,
    })
}

pub fn account_link(
    base_url: &str,
    kind: &AccountLink,
    to: &str,
    name: &str,
    secret: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<OutgoingEmail> {
    let (subject, intro, button, path, outro, kind_name) = match kind {
        AccountLink::VerifyEmail => (
            "Confirm your email address",
            "Please confirm that this is your email address. Catalogs that accept addresses like yours become available once it is confirmed.".to_string(),
            "Confirm my email address",
            "verify-email",
            "If you did not create this account, do not confirm it: ignore this email, and the account stays unconfirmed and can do nothing in your name.",
            "verify_email",
        ),
        AccountLink::ChangeEmail => (
            "Confirm your new email address",
            "You asked to use this address for your account. Confirm it to make the change.".to_string(),
            "Confirm the new address",
            "verify-email",
            "If you did not ask for this, do not confirm it: ignore this email, and nothing changes.",
            "change_email",
        ),
        AccountLink::ResetPassword => (
            "Choose a new password",
            "Someone asked to reset the password of your account. Choose a new password with the link below; every other signed-in session then ends.".to_string(),
            "Choose a new password",
            "password/reset",
            "If it was not you, ignore this email: your password stays as it is.",
            "reset_password",
        ),
        AccountLink::ClaimManager { partner_name } => (
            "You have been made a partner manager",
            format!("You have been made a manager of {partner_name} on Partner Catalog. Choose your password with the link below to take on the role."),
            "Choose my password",
            "manager/claim",
            "If you did not expect this, ignore this email: the role stays unclaimed.",
            "claim_manager",
        ),
    };
    let view = ActionView {
        subject,
        name,
        intro,
        button,
        url: format!("{base_url}/{path}/{SECRET_MARKER}"),
        expires: Some(expires_at.format("%-d %B %Y at %H:%M UTC").to_string()),
        outro,
    };
    render_action(&view, kind_name, to, Some(secret))
}

/// Emails that tell the owner of an address something, with no secret in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountNotice {
    /// Someone tried to sign up with an address that already has an account.
    SignUpWithExistingAddress,
    /// Sign-ins to the account failed often enough to be throttled.
    SignInAttempts { client_ip: String, failures: usize },
    /// Someone asked to move another account to an address that already has one.
    EmailChangeToExistingAddress,
}

impl AccountNotice {
    /// The outbox's name for this kind of email.
    pub fn kind(&self) -> &'static str {
        match self {
            AccountNotice::SignUpWithExistingAddress => "sign_up_existing",
            AccountNotice::SignInAttempts { .. } => "sign_in_warning",
            AccountNotice::EmailChangeToExistingAddress => "email_change_existing",
        }
    }
}

pub fn account_notice(
    base_url: &str,
    notice: &AccountNotice,
    to: &str,
    name: &str,
) -> Result<OutgoingEmail> {
    let (subject, intro, button, path, outro) = match notice {
        AccountNotice::SignUpWithExistingAddress => (
            "Someone tried to create an account with your address",
            "Someone tried to create a new account with this email address, which already has an account. If it was you, sign in, or choose a new password if you have forgotten it.".to_string(),
            "Choose a new password",
            "password/forgot",
            "If it was not you, ignore this email: nothing was created and your account is unchanged.",
        ),
        AccountNotice::SignInAttempts { client_ip, failures } => (
            "Failed sign-ins to your account",
            format!("There were {failures} failed attempts to sign in to your account from the address {client_ip}. Sign-ins from there are paused for a while; you can still sign in from elsewhere."),
            "Choose a new password",
            "password/forgot",
            "If it was you, there is nothing to do. If not, choosing a new password ends every signed-in session.",
        ),
        AccountNotice::EmailChangeToExistingAddress => (
            "Someone tried to use your address on another account",
            "Someone signed in to another account asked to change its email address to this one. This address already has an account, yours, so nothing was changed.".to_string(),
            "Sign in",
            "login",
            "If it was you, sign in with this address instead. If not, ignore this email: your account is unchanged.",
        ),
    };
    let view = ActionView {
        subject,
        name,
        intro,
        button,
        url: format!("{base_url}/{path}"),
        expires: None,
        outro,
    };
    render_action(&view, notice.kind(), to, None)
}

/// Tells the submitter of a bulk list what staff decided, and why when they refused it.
pub fn bulk_decision(
    base_url: &str,
    submitter: &crate::models::users::User,
    partner: &Partner,
    catalog: &Catalog,
    job: &crate::models::bulk::BulkJob,
    approved: bool,
    reason: Option<&str>,
) -> Result<OutgoingEmail> {
    let what = if job.kind == "pre_enroll" {
        "pre-enrolment"
    } else {
        "invitation"
    };
    let rows = job.total_rows;
    let (subject, intro) = if approved {
        (
            format!("Your bulk {what} was approved"),
            format!(
                "Your bulk {what} of {rows} rows for {} was approved and is running now. Its page shows the progress, and each row's outcome once it is done.",
                catalog.name
            ),
        )
    } else {
        (
            format!("Your bulk {what} was not approved"),
            format!(
                "Your bulk {what} of {rows} rows for {} was not approved, so nobody was contacted. The reason given: {}",
                catalog.name,
                reason.unwrap_or("none")
            ),
        )
    };
    let view = ActionView {
        subject: &subject,
        name: &submitter.full_name,
        intro,
        button: "Open the job",
        url: format!(
            "{base_url}/partner/{}/catalogs/{}/bulk/{}",
            partner.code, catalog.id, job.id
        ),
        expires: None,
        outro: "You received this because you submitted the list.",
    };
    let mut email = render_action(&view, "bulk_decision", &submitter.email, None)?;
    email.partner_id = Some(partner.id);
    Ok(email)
}
