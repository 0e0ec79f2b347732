//! Demo data: an organisation, a branded partner, twelve courses, two catalogs and
//! three people. Running it again changes nothing but the demo passwords, which are
//! set back to the printed ones.

use chrono::{Duration, Utc};
use diesel::PgConnection;

use crate::db::Db;
use crate::domain::{EmailAddress, Password};
use crate::error::{Error, Result};
use crate::models::{catalogs, courses, organisations, partners, users};
use crate::policies::Actor;
use crate::services::ServiceContext;
use crate::services::accounts::{self, NewAccount};
use crate::services::catalogs::{self as catalog_service, CatalogInput};

pub const STAFF_EMAIL: &str = "staff@example.com";
pub const MANAGER_EMAIL: &str = "manager@example.com";
pub const LEARNER_EMAIL: &str = "learner@example.com";
pub const STAFF_PASSWORD: &str = "demo-staff-password";
pub const MANAGER_PASSWORD: &str = "demo-manager-password";
pub const LEARNER_PASSWORD: &str = "demo-learner-password";

const COURSES: [(&str, &str, &str); 12] = [
    (
        "CS101",
        "Introduction to Computer Science",
        "audit verified",
    ),
    ("DATA201", "Data Analysis with SQL", "audit verified"),
    ("ML301", "Applied Machine Learning", "verified professional"),
    ("SEC110", "Security Awareness for Everyone", "audit"),
    ("LEAD200", "Leading Distributed Teams", "audit verified"),
    ("COMM120", "Writing for Work", "audit honor"),
    (
        "FIN210",
        "Finance for Non-Financial Managers",
        "audit verified",
    ),
    ("PM150", "Project Management Essentials", "audit"),
    ("CLOUD220", "Cloud Foundations", "audit verified"),
    ("ETH100", "Ethics in the Workplace", "honor"),
    ("UX130", "User Experience Basics", "audit"),
    ("NEG240", "Negotiation Skills", "audit professional"),
];

pub struct DemoSignIns {
    pub catalogs: Vec<String>,
}

impl std::fmt::Display for DemoSignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Demo sign-ins:")?;
        writeln!(f, "  staff            {STAFF_EMAIL} / {STAFF_PASSWORD}")?;
        writeln!(f, "  partner manager  {MANAGER_EMAIL} / {MANAGER_PASSWORD}")?;
        writeln!(f, "  learner          {LEARNER_EMAIL} / {LEARNER_PASSWORD}")?;
        write!(f, "Demo catalogs: {}", self.catalogs.join(", "))
    }
}

pub async fn seed(db: &Db, ctx: &ServiceContext) -> anyhow::Result<DemoSignIns> {
    let mut hashes = Vec::new();
    for password in [STAFF_PASSWORD, MANAGER_PASSWORD, LEARNER_PASSWORD] {
        let password = Password::parse(password).map_err(|e| anyhow::anyhow!("{e}"))?;
        hashes.push(
            Db::cpu(move || accounts::hash_password(&password))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    let ctx = ctx.clone();
    db.transaction(move |conn| seed_in(conn, &ctx, &hashes))
        .await
        .map_err(|e| anyhow::anyhow!("seeding the demo failed: {e:?}"))
}

fn ensure_user(
    conn: &mut PgConnection,
    email: &str,
    name: &str,
    hash: &str,
    is_staff: bool,
) -> Result<users::User> {
    let user = match users::find_by_email(conn, email)? {
        Some(user) => user,
        None => accounts::create_account(
            conn,
            &NewAccount {
                email: EmailAddress::parse(email)
                    .map_err(|e| Error::invalid("email", e.to_string()))?,
                full_name: name.into(),
                password_hash: None,
                email_verified: true,
                is_staff,
            },
        )?,
    };
    users::set_password_hash(conn, user.id, hash)?;
    Ok(users::set_active(conn, user.id, true)?)
}

fn seed_in(
    conn: &mut PgConnection,
    ctx: &ServiceContext,
    hashes: &[String],
) -> Result<DemoSignIns> {
    let [staff_hash, manager_hash, learner_hash] = hashes else {
        return Err(Error::internal(anyhow::anyhow!(
            "three password hashes expected"
        )));
    };
    let staff = ensure_user(conn, STAFF_EMAIL, "Sam Staff", staff_hash, true)?;
    let manager = ensure_user(conn, MANAGER_EMAIL, "Morgan Manager", manager_hash, false)?;
    ensure_user(conn, LEARNER_EMAIL, "Lee Learner", learner_hash, false)?;
    let actor = Actor::for_user(&staff, None);

    let organisation = match organisations::find_by_short_name(conn, "ACMEx")? {
        Some(o) => o,
        None => crate::services::organisations::create(
            conn,
            &actor,
            &crate::services::organisations::OrganisationInput {
                short_name: "ACMEx".into(),
                name: "ACME Learning".into(),
            },
        )?,
    };
    let partner = match partners::find_by_code(conn, "acme")? {
        Some(p) => p,
        None => crate::services::partners::create(
            conn,
            &actor,
            &crate::services::partners::PartnerInput {
                organisation_id: organisation.id.to_string(),
                code: "acme".into(),
                name: "ACME Corporation".into(),
                homepage_url: "https://acme.example.com".into(),
                logo_url: String::new(),
                accent_colour: "#b3261e".into(),
                email_sender_name: "ACME Academy".into(),
                support_email: "academy@acme.example.com".into(),
                time_zone: "Europe/London".into(),
            },
        )?,
    };
    if partners::managed_by(conn, manager.id)?.is_none() {
        crate::services::partners::assign_manager(conn, ctx, &actor, partner.id, MANAGER_EMAIL)?;
    }

    let year = Utc::now().format("%Y").to_string();
    let mut course_ids = Vec::new();
    for (number, title, modes) in COURSES {
        let key = format!("course-v1:ACMEx+{number}+{year}");
        let course = match courses::find_by_key(conn, &key)? {
            Some(c) => c,
            None => crate::services::courses::create(
                conn,
                &actor,
                &crate::services::courses::CourseInput {
                    key: key.clone(),
                    title: title.into(),
                    organisation_id: organisation.id.to_string(),
                    modes: modes.into(),
                    starts_at: String::new(),
                    ends_at: String::new(),
                },
            )?,
        };
        course_ids.push(course.id);
    }

    let now = Utc::now();
    let start = (now - Duration::days(30))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let end = (now + Duration::days(335))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let wanted = [
        (
            "Sales Academy",
            "Invitation-only training for the ACME sales team: 25 learners, 10 paid seats.",
            "25",
            "10",
            false,
            "",
            &course_ids[0..8],
        ),
        (
            "Open Learning",
            "Open to every example.com address: join from My catalogs.",
            "0",
            "0",
            true,
            r".*@example\.com",
            &course_ids[3..12],
        ),
    ];
    let mut names = Vec::new();
    for (name, description, user_limit, seats, self_enrollment, pattern, courses_wanted) in wanted {
        let slug = crate::domain::names::slugify(&format!("{} {}", partner.code, name));
        let catalog = match catalogs::find_by_slug(conn, &slug)? {
            Some(c) => c,
            None => catalog_service::create(
                conn,
                &actor,
                partner.id,
                &CatalogInput {
                    name: name.into(),
                    description: description.into(),
                    available_start: start.clone(),
                    available_end: end.clone(),
                    user_limit: user_limit.into(),
                    course_enrollments_limit: seats.into(),
                    is_self_enrollment: self_enrollment.then(|| "on".into()),
                    allow_self_unenrollment: None,
                    support_email: "academy@acme.example.com".into(),
                    authorization_message: String::new(),
                    alternative_link: String::new(),
                    email_patterns: pattern.into(),
                    allowed_domains: String::new(),
                },
            )?,
        };
        for &course_id in courses_wanted {
            if catalogs::catalog_course(conn, catalog.id, course_id)?.is_none() {
                catalog_service::add_course(conn, &actor, catalog.id, course_id, None)?;
            }
        }
        names.push(format!("{} ({})", catalog.name, catalog.slug));
    }
    Ok(DemoSignIns { catalogs: names })
}
