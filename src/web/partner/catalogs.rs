use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::{local, percent, scope, scope_in};
use crate::db::Db;
use crate::domain::EmailPatterns;
use crate::error::{Error, FieldErrors};
use crate::models::catalogs::{Catalog, CatalogCourse};
use crate::models::courses::Course;
use crate::models::partners::Partner;
use crate::models::{PageRequest, Paginated};
use crate::services::audit::AuditLine;
use crate::services::catalogs::{self as catalog_service, CatalogInput};
use crate::services::console::{self, AddressTest, CatalogSummary, Dashboard};
use crate::web::auth::{ManagerOrStaff, with_role};
use crate::web::error::AppError;
use crate::web::page::{ConfirmPage, Page, Pager, render, render_invalid, see_other};
use crate::web::session::TypedSession;

#[derive(Template)]
#[template(path = "partner/dashboard.html")]
struct DashboardPage {
    page: Page,
    partner: Partner,
    dashboard: Dashboard,
    now: chrono::DateTime<chrono::Utc>,
}

impl DashboardPage {
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        local(&self.partner, at)
    }
    fn phase(&self, catalog: &Catalog) -> &'static str {
        catalog.phase_at(self.now).label()
    }
    fn percent(&self, used: &i64, limit: &i32) -> i64 {
        percent(*used, *limit)
    }
    fn pending(&self, summary: &CatalogSummary) -> String {
        if summary.pending_invitations > console::PENDING_COUNT_CAP {
            format!("more than {}", console::PENDING_COUNT_CAP)
        } else {
            summary.pending_invitations.to_string()
        }
    }
}

#[get("")]
async fn dashboard(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let code = path.into_inner();
    let (who, (partner, dashboard)) = with_role(&req, move |conn, who: &ManagerOrStaff| {
        let actor = who.actor();
        let (partner, _) = scope_in(conn, &actor, &code, None)?;
        let dashboard = console::dashboard(conn, &actor, &partner)?;
        Ok((partner, dashboard))
    })
    .await?;
    render(&DashboardPage {
        page: Page::for_request(&req, Some(&who.identity)),
        partner,
        dashboard,
        now: chrono::Utc::now(),
    })
}

#[derive(Template)]
#[template(path = "partner/catalog_form.html")]
struct CatalogFormPage {
    page: Page,
    partner: Partner,
    catalog: Option<Catalog>,
    input: CatalogInput,
    errors: FieldErrors,
    /// Each bad pattern line: number, pattern, the problem in words, the engine's detail.
    pattern_lines: Vec<(usize, String, String, String)>,
    test: Option<AddressTest>,
    test_email: String,
    test_error: Option<String>,
    /// Refused attempts of the last 30 days, on an existing catalog.
    blocked: console::BlockedAttempts,
}

impl CatalogFormPage {
    /// The patterns the allowed domains stand for, to show what is stored.
    fn domain_patterns(&self) -> Vec<String> {
        crate::domain::patterns::domains_to_patterns(&self.input.allowed_domains)
            .unwrap_or_default()
    }
    fn new(
        page: Page,
        partner: Partner,
        catalog: Option<Catalog>,
        input: CatalogInput,
        errors: FieldErrors,
    ) -> Self {
        let pattern_lines = match EmailPatterns::parse_lines(input.email_patterns.lines()) {
            Ok(_) => Vec::new(),
            Err(bad) => bad
                .into_iter()
                .map(|e| {
                    let detail = match &e.error {
                        crate::domain::patterns::PatternError::Invalid { detail, .. } => {
                            detail.clone()
                        }
                        _ => String::new(),
                    };
                    (e.line, e.pattern, e.error.to_string(), detail)
                })
                .collect(),
        };
        Self {
            page,
            partner,
            catalog,
            input,
            errors,
            pattern_lines,
            test: None,
            test_email: String::new(),
            blocked: console::BlockedAttempts::default(),
            test_error: None,
        }
    }

    fn checked(&self, value: &Option<String>) -> bool {
        value.is_some()
    }
}

#[get("/catalogs/new")]
async fn new_catalog(
    who: ManagerOrStaff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (partner, _) = scope(&db, &who.actor(), path.into_inner(), None).await?;
    let tz = partner.tz();
    let now = chrono::Utc::now();
    let input = CatalogInput {
        available_start: crate::domain::availability::to_local_input(now, tz),
        available_end: crate::domain::availability::to_local_input(
            now + chrono::Duration::days(365),
            tz,
        ),
        user_limit: "0".into(),
        course_enrollments_limit: "0".into(),
        ..CatalogInput::default()
    };
    render(&CatalogFormPage::new(
        page,
        partner,
        None,
        input,
        FieldErrors::new(),
    ))
}

#[post("/catalogs")]
async fn create_catalog(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<String>,
    form: web::Form<CatalogInput>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (partner, _) = scope(&db, &actor, path.into_inner(), None).await?;
    let input = form.into_inner();
    let (typed, partner_id) = (input.clone(), partner.id);
    match db
        .transaction(move |conn| catalog_service::create(conn, &actor, partner_id, &typed))
        .await
    {
        Ok(catalog) => {
            session.success(format!(
                "Catalog {} created. Now add its courses.",
                catalog.name
            ));
            Ok(see_other(&format!(
                "/partner/{}/catalogs/{}/courses",
                partner.code, catalog.id
            )))
        }
        Err(Error::Invalid(errors)) => render_invalid(&CatalogFormPage::new(
            Page::for_request(&req, Some(&who.identity)),
            partner,
            None,
            input,
            errors,
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct EditQuery {
    #[serde(default)]
    test_email: String,
}

#[get("/catalogs/{id}")]
async fn edit_catalog(
    who: ManagerOrStaff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
    query: web::Query<EditQuery>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (code, id) = path.into_inner();
    let (partner, catalog) = scope(&db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let test_email = query.test_email.trim().to_string();
    let (for_catalog, typed) = (catalog.clone(), test_email.clone());
    let (patterns, test, blocked) = db
        .run(move |conn| {
            let patterns = catalog_service::patterns(conn, &actor, for_catalog.id)?;
            let test = if typed.is_empty() {
                None
            } else {
                Some(console::test_address(conn, &actor, &for_catalog, &typed))
            };
            let blocked = console::blocked_attempts(conn, &actor, &for_catalog)?;
            Ok((patterns, test, blocked))
        })
        .await?;
    let input = CatalogInput::from_catalog(&catalog, &patterns, partner.tz());
    let mut form = CatalogFormPage::new(page, partner, Some(catalog), input, FieldErrors::new());
    form.test_email = test_email;
    form.blocked = blocked;
    match test {
        Some(Ok(result)) => form.test = Some(result),
        Some(Err(Error::Invalid(errors))) => {
            form.test_error = errors.get("test_email").map(str::to_string)
        }
        Some(Err(e)) => return Err(e.into()),
        None => {}
    }
    render(&form)
}

#[post("/catalogs/{id}")]
async fn update_catalog(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
    form: web::Form<CatalogInput>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (code, id) = path.into_inner();
    let (partner, catalog) = scope(&db, &actor, code, Some(id)).await?;
    let input = form.into_inner();
    let typed = input.clone();
    match db
        .transaction(move |conn| catalog_service::update(conn, &actor, id, &typed))
        .await
    {
        Ok(catalog) => {
            session.success(format!("Catalog {} saved.", catalog.name));
            Ok(see_other(&format!(
                "/partner/{}/catalogs/{}",
                partner.code, catalog.id
            )))
        }
        Err(Error::Invalid(errors)) => render_invalid(&CatalogFormPage::new(
            Page::for_request(&req, Some(&who.identity)),
            partner,
            catalog,
            input,
            errors,
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "partner/courses.html")]
struct CoursesPage {
    page: Page,
    partner: Partner,
    catalog: Catalog,
    courses: Vec<(CatalogCourse, Course)>,
    eligible: Vec<Course>,
    search: String,
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[get("/catalogs/{id}/courses")]
async fn courses(
    who: ManagerOrStaff,
    page: Page,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (code, id) = path.into_inner();
    let (partner, catalog) = scope(&db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let (for_partner, for_catalog, search) = (partner.clone(), catalog.clone(), query.q.clone());
    let (courses, eligible) = db
        .run(move |conn| {
            let courses = catalog_service::courses(conn, &actor, for_catalog.id)?;
            let eligible =
                console::eligible_courses(conn, &actor, &for_partner, &for_catalog, &search)?;
            Ok((courses, eligible))
        })
        .await?;
    render(&CoursesPage {
        page,
        partner,
        catalog,
        courses,
        eligible,
        search: query.q.clone(),
    })
}

#[derive(Deserialize)]
struct AddCourseForm {
    #[serde(default)]
    course_id: String,
    #[serde(default)]
    position: String,
}

#[post("/catalogs/{id}/courses")]
async fn add_course(
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64)>,
    form: web::Form<AddCourseForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (code, id) = path.into_inner();
    let (partner, _) = scope(&db, &actor, code, Some(id)).await?;
    let back = format!("/partner/{}/catalogs/{id}/courses", partner.code);
    let Ok(course_id) = form.course_id.trim().parse::<i64>() else {
        session.error("Choose a course to add.");
        return Ok(see_other(&back));
    };
    // Positions are shown from 1; blank means at the end.
    let position = form
        .position
        .trim()
        .parse::<i32>()
        .ok()
        .map(|p| (p - 1).max(0));
    match db
        .transaction(move |conn| catalog_service::add_course(conn, &actor, id, course_id, position))
        .await
    {
        Ok(_) => session.success("Course added."),
        Err(e @ Error::Invalid(_)) => session.error(e.public_message()),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&back))
}

/// The confirmation before a course leaves a catalog, with what was typed when refused.
async fn course_removal_page(
    req: &HttpRequest,
    who: &ManagerOrStaff,
    db: &Db,
    (code, id, course_id): (String, i64, i64),
    (reason, errors): (String, FieldErrors),
) -> Result<ConfirmPage, AppError> {
    let actor = who.actor();
    let (partner, catalog) = scope(db, &actor, code, Some(id)).await?;
    let catalog = catalog.ok_or(Error::NotFound("catalog"))?;
    let course = db
        .run(move |conn| {
            catalog_service::courses(conn, &actor, id)?
                .into_iter()
                .find(|(entry, _)| entry.course_id == course_id)
                .map(|(_, course)| course)
                .ok_or(Error::NotFound("course in this catalog"))
        })
        .await?;
    let base = format!("/partner/{}/catalogs/{}", partner.code, catalog.id);
    Ok(ConfirmPage {
        page: Page::for_request(req, Some(&who.identity)),
        title: format!("Remove {} from {}?", course.title, catalog.name),
        question: "Learners of the catalog can no longer enrol in it through this catalog. Enrolments and paid seats they already hold stay as they are.".into(),
        action: format!("{base}/courses/{course_id}/remove"),
        hidden: Vec::new(),
        button: "Remove the course".into(),
        danger: true,
        back: format!("{base}/courses"),
        reason,
        errors,
    })
}

#[get("/catalogs/{id}/courses/{course_id}/remove")]
async fn confirm_remove_course(
    req: HttpRequest,
    who: ManagerOrStaff,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let page = course_removal_page(
        &req,
        &who,
        &db,
        path.into_inner(),
        (String::new(), FieldErrors::new()),
    )
    .await?;
    render(&page)
}

#[post("/catalogs/{id}/courses/{course_id}/remove")]
async fn remove_course(
    req: HttpRequest,
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
    form: web::Form<super::ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (code, id, course_id) = path.into_inner();
    let (partner, _) = scope(&db, &actor, code.clone(), Some(id)).await?;
    let reason = form.into_inner().reason;
    let typed = reason.clone();
    match db
        .transaction(move |conn| {
            catalog_service::remove_course(conn, &actor, id, course_id, Some(&typed))
        })
        .await
    {
        Ok(()) => {
            session.success("Course removed from the catalog.");
            Ok(see_other(&format!(
                "/partner/{}/catalogs/{id}/courses",
                partner.code
            )))
        }
        Err(Error::Invalid(errors)) => render_invalid(
            &course_removal_page(&req, &who, &db, (code, id, course_id), (reason, errors)).await?,
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct MoveForm {
    #[serde(default)]
    direction: String,
    #[serde(default)]
    position: String,
}

#[post("/catalogs/{id}/courses/{course_id}/move")]
async fn move_course(
    who: ManagerOrStaff,
    session: TypedSession,
    db: web::Data<Db>,
    path: web::Path<(String, i64, i64)>,
    form: web::Form<MoveForm>,
) -> Result<HttpResponse, AppError> {
    let actor = who.actor();
    let (code, id, course_id) = path.into_inner();
    let (partner, _) = scope(&db, &actor, code, Some(id)).await?;
    let direction = form.direction.clone();
    let position = form.position.trim().parse::<i32>().ok();
    db.transaction(move |conn| {
        let current = crate::services::catalogs::courses(conn, &actor, id)?
            .into_iter()
            .find(|(entry, _)| entry.course_id == course_id)
            .map(|(entry, _)| entry.position)
            .ok_or(Error::NotFound("course in this catalog"))?;
        let to = match (direction.as_str(), position) {
            ("up", _) => current - 1,
            ("down", _) => current + 1,
            (_, Some(p)) => p - 1,
            _ => return Err(Error::invalid("direction", "say up, down or a position")),
        };
        catalog_service::move_course(conn, &actor, id, course_id, to.max(0))
    })
    .await?;
    session.success("Course order saved.");
    // Back to the moved row: the next Tab reaches its buttons again.
    Ok(see_other(&format!(
        "/partner/{}/catalogs/{id}/courses#course-{course_id}",
        partner.code
    )))
}

#[derive(Template)]
#[template(path = "partner/audit.html")]
struct AuditPage {
    page: Page,
    partner: Partner,
    catalogs: Vec<Catalog>,
    list: Paginated<AuditLine>,
    pager: Pager,
    catalog_filter: Option<i64>,
    actor_filter: String,
    action_filter: String,
}

impl AuditPage {
    fn catalog_selected(&self, id: &i64) -> bool {
        self.catalog_filter == Some(*id)
    }
    fn actions(&self) -> Vec<&'static str> {
        crate::services::audit::partner_actions().collect()
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    catalog: Option<String>,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    page: Option<i64>,
}

#[get("/audit")]
async fn audit_log(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AuditQuery>,
    position: crate::web::page::ListPosition,
) -> Result<HttpResponse, AppError> {
    let code = path.into_inner();
    let catalog_filter = query
        .catalog
        .as_deref()
        .and_then(|c| c.trim().parse::<i64>().ok());
    let action = crate::services::audit::partner_actions()
        .find(|a| *a == query.action)
        .map(str::to_string);
    let (actor_email, for_action) = (query.actor.clone(), action.clone());
    let request = PageRequest::new(query.page, Some(50)).at(position.0);
    let (who, (partner, catalogs, list)) = with_role(&req, move |conn, who: &ManagerOrStaff| {
        let actor = who.actor();
        let (partner, _) = scope_in(conn, &actor, &code, None)?;
        let catalogs = catalog_service::for_partner(conn, &actor, partner.id)?;
        let list = console::audit_log(
            conn,
            &actor,
            &partner,
            catalog_filter,
            &actor_email,
            for_action,
            request,
        )?;
        Ok((partner, catalogs, list))
    })
    .await?;
    let page = Page::for_request(&req, Some(&who.identity));
    let catalog_text = catalog_filter.map(|c| c.to_string()).unwrap_or_default();
    let base = format!("/partner/{}/audit", partner.code);
    let pager = Pager::new(
        &list,
        &base,
        &[
            ("catalog", &catalog_text),
            ("actor", &query.actor),
            ("action", action.as_deref().unwrap_or("")),
        ],
    );
    render(&AuditPage {
        page,
        partner,
        catalogs,
        list,
        pager,
        catalog_filter,
        actor_filter: query.actor.clone(),
        action_filter: action.unwrap_or_default(),
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(dashboard)
        .service(new_catalog)
        .service(create_catalog)
        .service(audit_log)
        .service(courses)
        .service(add_course)
        .service(confirm_remove_course)
        .service(remove_course)
        .service(move_course)
        .service(edit_catalog)
        .service(update_catalog);
}
