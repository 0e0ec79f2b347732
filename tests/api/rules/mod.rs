//! DESIGN.md rules 1–7, 11 and 12, proven through the services against the real
//! database. Shared fixtures live here.

mod audit_and_events;
mod concurrency;
mod course_access;
mod invitations;
mod joining;
mod patterns;
mod visibility;
mod windows;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use partner_catalog::domain::EmailAddress;
use partner_catalog::domain::invitation_status::Channel;
use partner_catalog::error::{Error, Result};
use partner_catalog::models::audit::AuditEntry;
use partner_catalog::models::catalogs::Catalog;
use partner_catalog::models::enrollments::{self, Licence, PlatformEnrollment};
use partner_catalog::models::events::TrackingEvent;
use partner_catalog::models::invitations::Invitation;
use partner_catalog::models::learners::{self, CatalogLearner};
use partner_catalog::models::schema::{audit_entries, catalogs, licences, tracking_events};
use partner_catalog::models::users::User;
use partner_catalog::policies::Actor;
use partner_catalog::services::accounts::{self, NewAccount};
use partner_catalog::services::catalogs::CatalogInput;
use partner_catalog::services::enrollments::CourseAccess;
use partner_catalog::services::invitations::SentInvitation;
use partner_catalog::services::{self, ServiceContext};

use crate::helpers::TestApp;

/// An organisation with two partners and three courses: two paid, one open.
pub struct World {
    pub staff: User,
    pub partner_a: i64,
    pub partner_b: i64,
    pub paid: i64,
    pub paid2: i64,
    pub open: i64,
}

impl World {
    pub fn staff(&self) -> Actor {
        Actor::for_user(&self.staff, None)
    }
}

pub fn ctx(app: &TestApp) -> ServiceContext {
    ServiceContext::from_settings(&app.settings)
}

/// An account without a password; `verified` says whether its email is proven.
pub async fn user(app: &TestApp, email: &str, verified: bool) -> User {
    let email = EmailAddress::parse(email).expect("test email");
    app.db
        .transaction(move |conn| {
            accounts::create_account(
                conn,
                &NewAccount {
                    email,
                    full_name: String::new(),
                    password_hash: None,
                    email_verified: verified,
                    is_staff: false,
                },
            )
        })
        .await
        .expect("create user")
}

pub fn actor(user: &User) -> Actor {
    Actor::for_user(user, None)
}

pub async fn world(app: &TestApp) -> World {
    let staff_email = EmailAddress::parse("staff@example.org").expect("email");
    app.db
        .transaction(move |conn| {
            let staff = accounts::create_account(
                conn,
                &NewAccount {
                    email: staff_email,
                    full_name: "Staff".into(),
                    password_hash: None,
                    email_verified: true,
                    is_staff: true,
                },
            )?;
            let actor = Actor::for_user(&staff, None);
            let org = services::organisations::create(
                conn,
                &actor,
                &services::organisations::OrganisationInput {
                    short_name: "ACMEx".into(),
                    name: "ACME".into(),
                },
            )?;
            let mut partners = Vec::new();
            for code in ["alpha", "beta"] {
                partners.push(services::partners::create(
                    conn,
                    &actor,
                    &services::partners::PartnerInput {
                        organisation_id: org.id.to_string(),
                        code: code.into(),
                        name: format!("Partner {code}"),
                        time_zone: "UTC".into(),
                        ..Default::default()
                    },
                )?);
            }
            let mut courses = Vec::new();
            for (key, modes) in [
                ("course-v1:ACMEx+PAID+1", "audit verified"),
                ("course-v1:ACMEx+PAID+2", "honor professional"),
                ("course-v1:ACMEx+OPEN+1", "audit honor"),
            ] {
                courses.push(
                    services::courses::create(
                        conn,
                        &actor,
                        &services::courses::CourseInput {
                            key: key.into(),
                            title: format!("Course {key}"),
                            organisation_id: org.id.to_string(),
                            modes: modes.into(),
                            ..Default::default()
                        },
                    )?
                    .id,
                );
            }
            Ok(World {
                staff,
                partner_a: partners[0].id,
                partner_b: partners[1].id,
                paid: courses[0],
                paid2: courses[1],
                open: courses[2],
            })
        })
        .await
        .expect("world")
}

/// What a catalog is made with; every course of the world is added to it.
#[derive(Clone)]
pub struct Spec {
    pub name: String,
    pub partner_b: bool,
    pub user_limit: i32,
    pub course_limit: i32,
    pub self_enrollment: bool,
    pub self_unenrollment: bool,
    pub patterns: String,
    pub start: String,
    pub end: String,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            name: "Sales Academy".into(),
            partner_b: false,
            user_limit: 0,
            course_limit: 0,
            self_enrollment: false,
            self_unenrollment: false,
            patterns: String::new(),
            start: "2000-01-01T00:00".into(),
            end: "2999-01-01T00:00".into(),
        }
    }
}

pub fn input(spec: &Spec) -> CatalogInput {
    let flag = |on: bool| on.then(|| "on".to_string());
    CatalogInput {
        name: spec.name.clone(),
        available_start: spec.start.clone(),
        available_end: spec.end.clone(),
        user_limit: spec.user_limit.to_string(),
        course_enrollments_limit: spec.course_limit.to_string(),
        is_self_enrollment: flag(spec.self_enrollment),
        allow_self_unenrollment: flag(spec.self_unenrollment),
        email_patterns: spec.patterns.clone(),
        ..Default::default()
    }
}

pub async fn catalog(app: &TestApp, w: &World, spec: Spec) -> Catalog {
    let actor = w.staff();
    let partner = if spec.partner_b {
        w.partner_b
    } else {
        w.partner_a
    };
    let courses = [w.paid, w.paid2, w.open];
    app.db
        .transaction(move |conn| {
            let catalog = services::catalogs::create(conn, &actor, partner, &input(&spec))?;
            for course in courses {
                services::catalogs::add_course(conn, &actor, catalog.id, course, None)?;
            }
            Ok(catalog)
        })
        .await
        .expect("catalog")
}

/// Moves a catalog's window, e.g. into the past or the future.
pub async fn set_window(app: &TestApp, catalog_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) {
    app.db
        .run(move |conn| {
            diesel::update(catalogs::table.find(catalog_id))
                .set((
                    catalogs::available_start.eq(start),
                    catalogs::available_end.eq(end),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .expect("set window");
}

pub async fn invite_with(
    app: &TestApp,
    ctx: ServiceContext,
    by: Actor,
    catalog_id: i64,
    email: &str,
) -> Result<SentInvitation> {
    let email = email.to_string();
    app.db
        .transaction(move |conn| {
            services::invitations::create(conn, &ctx, &by, catalog_id, &email, Channel::Manual)
        })
        .await
}

pub async fn invite(
    app: &TestApp,
    w: &World,
    catalog_id: i64,
    email: &str,
) -> Result<SentInvitation> {
    invite_with(app, ctx(app), w.staff(), catalog_id, email).await
}

pub async fn accept(app: &TestApp, user: &User, token: &str) -> Result<Invitation> {
    let (actor, token) = (actor(user), token.to_string());
    app.db
        .transaction(move |conn| services::invitations::accept(conn, &actor, &token))
        .await
}

pub async fn decline(app: &TestApp, token: &str) -> Result<Invitation> {
    let token = token.to_string();
    app.db
        .transaction(move |conn| services::invitations::decline(conn, &token))
        .await
}

pub async fn remove(app: &TestApp, by: Actor, invitation_id: i64) -> Result<Invitation> {
    app.db
        .transaction(move |conn| services::invitations::remove(conn, &by, invitation_id, None))
        .await
}

/// Invited by staff and accepted: an active learner.
pub async fn join(app: &TestApp, w: &World, catalog_id: i64, user: &User) -> Invitation {
    let sent = invite(app, w, catalog_id, &user.email)
        .await
        .expect("invite");
    accept(app, user, sent.token.as_str())
        .await
        .expect("accept")
}

pub async fn self_enroll(app: &TestApp, user: &User, catalog_id: i64) -> Result<CatalogLearner> {
    let actor = actor(user);
    app.db
        .transaction(move |conn| {
            services::invitations::join_self_enrollment(
                conn,
                &Default::default(),
                &actor,
                catalog_id,
            )
        })
        .await
}

/// Rule 7's answer, committed (refusals keep their `blocked` event).
pub async fn access(app: &TestApp, user: &User, catalog_id: i64, course_id: i64) -> CourseAccess {
    try_access(app, user, catalog_id, course_id)
        .await
        .expect("course access")
}

/// Rule 7's answer or the error that stopped it before any answer.
pub async fn try_access(
    app: &TestApp,
    user: &User,
    catalog_id: i64,
    course_id: i64,
) -> Result<CourseAccess, Error> {
    let actor = actor(user);
    app.db
        .transaction(move |conn| {
            services::enrollments::request_course_access(conn, &actor, catalog_id, course_id)
        })
        .await
}

pub async fn licence(app: &TestApp, user_id: i64, course_id: i64) -> Option<Licence> {
    app.db
        .transaction(move |conn| Ok(enrollments::find_licence(conn, user_id, course_id)?))
        .await
        .expect("licence")
}

pub async fn enrollment(app: &TestApp, user_id: i64, course_id: i64) -> Option<PlatformEnrollment> {
    app.db
        .transaction(move |conn| Ok(enrollments::find_enrollment(conn, user_id, course_id)?))
        .await
        .expect("enrollment")
}

/// Sets a platform enrolment directly, as the platform itself would.
pub async fn set_enrollment(app: &TestApp, user_id: i64, course_id: i64, mode: &str) {
    let mode = mode.to_string();
    app.db
        .run(move |conn| {
            enrollments::upsert_enrollment(conn, user_id, course_id, &mode)?;
            Ok(())
        })
        .await
        .expect("set enrollment");
}

pub async fn learner(app: &TestApp, catalog_id: i64, user_id: i64) -> Option<CatalogLearner> {
    app.db
        .transaction(move |conn| Ok(learners::find(conn, catalog_id, user_id)?))
        .await
        .expect("learner")
}

pub async fn active_learners(app: &TestApp, catalog_id: i64) -> i64 {
    app.db
        .run(move |conn| Ok(learners::count_active(conn, catalog_id)?))
        .await
        .expect("count learners")
}

/// Active paid licences the catalog owns: what its seat limit counts.
pub async fn seats_used(app: &TestApp, catalog_id: i64) -> i64 {
    app.db
        .run(move |conn| Ok(enrollments::count_active_owned(conn, catalog_id)?))
        .await
        .expect("count seats")
}

pub async fn licence_rows(app: &TestApp, user_id: i64, course_id: i64) -> i64 {
    app.db
        .run(move |conn| {
            Ok(licences::table
                .filter(licences::user_id.eq(user_id))
                .filter(licences::course_id.eq(course_id))
                .count()
                .get_result(conn)?)
        })
        .await
        .expect("count licences")
}

pub fn code<T: std::fmt::Debug>(result: Result<T>) -> &'static str {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e.code(),
    }
}

pub fn expect_err<T: std::fmt::Debug>(result: Result<T>) -> Error {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e,
    }
}

/// What audit entries and tracking events a step adds.
pub struct Trail {
    last_audit: i64,
    events: HashSet<uuid::Uuid>,
}

impl Trail {
    pub async fn mark(app: &TestApp) -> Self {
        let (last_audit, events) = app
            .db
            .run(|conn| {
                let last: Option<i64> = audit_entries::table
                    .select(diesel::dsl::max(audit_entries::id))
                    .first(conn)?;
                let events: Vec<uuid::Uuid> = tracking_events::table
                    .select(tracking_events::id)
                    .load(conn)?;
                Ok((last.unwrap_or(0), events.into_iter().collect()))
            })
            .await
            .expect("mark");
        Self { last_audit, events }
    }

    pub async fn audit(&self, app: &TestApp) -> Vec<AuditEntry> {
        let last = self.last_audit;
        app.db
            .run(move |conn| {
                Ok(audit_entries::table
                    .filter(audit_entries::id.gt(last))
                    .select(AuditEntry::as_select())
                    .order(audit_entries::id)
                    .load(conn)?)
            })
            .await
            .expect("audit entries")
    }

    pub async fn events(&self, app: &TestApp) -> Vec<TrackingEvent> {
        let all = app
            .db
            .run(|conn| Ok(partner_catalog::models::events::all(conn)?))
            .await
            .expect("events");
        all.into_iter()
            .filter(|e| !self.events.contains(&e.id))
            .collect()
    }

    /// Exactly one new audit entry, with this action.
    pub async fn one_audit(&self, app: &TestApp, action: &str) -> AuditEntry {
        let mut entries = self.audit(app).await;
        assert_eq!(
            entries.len(),
            1,
            "expected exactly one audit entry ({action}), got {:?}",
            entries.iter().map(|e| &e.action).collect::<Vec<_>>()
        );
        let entry = entries.remove(0);
        assert_eq!(entry.action, action);
        entry
    }

    /// The names of the new events, sorted.
    pub async fn event_names(&self, app: &TestApp) -> Vec<String> {
        let mut names: Vec<String> = self.events(app).await.into_iter().map(|e| e.name).collect();
        names.sort();
        names
    }
}
