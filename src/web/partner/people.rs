//! Invitations, learners, licences and exports of one catalog.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::{ReasonForm, catalog_scope_in, local, local_opt, scope};
use crate::db::Db;
use crate::domain::InvitationStatus;
use crate::error::{Error, FieldErrors};
use crate::models::catalogs::Catalog;
use crate::models::courses::Course;
use crate::models::enrollments::LicenceRow;
use crate::models::invitations::{Invitation, InvitationFilter};
use crate::models::partners::Partner;
use crate::models::{PageRequest, Paginated};
use crate::services::console::{
    self, InviteReport, InviteWarnings, LearnerListing, MAX_PASTED_INVITATIONS,
};
use crate::services::exports::{self, ExportKind};
use crate::services::{ServiceContext, enrollments, invitations};
use crate::web::auth::{ManagerOrStaff, with_role};
use crate::web::error::AppError;
use crate::web::page::{Page, Pager, render, render_invalid, see_other};
use crate::web::session::TypedSession;

/// The least time between two sends of one invitation, as the services apply it.
fn resend_interval(req: &HttpRequest) -> chrono::Duration {
    req.app_data::<web::Data<ServiceContext>>()
        .map_or(chrono::Duration::zero(), |ctx| ctx.resend_interval)
}

fn base(partner: &Partner, catalog_id: i64) -> String {
    format!("/partner/{}/catalogs/{catalog_id}", partner.code)
}

#[derive(Template)]
#[template(path = "partner/invitations.html")]
struct InvitationsPage {
    page: Page,
    partner: Partner,
    catalog: Catalog,
    list: Paginated<Invitation>,
    pager: Pager,
    status_filter: String,
    search: String,
    emails: String,
    errors: FieldErrors,
    report: Option<InviteReport>,
    warnings: Option<InviteWarnings>,
    max_pasted: usize,
    now: chrono::DateTime<chrono::Utc>,
    resend_interval: chrono::Duration,
}

impl InvitationsPage {
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        local(&self.partner, at)
    }
    fn when_opt(&self, at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
        local_opt(&self.partner, at)
    }
    fn invite_hint(&self) -> String {
        format!(
            "One address or a list of up to {}, one per line or separated by commas.",
            self.max_pasted
        )
    }
    fn status_selected(&self, status: &str) -> bool {
        self.status_filter == status
    }
    fn status(&self, invitation: &Invitation) -> InvitationStatus {
        invitation.status_at(self.now)
    }
    /// When an invitation just sent may be sent again, if not yet.
    fn resend_at(&self, invitation: &Invitation) -> Option<String> {
        let at = invitation.last_sent_at? + self.resend_interval;
        (at > self.now).then(|| local(&self.partner, &at))
    }
}

#[derive(Deserialize)]
struct InvitationQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

/// The invite form as it is shown again: what was typed, what was wrong with it, what
/// was sent, or what to know before sending.
#[derive(Default)]
struct TypedInvites {
    emails: String,
    errors: FieldErrors,
    report: Option<InviteReport>,
    warnings: Option<InviteWarnings>,
}

/// The invitations page's data: its partner, catalog and page of the list.
type InvitationsData = (Partner, Catalog, Paginated<Invitation>);

/// Reads the invitations page's data in one unit of work.
fn invitations_data(
    req: &HttpRequest,
    (code, id): (String, i64),
    query: &InvitationQuery,
) -> impl FnOnce(&mut diesel::PgConnection, &ManagerOrStaff) -> crate::error::Result<InvitationsData>
+ Clone
+ Send
+ 'static {
    let filter = InvitationFilter {
        status: InvitationStatus::parse(query.status.trim()),
        search: query.q.clone(),
    };
    let request = PageRequest::new(query.page, None)
        .at(crate::web::page::ListPosition::from_query(req.query_string()).0);
    move |conn, who| {
        let actor = who.actor();
        let (partner, catalog) = catalog_scope_in(conn, &actor, &code, id)?;
        let list = console::invitations(conn, &actor, &catalog, &filter, request)?;
        Ok((partner, catalog, list))
    }
}

async fn invitations_page(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    path: (String, i64),
    query: &InvitationQuery,
    typed: TypedInvites,
) -> Result<InvitationsPage, AppError> {
    let (read, for_who) = (invitations_data(req, path, query), who.clone());
    let data = db.run(move |conn| read(conn, &for_who)).await?;
    Ok(show_invitations(req, who, data, query, typed))
}

fn show_invitations(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    (partner, catalog, list): InvitationsData,
    query: &InvitationQuery,
    typed: TypedInvites,
) -> InvitationsPage {
    let TypedInvites {
        emails,
        errors,
        report,
        warnings,
    } = typed;
    let id = catalog.id;
    let status = InvitationStatus::parse(query.status.trim());
    let status_text = status.map(|s| s.as_str()).unwrap_or("");
    let pager = Pager::new(
        &list,
        &format!("{}/invitations", base(&partner, id)),
        &[("status", status_text), ("q", &query.q)],
    );
    InvitationsPage {
        page: Page::for_request(req, Some(&who.identity)),
        partner,
        catalog,
        list,
        pager,
        status_filter: status_text.to_string(),
        search: query.q.clone(),
        emails,
        errors,
        report,
        warnings,
        max_pasted: MAX_PASTED_INVITATIONS,
        now: chrono::Utc::now(),
        resend_interval: resend_interval(req),
    }
}

#[get("/catalogs/{id}/invitations")]
async fn list_invitations(
    req: HttpRequest,
    path: web::Path<(String, i64)>,
    query: web::Query<InvitationQuery>,
) -> Result<HttpResponse, AppError> {
    let (who, data) = with_role(&req, invitations_data(&req, path.into_inner(), &query)).await?;
    render(&show_invitations(
        &req,
        &who,
        data,
        &query,
        TypedInvites::default(),
    ))
}

#[derive(Deserialize)]
struct InviteForm {
    #[serde(default)]
    emails: String,
    /// Set by "Send anyway" once the warnings were shown.
    #[serde(default)]
    confirmed: String,
}

#[post("/catalogs/{id}/invitations")]
async fn invite(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<(String, i64)>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (code, id) = path.into_inner();
    let (_, catalog) = scope(&db, &actor, code.clone(), Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let form = form.into_inner();
    let text = form.emails;
    let query = InvitationQuery {
        status: String::new(),
        q: String::new(),
        page: None,
    };
    // Before sending: what the manager should know, asked once.
    if form.confirmed != "1" {
        let (check_actor, check_catalog, typed) = (actor.clone(), catalog.clone(), text.clone());
        let warnings = db
            .run(move |conn| console::invite_warnings(conn, &check_actor, &check_catalog, &typed))
            .await?;
        if !warnings.is_empty() {
            let shown = TypedInvites {
                emails: text,
                warnings: Some(warnings),
                ..TypedInvites::default()
            };
            return render(&invitations_page(&req, &who, &db, (code, id), &query, shown).await?);
        }
    }
    let (typed, ctx) = (text.clone(), ctx.get_ref().clone());
    let outcome = db
        .transaction(move |conn| console::invite_many(conn, &ctx, &actor, &catalog, &typed))
        .await;
    let (shown, status) = match outcome {
        // Every address with its outcome; what was not sent stays in the box to correct.
        Ok(report) => (
            TypedInvites {
                emails: report.not_sent_addresses(),
                report: Some(report),
                ..TypedInvites::default()
            },
            actix_web::http::StatusCode::OK,
        ),
        Err(Error::Invalid(errors)) => (
            TypedInvites {
                emails: text,
                errors,
                ..TypedInvites::default()
            },
            actix_web::http::StatusCode::BAD_REQUEST,
        ),
        Err(e @ Error::CatalogUnavailable(_)) => (
            TypedInvites {
                emails: text,
                errors: FieldErrors::single("emails", e.public_message()),
                ..TypedInvites::default()
            },
            actix_web::http::StatusCode::CONFLICT,
        ),
        Err(e) => return Err(e.into()),
    };
    let page = invitations_page(&req, &who, &db, (code, id), &query, shown).await?;
    crate::web::page::render_status(status, &page)
}

#[post("/catalogs/{id}/invitations/{invitation_id}/resend")]
async fn resend(
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (code, id, invitation_id) = path.into_inner();
    let (partner, catalog) = scope(&db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let ctx = ctx.get_ref().clone();
    let outcome = db
        .transaction(move |conn| {
            console::invitation_in(conn, &actor, &catalog, invitation_id)?;
            invitations::resend(conn, &ctx, &actor, invitation_id)
        })
        .await;
    match outcome {
        Ok(sent) => session.success(format!(
            "Invitation sent again to {}.",
            sent.invitation.email
        )),
        Err(
            e @ (Error::InvalidTransition(_)
            | Error::TooManyRequests(_)
            | Error::CatalogUnavailable(_)),
        ) => session.error(e.public_message()),
        Err(e) => return Err(e.into()),
    }
    // Back to the row that changed, so keyboard and screen-reader users stay in place.
    Ok(see_other(&format!(
        "{}/invitations#invitation-{invitation_id}",
        base(&partner, id)
    )))
}

#[derive(Template)]
#[template(path = "partner/confirm.html")]
pub(super) struct ConfirmPage {
    pub(super) page: Page,
    pub(super) partner: Partner,
    pub(super) catalog: Catalog,
    pub(super) title: String,
    pub(super) question: String,
    pub(super) action: String,
    pub(super) button: String,
    pub(super) back: String,
    /// The reason as typed, and what was wrong with it, when the page is shown again.
    pub(super) reason: String,
    pub(super) errors: FieldErrors,
}

/// What was typed into a confirmation, shown again when it was refused.
#[derive(Default)]
pub(super) struct TypedReason {
    pub(super) reason: String,
    pub(super) errors: FieldErrors,
}

#[get("/catalogs/{id}/invitations/{invitation_id}/remove")]
async fn confirm_remove_invitation(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let page = invitation_removal_page(&req, &who, &db, path.into_inner(), TypedReason::default());
    render(&page.await?)
}

async fn invitation_removal_page(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    (code, id, invitation_id): (String, i64, i64),
    typed: TypedReason,
) -> Result<ConfirmPage, AppError> {
    let actor = who.actor();
    let (partner, catalog) = scope(db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let for_catalog = catalog.clone();
    let invitation = db
        .run(move |conn| console::invitation_in(conn, &actor, &for_catalog, invitation_id))
        .await?;
    let accepted = invitation.status() == InvitationStatus::Accepted;
    let back = format!("{}/invitations", base(&partner, id));
    Ok(ConfirmPage {
        page: Page::for_request(req, Some(&who.identity)),
        reason: typed.reason,
        errors: typed.errors,
        title: if accepted {
            "Remove a learner".into()
        } else {
            "Revoke an invitation".into()
        },
        question: if accepted {
            format!(
                "Remove {} from {}? They lose access to the catalog, and the paid seats this catalog gave them are released (their enrolments go back to free access).",
                invitation.email, catalog.name
            )
        } else {
            format!(
                "Revoke the invitation sent to {}? Its link will stop working.",
                invitation.email
            )
        },
        action: format!("{}/invitations/{invitation_id}/remove", base(&partner, id)),
        button: if accepted {
            "Remove learner".into()
        } else {
            "Revoke invitation".into()
        },
        back,
        partner,
        catalog,
    })
}

#[post("/catalogs/{id}/invitations/{invitation_id}/remove")]
async fn remove_invitation(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let ids = path.into_inner();
    let (code, id, invitation_id) = ids.clone();
    let (partner, catalog) = scope(&db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let reason = form.into_inner().reason;
    let typed = reason.clone();
    let outcome = db
        .transaction(move |conn| {
            console::invitation_in(conn, &actor, &catalog, invitation_id)?;
            invitations::remove(conn, &actor, invitation_id, Some(&typed))
        })
        .await;
    match outcome {
        Err(Error::Invalid(errors)) => {
            let typed = TypedReason { reason, errors };
            return render_invalid(&invitation_removal_page(&req, &who, &db, ids, typed).await?);
        }
        Ok(removed) if removed.accepted_at.is_some() => {
            session.success(format!("{} was removed from the catalog.", removed.email))
        }
        Ok(revoked) => session.success(format!(
            "The invitation to {} was revoked; its link no longer works.",
            revoked.email
        )),
        Err(e @ Error::InvalidTransition(_)) => session.error(e.public_message()),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&format!("{}/invitations", base(&partner, id))))
}

#[derive(Template)]
#[template(path = "partner/learners.html")]
struct LearnersPage {
    page: Page,
    partner: Partner,
    catalog: Catalog,
    list: Paginated<LearnerListing>,
    pager: Pager,
    status_filter: String,
    search: String,
}

impl LearnersPage {
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        local(&self.partner, at)
    }
    fn when_opt(&self, at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
        local_opt(&self.partner, at)
    }
}

#[derive(Deserialize)]
struct LearnerQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

#[get("/catalogs/{id}/learners")]
async fn learners(
    req: HttpRequest,
    path: web::Path<(String, i64)>,
    query: web::Query<LearnerQuery>,
    position: crate::web::page::ListPosition,
) -> Result<HttpResponse, AppError> {
    let (code, id) = path.into_inner();
    let active = match query.status.as_str() {
        "active" => Some(true),
        "removed" => Some(false),
        _ => None,
    };
    let (search, request) = (
        query.q.clone(),
        PageRequest::new(query.page, None).at(position.0),
    );
    let (who, (partner, catalog, list)) = with_role(&req, move |conn, who: &ManagerOrStaff| {
        let actor = who.actor();
        let (partner, catalog) = catalog_scope_in(conn, &actor, &code, id)?;
        let list = console::learners(conn, &actor, &catalog, active, &search, request)?;
        Ok((partner, catalog, list))
    })
    .await?;
    let page = Page::for_request(&req, Some(&who.identity));
    let status_filter = if active.is_some() {
        query.status.clone()
    } else {
        String::new()
    };
    let pager = Pager::new(
        &list,
        &format!("{}/learners", base(&partner, id)),
        &[("status", &status_filter), ("q", &query.q)],
    );
    render(&LearnersPage {
        page,
        partner,
        catalog,
        list,
        pager,
        status_filter,
        search: query.q.clone(),
    })
}

#[get("/catalogs/{id}/learners/{user_id}/remove")]
async fn confirm_remove_learner(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let page = learner_removal_page(&req, &who, &db, path.into_inner(), TypedReason::default());
    render(&page.await?)
}

async fn learner_removal_page(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    (code, id, user_id): (String, i64, i64),
    typed: TypedReason,
) -> Result<ConfirmPage, AppError> {
    let actor = who.actor();
    let (partner, catalog) = scope(db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let for_catalog = catalog.clone();
    let (_, email) = db
        .run(move |conn| console::learner_in(conn, &actor, &for_catalog, user_id))
        .await?;
    Ok(ConfirmPage {
        page: Page::for_request(req, Some(&who.identity)),
        reason: typed.reason,
        errors: typed.errors,
        title: "Remove a learner".into(),
        question: format!(
            "Remove {email} from {}? They lose access to the catalog, and the paid seats this catalog gave them are released.",
            catalog.name
        ),
        action: format!("{}/learners/{user_id}/remove", base(&partner, id)),
        button: "Remove learner".into(),
        back: format!("{}/learners", base(&partner, id)),
        partner,
        catalog,
    })
}

#[post("/catalogs/{id}/learners/{user_id}/remove")]
async fn remove_learner(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let ids = path.into_inner();
    let (code, id, user_id) = ids.clone();
    let (partner, _) = scope(&db, &actor, code, Some(id)).await?;
    let reason = form.into_inner().reason;
    let typed = reason.clone();
    let outcome = db
        .transaction(move |conn| {
            invitations::remove_learner(conn, &actor, id, user_id, Some(&typed))
        })
        .await;
    let removed = match outcome {
        Ok(removed) => removed,
        Err(Error::Invalid(errors)) => {
            let typed = TypedReason { reason, errors };
            return render_invalid(&learner_removal_page(&req, &who, &db, ids, typed).await?);
        }
        Err(e) => return Err(e.into()),
    };
    session.success(format!("{} removed.", removed.email));
    Ok(see_other(&format!("{}/learners", base(&partner, id))))
}

#[derive(Template)]
#[template(path = "partner/licences.html")]
struct LicencesPage {
    page: Page,
    partner: Partner,
    catalog: Catalog,
    courses: Vec<Course>,
    list: Paginated<LicenceRow>,
    pager: Pager,
    course_filter: Option<i64>,
    status_filter: String,
}

impl LicencesPage {
    fn course_selected(&self, id: &i64) -> bool {
        self.course_filter == Some(*id)
    }
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        local(&self.partner, at)
    }
}

#[derive(Deserialize)]
struct LicenceQuery {
    course: Option<String>,
    #[serde(default)]
    status: String,
    page: Option<i64>,
}

#[get("/catalogs/{id}/licences")]
async fn licences(
    req: HttpRequest,
    path: web::Path<(String, i64)>,
    query: web::Query<LicenceQuery>,
    position: crate::web::page::ListPosition,
) -> Result<HttpResponse, AppError> {
    let (code, id) = path.into_inner();
    let course_filter = query
        .course
        .as_deref()
        .and_then(|c| c.trim().parse::<i64>().ok());
    let active = match query.status.as_str() {
        "active" => Some(true),
        "inactive" => Some(false),
        _ => None,
    };
    let request = PageRequest::new(query.page, None).at(position.0);
    let (who, (partner, catalog, courses, list)) =
        with_role(&req, move |conn, who: &ManagerOrStaff| {
            let actor = who.actor();
            let (partner, catalog) = catalog_scope_in(conn, &actor, &code, id)?;
            let courses = crate::services::catalogs::courses_of(conn, &actor, &catalog)?
                .into_iter()
                .map(|(_, c)| c)
                .collect();
            let list = console::licences(conn, &actor, &catalog, course_filter, active, request)?;
            Ok((partner, catalog, courses, list))
        })
        .await?;
    let page = Page::for_request(&req, Some(&who.identity));
    let status_filter = if active.is_some() {
        query.status.clone()
    } else {
        String::new()
    };
    let course_text = course_filter.map(|c| c.to_string()).unwrap_or_default();
    let pager = Pager::new(
        &list,
        &format!("{}/licences", base(&partner, id)),
        &[("course", &course_text), ("status", &status_filter)],
    );
    render(&LicencesPage {
        page,
        partner,
        catalog,
        courses,
        list,
        pager,
        course_filter,
        status_filter,
    })
}

#[get("/catalogs/{id}/licences/{licence_id}/deactivate")]
async fn confirm_deactivate(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let page = deactivation_page(&req, &who, &db, path.into_inner(), TypedReason::default());
    render(&page.await?)
}

async fn deactivation_page(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    (code, id, licence_id): (String, i64, i64),
    typed: TypedReason,
) -> Result<ConfirmPage, AppError> {
    let actor = who.actor();
    let (partner, catalog) = scope(db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let for_catalog = catalog.clone();
    db.run(move |conn| console::licence_in(conn, &actor, &for_catalog, licence_id))
        .await?;
    Ok(ConfirmPage {
        page: Page::for_request(req, Some(&who.identity)),
        reason: typed.reason,
        errors: typed.errors,
        title: "Release a paid seat?".into(),
        question: "The learner keeps free access to the course (without a certificate), and the seat can go to someone else.".into(),
        action: format!("{}/licences/{licence_id}/deactivate", base(&partner, id)),
        button: "Release the seat".into(),
        back: format!("{}/licences", base(&partner, id)),
        partner,
        catalog,
    })
}

#[post("/catalogs/{id}/licences/{licence_id}/deactivate")]
async fn deactivate(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let ids = path.into_inner();
    let (code, id, licence_id) = ids.clone();
    let (partner, catalog) = scope(&db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let reason = form.into_inner().reason;
    let typed = reason.clone();
    let outcome = db
        .transaction(move |conn| {
            console::licence_in(conn, &actor, &catalog, licence_id)?;
            enrollments::deactivate_licence(conn, &actor, licence_id, Some(&typed))
        })
        .await;
    match outcome {
        Err(Error::Invalid(errors)) => {
            let typed = TypedReason { reason, errors };
            return render_invalid(&deactivation_page(&req, &who, &db, ids, typed).await?);
        }
        Ok(_) => session.success("Paid seat released."),
        Err(e @ Error::InvalidTransition(_)) => session.error(e.public_message()),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&format!("{}/licences", base(&partner, id))))
}

#[get("/catalogs/{id}/export/{kind}.csv")]
async fn export(
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, String)>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (code, id, kind) = path.into_inner();
    let kind = ExportKind::parse(&kind).ok_or(AppError::PageNotFound)?;
    let (_, catalog) = scope(&db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let receiver = exports::stream(&db, &actor, &catalog, kind)?;
    let filename = format!("{}-{}.csv", catalog.slug, kind.name());
    Ok(crate::web::page::csv_download(receiver, &filename))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_invitations)
        .service(invite)
        .service(resend)
        .service(confirm_remove_invitation)
        .service(remove_invitation)
        .service(learners)
        .service(confirm_remove_learner)
        .service(remove_learner)
        .service(licences)
        .service(confirm_deactivate)
        .service(deactivate)
        .service(export);
}
