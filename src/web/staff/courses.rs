use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::{DateTime, Timelike, Utc};
use serde::Deserialize;

use crate::db::Db;
use crate::domain::course_import::RowError;
use crate::error::{Error, FieldErrors};
use crate::models::Paginated;
use crate::models::courses::{Course, CourseRow};
use crate::models::organisations::Organisation;
use crate::policies::Actor;
use crate::services::courses::{self, CourseInput, ImportRejected};
use crate::services::organisations;
use crate::web::auth::Staff;
use crate::web::error::AppError;
use crate::web::page::{Page, Pager, format_date, render, render_invalid, see_other};
use crate::web::session::TypedSession;

#[derive(Debug, Default, Deserialize)]
struct CourseListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    shared: String,
    page: Option<i64>,
}

impl CourseListQuery {
    fn shared_only(&self) -> bool {
        self.shared == "1"
    }
}

#[derive(Template)]
#[template(path = "staff/courses.html")]
struct ListPage {
    page: Page,
    list: Paginated<CourseRow>,
    pager: Pager,
    search: String,
    shared_only: bool,
}

impl ListPage {
    fn date(&self, value: &Option<DateTime<Utc>>) -> String {
        format_date(value)
    }
}

#[derive(Template)]
#[template(path = "staff/course_form.html")]
struct FormPage {
    page: Page,
    id: Option<i64>,
    input: CourseInput,
    errors: FieldErrors,
    organisations: Vec<Organisation>,
}

impl FormPage {
    fn is_selected(&self, organisation: &Organisation) -> bool {
        self.input.organisation_id.trim() == organisation.id.to_string()
    }
}

#[derive(Template)]
#[template(path = "staff/course_import.html")]
struct ImportPage {
    page: Page,
    csv: String,
    errors: Vec<RowError>,
}

/// Dates as the form accepts them: a bare date at midnight, otherwise RFC 3339.
fn date_input(value: Option<DateTime<Utc>>) -> String {
    match value {
        None => String::new(),
        Some(at) if at.num_seconds_from_midnight() == 0 => at.format("%Y-%m-%d").to_string(),
        Some(at) => at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

fn input_of(course: Course) -> CourseInput {
    CourseInput {
        key: course.key,
        title: course.title,
        organisation_id: course.organisation_id.to_string(),
        modes: course.modes.join(" "),
        starts_at: date_input(course.starts_at),
        ends_at: date_input(course.ends_at),
    }
}

async fn all_organisations(db: &Db, actor: Actor) -> Result<Vec<Organisation>, Error> {
    db.run(move |conn| organisations::all(conn, &actor)).await
}

#[get("/courses")]
async fn list(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    query: web::Query<CourseListQuery>,
    position: crate::web::page::ListPosition,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let shared_only = query.shared_only();
    let (search, request) = (
        query.q.clone(),
        crate::models::PageRequest::new(query.page, None).at(position.0),
    );
    let list = db
        .run(move |conn| courses::list(conn, &actor, &search, shared_only, request))
        .await?;
    let shared = if shared_only { "1" } else { "" };
    let pager = Pager::new(
        &list,
        "/staff/courses",
        &[("q", &query.q), ("shared", shared)],
    );
    render(&ListPage {
        page,
        list,
        pager,
        search: query.q.clone(),
        shared_only,
    })
}

#[get("/courses/new")]
async fn new_form(staff: Staff, page: Page, db: web::Data<Db>) -> Result<HttpResponse, AppError> {
    let organisations = all_organisations(&db, staff.0.actor()).await?;
    render(&FormPage {
        page,
        id: None,
        input: CourseInput {
            modes: "audit".into(),
            ..CourseInput::default()
        },
        errors: FieldErrors::new(),
        organisations,
    })
}

#[post("/courses")]
async fn create(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    form: web::Form<CourseInput>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let input = form.into_inner();
    let submitted = input.clone();
    match db
        .transaction(move |conn| courses::create(conn, &actor, &submitted))
        .await
    {
        Ok(course) => {
            session.success(format!("Course {} created.", course.title));
            Ok(see_other("/staff/courses"))
        }
        Err(Error::Invalid(errors)) => render_invalid(&FormPage {
            page: Page::for_request(&req, Some(&staff.0)),
            id: None,
            input,
            errors,
            organisations: all_organisations(&db, staff.0.actor()).await?,
        }),
        Err(e) => Err(e.into()),
    }
}

#[get("/courses/{id}/edit")]
async fn edit_form(
    staff: Staff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let course = db.run(move |conn| courses::find(conn, &actor, id)).await?;
    render(&FormPage {
        page,
        id: Some(id),
        input: input_of(course),
        errors: FieldErrors::new(),
        organisations: all_organisations(&db, staff.0.actor()).await?,
    })
}

#[post("/courses/{id}")]
async fn update(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
    form: web::Form<CourseInput>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let input = form.into_inner();
    let submitted = input.clone();
    match db
        .transaction(move |conn| courses::update(conn, &actor, id, &submitted))
        .await
    {
        Ok(course) => {
            session.success(format!("Course {} saved.", course.title));
            Ok(see_other("/staff/courses"))
        }
        Err(Error::Invalid(errors)) => render_invalid(&FormPage {
            page: Page::for_request(&req, Some(&staff.0)),
            id: Some(id),
            input,
            errors,
            organisations: all_organisations(&db, staff.0.actor()).await?,
        }),
        Err(e) => Err(e.into()),
    }
}

#[get("/courses/import")]
async fn import_form(_staff: Staff, page: Page) -> Result<HttpResponse, AppError> {
    render(&ImportPage {
        page,
        csv: String::new(),
        errors: Vec::new(),
    })
}

#[derive(Debug, Deserialize)]
struct ImportForm {
    #[serde(default)]
    csv: String,
}

#[post("/courses/import")]
async fn import(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    form: web::Form<ImportForm>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let csv = form.into_inner().csv;
    let submitted = csv.clone();
    let outcome = db
        .transaction(move |conn| courses::import_csv(conn, &actor, &submitted))
        .await?;
    match outcome {
        Ok(created) => {
            let count = created.len();
            session.success(format!(
                "Imported {count} course{}.",
                if count == 1 { "" } else { "s" }
            ));
            Ok(see_other("/staff/courses"))
        }
        Err(ImportRejected(errors)) => render_invalid(&ImportPage {
            page: Page::for_request(&req, Some(&staff.0)),
            csv,
            errors,
        }),
    }
}

#[derive(Debug, Deserialize)]
struct SharedForm {
    #[serde(default)]
    shared: String,
}

#[post("/courses/{id}/shared")]
async fn set_shared(
    req: HttpRequest,
    staff: Staff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<i64>,
    form: web::Form<SharedForm>,
) -> Result<HttpResponse, AppError> {
    let actor = staff.0.actor();
    let id = path.into_inner();
    let shared = form.shared == "1";
    db.transaction(move |conn| courses::set_shared(conn, &actor, id, shared))
        .await?;
    session.success(if shared {
        "The course is now in the shared pool: every partner's catalogs may offer it."
    } else {
        "The course was taken out of the shared pool."
    });
    // Back to the list the button was pressed on, when it was ours.
    let back = req
        .headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("/staff/courses").map(|i| r[i..].to_string()))
        .unwrap_or_else(|| "/staff/courses".to_string());
    Ok(see_other(&back))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The import routes come before `{id}` so "import" is never read as an id.
    cfg.service(list)
        .service(new_form)
        .service(create)
        .service(import_form)
        .service(import)
        .service(edit_form)
        .service(update)
        .service(set_shared);
}
