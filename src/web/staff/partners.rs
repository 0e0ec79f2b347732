use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::ListQuery;
use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::models::Paginated;
use crate::models::organisations::Organisation;
use crate::models::partners::{Partner, PartnerRow};
use crate::models::users::User;
use crate::policies::Actor;
use crate::services::partners::ManagerAssignment;
use crate::services::partners::PartnerInput;
use crate::services::{ServiceContext, organisations, partners};
use crate::web::auth::Staff;
use crate::web::error::AppError;
use crate::web::page::{ConfirmPage, Page, Pager, render, render_invalid, see_other};
use crate::web::session::TypedSession;

#[derive(Template)]
#[template(path = "staff/partners.html")]
struct ListPage {
    page: Page,
    list: Paginated<PartnerRow>,
    pager: Pager,
    search: String,
}

/// The partner form; when editing, also its managers and the form assigning one.
#[derive(Template)]
#[template(path = "staff/partner_form.html")]
struct FormPage {
    page: Page,
    id: Option<i64>,
    input: PartnerInput,
    errors: FieldErrors,
    organisations: Vec<Organisation>,
    managers: Vec<(User, bool)>,
    manager_email: String,
    manager_errors: FieldErrors,
}

impl FormPage {
    fn is_selected(&self, organisation: &Organisation) -> bool {
        self.input.organisation_id.trim() == organisation.id.to_string()
    }
}

fn input_of(partner: Partner) -> PartnerInput {
    PartnerInput {
        organisation_id: partner.organisation_id.to_string(),
        code: partner.code,
        name: partner.name,
        homepage_url: partner.homepage_url,
        logo_url: partner.logo_url,
        accent_colour: partner.accent_colour,
        email_sender_name: partner.email_sender_name,
        support_email: partner.support_email,
        time_zone: partner.time_zone,
    }
}

/// What the form page shows besides the typed input: the organisations to choose from
/// and, for an existing partner, its managers.
async fn form_context(
    db: &Db,
    actor: Actor,
    id: Option<i64>,
) -> Result<(Vec<Organisation>, Vec<(User, bool)>), Error> {
    db.run(move |conn| {
        let all = organisations::all(conn, &actor)?;
        let managers = match id {
            Some(id) => partners::managers(conn, &actor, id)?,
            None => Vec::new(),
        };
        Ok((all, managers))
    })
    .await
}

#[get("/partners")]
async fn list(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    query: web::Query<ListQuery>,
    position: crate::web::page::ListPosition,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let (search, request) = (query.q.clone(), query.page_request(position));
    let list = db
        .run(move |conn| partners::list(conn, &actor, &search, request))
        .await?;
    let pager = Pager::new(&list, "/staff/partners", &[("q", &query.q)]);
    render(&ListPage {
        page,
        list,
        pager,
        search: query.q.clone(),
    })
}

#[get("/partners/new")]
async fn new_form(staff: Staff, page: Page, db: web::Data<Db>) -> Result<HttpResponse, AppError> {
    let (organisations, _) = form_context(&db, staff.0.actor(), None).await?;
    render(&FormPage {
        page,
        id: None,
        input: PartnerInput {
            time_zone: "UTC".into(),
            accent_colour: "#1f6feb".into(),
            ..PartnerInput::default()
        },
        errors: FieldErrors::new(),
        organisations,
        managers: Vec::new(),
        manager_email: String::new(),
        manager_errors: FieldErrors::new(),
    })
}

#[post("/partners")]
async fn create(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    form: web::Form<PartnerInput>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let input = form.into_inner();
    let submitted = input.clone();
    match db
        .transaction(move |conn| partners::create(conn, &actor, &submitted))
        .await
    {
        Ok(partner) => {
            session.success(format!(
                "Partner {} created. Assign its managers below.",
                partner.name
            ));
            Ok(see_other(&format!("/staff/partners/{}/edit", partner.id)))
        }
        Err(Error::Invalid(errors)) => {
            let (organisations, _) = form_context(&db, staff.0.actor(), None).await?;
            render_invalid(&FormPage {
                page: Page::for_request(&req, Some(&staff.0)),
                id: None,
                input,
                errors,
                organisations,
                managers: Vec::new(),
                manager_email: String::new(),
                manager_errors: FieldErrors::new(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

#[get("/partners/{id}/edit")]
async fn edit_form(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let partner = db.run(move |conn| partners::find(conn, &actor, id)).await?;
    let (organisations, managers) = form_context(&db, staff.0.actor(), Some(id)).await?;
    render(&FormPage {
        page,
        id: Some(id),
        input: input_of(partner),
        errors: FieldErrors::new(),
        organisations,
        managers,
        manager_email: String::new(),
        manager_errors: FieldErrors::new(),
    })
}

#[post("/partners/{id}")]
async fn update(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
    form: web::Form<PartnerInput>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let input = form.into_inner();
    let submitted = input.clone();
    match db
        .transaction(move |conn| partners::update(conn, &actor, id, &submitted))
        .await
    {
        Ok(partner) => {
            session.success(format!("Partner {} saved.", partner.name));
            Ok(see_other("/staff/partners"))
        }
        Err(Error::Invalid(errors)) => {
            let (organisations, managers) = form_context(&db, staff.0.actor(), Some(id)).await?;
            render_invalid(&FormPage {
                page: Page::for_request(&req, Some(&staff.0)),
                id: Some(id),
                input,
                errors,
                organisations,
                managers,
                manager_email: String::new(),
                manager_errors: FieldErrors::new(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct ManagerForm {
    #[serde(default)]
    email: String,
}

#[post("/partners/{id}/managers")]
async fn assign_manager(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    ctx: web::Data<ServiceContext>,
    path: web::Path<i64>,
    form: web::Form<ManagerForm>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let email = form.into_inner().email;
    let typed = email.clone();
    let ctx = ctx.get_ref().clone();
    match db
        .transaction(move |conn| partners::assign_manager(conn, &ctx, &actor, id, &typed))
        .await
    {
        Ok(assignment) => {
            session.success(match assignment {
                ManagerAssignment::Active(user) => {
                    format!("{} now manages this partner.", user.email)
                }
                ManagerAssignment::AwaitingClaim(user) => format!(
                    "We emailed {} a link to take on the role. It takes effect once they follow it and choose their password.",
                    user.email
                ),
                ManagerAssignment::LinkSentAgain(user) => format!(
                    "We emailed {} the link to take on the role again.",
                    user.email
                ),
            });
            Ok(see_other(&format!("/staff/partners/{id}/edit")))
        }
        Err(Error::Invalid(manager_errors)) => {
            let actor = staff.0.actor();
            let partner = db.run(move |conn| partners::find(conn, &actor, id)).await?;
            let (organisations, managers) = form_context(&db, staff.0.actor(), Some(id)).await?;
            render_invalid(&FormPage {
                page: Page::for_request(&req, Some(&staff.0)),
                id: Some(id),
                input: input_of(partner),
                errors: FieldErrors::new(),
                organisations,
                managers,
                manager_email: email,
                manager_errors,
            })
        }
        Err(e) => Err(e.into()),
    }
}

async fn manager_removal_page(
    req: &HttpRequest,
    staff: &Staff,
    db: &Db,
    (id, user_id): (i64, i64),
    (reason, errors): (String, FieldErrors),
) -> Result<ConfirmPage, AppError> {
    let actor = staff.0.actor();
    let (partner, manager) = db
        .run(move |conn| {
            let partner = partners::find(conn, &actor, id)?;
            let manager = partners::managers(conn, &actor, id)?
                .into_iter()
                .map(|(user, _)| user)
                .find(|user| user.id == user_id)
                .ok_or(Error::NotFound("manager"))?;
            Ok((partner, manager))
        })
        .await?;
    Ok(ConfirmPage {
        page: Page::for_request(req, Some(&staff.0)),
        title: format!("Remove {} as a manager of {}?", manager.email, partner.name),
        question: "They can no longer open this partner's console; their own account stays.".into(),
        action: format!("/staff/partners/{id}/managers/{user_id}/remove"),
        hidden: Vec::new(),
        button: "Remove the manager".into(),
        danger: true,
        back: format!("/staff/partners/{id}/edit"),
        reason,
        errors,
    })
}

#[get("/partners/{id}/managers/{user_id}/remove")]
async fn confirm_unassign_manager(
    req: HttpRequest,
    staff: Staff,
    db: web::Data<Db>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let page = manager_removal_page(
        &req,
        &staff,
        &db,
        path.into_inner(),
        (String::new(), FieldErrors::new()),
    )
    .await?;
    render(&page)
}

#[post("/partners/{id}/managers/{user_id}/remove")]
async fn unassign_manager(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(i64, i64)>,
    form: web::Form<super::ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let (id, user_id) = path.into_inner();
    let reason = form.into_inner().reason;
    let typed = reason.clone();
    match db
        .transaction(move |conn| {
            partners::unassign_manager(conn, &actor, id, user_id, Some(&typed))
        })
        .await
    {
        Ok(()) => {
            session.success("The manager was removed from this partner.");
            Ok(see_other(&format!("/staff/partners/{id}/edit")))
        }
        Err(Error::Invalid(errors)) => render_invalid(
            &manager_removal_page(&req, &staff, &db, (id, user_id), (reason, errors)).await?,
        ),
        Err(e) => Err(e.into()),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(new_form)
        .service(create)
        .service(edit_form)
        .service(update)
        .service(assign_manager)
        .service(confirm_unassign_manager)
        .service(unassign_manager);
}
