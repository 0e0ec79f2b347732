//! The API's OpenAPI description, generated from the handlers and their types, and a
//! page that renders it for people.

use std::sync::LazyLock;

use actix_web::dev::ResourceDef;
use actix_web::http::Method;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{ErrorBody, catalogs, enrollments, invitations, memberships, pending, xapi};
use crate::web::error::AppError;
use crate::web::page::{Page, render};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "partner_catalog_session",
                "a signed-in browser; writes also need the X-CSRF-Token header",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Partner Catalog API",
        version = "1",
        description = "Catalogs, memberships and course access for partners' systems. Authenticate with `Authorization: Bearer <API token>` (made on the API tokens page or with `create-api-token`), or a signed-in session (writes need `X-CSRF-Token`). Errors are `{\"error\": <code>, \"detail\": <message>}`. Lists are paged by cursor: follow `next`."
    ),
    paths(
        catalogs::list,
        catalogs::show,
        catalogs::courses,
        memberships::show,
        memberships::join,
        memberships::remove,
        memberships::enroll,
        memberships::deactivate_licence,
        enrollments::list,
        enrollments::history,
        enrollments::bulk_enroll,
        invitations::list,
        invitations::create,
        invitations::resend,
        invitations::remove,
        pending::list,
        pending::create,
        pending::cancel,
        xapi::statements,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "catalogs", description = "Catalogs the caller may see, and their courses"),
        (name = "memberships", description = "Who is a learner of a catalog"),
        (name = "courses", description = "Course access through a catalog and paid seats"),
        (name = "invitations", description = "A catalog's invitations"),
        (name = "pre-enrolments", description = "People who join once their account appears"),
        (name = "xapi", description = "Tracking events as xAPI statements"),
    )
)]
pub struct ApiDoc;

/// Every address of the API with the methods it answers there: the described operations,
/// and the two pages describing them.
static ADDRESSES: LazyLock<Vec<(ResourceDef, Vec<Method>)>> = LazyLock::new(|| {
    let mut addresses: Vec<_> = ApiDoc::openapi()
        .paths
        .paths
        .into_iter()
        .map(|(path, item)| {
            let methods = [
                (Method::GET, item.get.is_some()),
                // Answered as GET (`web::head_as_get`).
                (Method::HEAD, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::DELETE, item.delete.is_some()),
            ]
            .into_iter()
            .filter_map(|(method, answered)| answered.then_some(method))
            .collect();
            (ResourceDef::new(path), methods)
        })
        .collect();
    for page in ["/api/v1/openapi.json", "/api/docs"] {
        addresses.push((ResourceDef::new(page), vec![Method::GET, Method::HEAD]));
    }
    addresses
});

/// The methods the API answers at `path`, each once; none where it has no such address.
pub fn methods_at(path: &str) -> Vec<Method> {
    let mut answered: Vec<Method> = Vec::new();
    for (_, methods) in ADDRESSES
        .iter()
        .filter(|(address, _)| address.is_match(path))
    {
        for method in methods {
            if !answered.contains(method) {
                answered.push(method.clone());
            }
        }
    }
    answered
}

#[get("/api/v1/openapi.json")]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

pub struct ParameterView {
    pub name: String,
    pub place: &'static str,
    pub required: bool,
    pub description: String,
}

pub struct ResponseView {
    pub status: String,
    pub description: String,
}

pub struct EndpointView {
    pub method: &'static str,
    pub path: String,
    pub summary: String,
    pub description: String,
    pub parameters: Vec<ParameterView>,
    pub responses: Vec<ResponseView>,
}

fn endpoint(method: &'static str, path: &str, operation: &Operation) -> EndpointView {
    let parameters = operation
        .parameters
        .iter()
        .flatten()
        .map(|p| ParameterView {
            name: p.name.clone(),
            place: match p.parameter_in {
                ParameterIn::Path => "path",
                ParameterIn::Query => "query",
                ParameterIn::Header => "header",
                ParameterIn::Cookie => "cookie",
            },
            required: matches!(p.required, utoipa::openapi::Required::True),
            description: p.description.clone().unwrap_or_default(),
        })
        .collect();
    let responses = operation
        .responses
        .responses
        .iter()
        .map(|(status, response)| ResponseView {
            status: status.clone(),
            description: match response {
                utoipa::openapi::RefOr::T(r) => r.description.clone(),
                utoipa::openapi::RefOr::Ref(r) => r.ref_location.clone(),
            },
        })
        .collect();
    EndpointView {
        method,
        path: path.to_string(),
        summary: operation.summary.clone().unwrap_or_default(),
        description: operation.description.clone().unwrap_or_default(),
        parameters,
        responses,
    }
}

#[derive(Template)]
#[template(path = "api/docs.html")]
struct DocsPage {
    page: Page,
    title: String,
    description: String,
    endpoints: Vec<EndpointView>,
}

/// The API described for people, from the same description as `openapi.json`.
#[get("/api/docs")]
async fn docs(page: Page) -> Result<HttpResponse, AppError> {
    let api = ApiDoc::openapi();
    let mut endpoints = Vec::new();
    for (path, item) in &api.paths.paths {
        for (method, operation) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ] {
            if let Some(operation) = operation {
                endpoints.push(endpoint(method, path, operation));
            }
        }
    }
    render(&DocsPage {
        page,
        title: api.info.title.clone(),
        description: api.info.description.clone().unwrap_or_default(),
        endpoints,
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(openapi_json).service(docs);
}
