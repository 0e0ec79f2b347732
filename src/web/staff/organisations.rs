use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::ListQuery;
use crate::db::Db;
use crate::error::{Error, FieldErrors};
use crate::models::Paginated;
use crate::models::organisations::Organisation;
use crate::services::organisations::{self, OrganisationInput};
use crate::web::auth::Staff;
use crate::web::error::AppError;
use crate::web::page::{Page, Pager, render, render_invalid, see_other};
use crate::web::session::TypedSession;

#[derive(Template)]
#[template(path = "staff/organisations.html")]
struct ListPage {
    page: Page,
    list: Paginated<Organisation>,
    pager: Pager,
    search: String,
}

#[derive(Template)]
#[template(path = "staff/organisation_form.html")]
struct FormPage {
    page: Page,
    id: Option<i64>,
    input: OrganisationInput,
    errors: FieldErrors,
}

#[get("/organisations")]
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
        .run(move |conn| organisations::list(conn, &actor, &search, request))
        .await?;
    let pager = Pager::new(&list, "/staff/organisations", &[("q", &query.q)]);
    render(&ListPage {
        page,
        list,
        pager,
        search: query.q.clone(),
    })
}

#[get("/organisations/new")]
async fn new_form(_staff: Staff, page: Page) -> Result<HttpResponse, AppError> {
    render(&FormPage {
        page,
        id: None,
        input: OrganisationInput::default(),
        errors: FieldErrors::new(),
    })
}

#[post("/organisations")]
async fn create(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    form: web::Form<OrganisationInput>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let input = form.into_inner();
    let submitted = input.clone();
    match db
        .transaction(move |conn| organisations::create(conn, &actor, &submitted))
        .await
    {
        Ok(organisation) => {
            session.success(format!("Organisation {} created.", organisation.short_name));
            Ok(see_other("/staff/organisations"))
        }
        Err(Error::Invalid(errors)) => render_invalid(&FormPage {
            page: Page::for_request(&req, Some(&staff.0)),
            id: None,
            input,
            errors,
        }),
        Err(e) => Err(e.into()),
    }
}

#[get("/organisations/{id}/edit")]
async fn edit_form(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let organisation = db
        .run(move |conn| organisations::find(conn, &actor, id))
        .await?;
    let input = OrganisationInput {
        short_name: organisation.short_name,
        name: organisation.name,
    };
    render(&FormPage {
        page,
        id: Some(id),
        input,
        errors: FieldErrors::new(),
    })
}

#[post("/organisations/{id}")]
async fn update(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
    form: web::Form<OrganisationInput>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let input = form.into_inner();
    let submitted = input.clone();
    match db
        .transaction(move |conn| organisations::update(conn, &actor, id, &submitted))
        .await
    {
        Ok(organisation) => {
            session.success(format!("Organisation {} saved.", organisation.short_name));
            Ok(see_other("/staff/organisations"))
        }
        Err(Error::Invalid(errors)) => render_invalid(&FormPage {
            page: Page::for_request(&req, Some(&staff.0)),
            id: Some(id),
            input,
            errors,
        }),
        Err(e) => Err(e.into()),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(new_form)
        .service(create)
        .service(edit_form)
        .service(update);
}
