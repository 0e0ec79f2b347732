//! Demo data: an organisation, a branded partner, twelve courses, two catalogs and
//! three people, plus a third catalog with eight weeks of history (invitations, answers,
//! enrolments, paid seats and their events) so that the analytics have something to
//! show. Running it again changes nothing but the demo passwords, which are set back to
//! the printed ones.

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

    let slug = crate::domain::names::slugify(&format!("{} Leadership Programme", partner.code));
    let leadership = match catalogs::find_by_slug(conn, &slug)? {
        Some(c) => c,
        None => {
            let catalog = catalog_service::create(
                conn,
                &actor,
                partner.id,
                &CatalogInput {
                    name: "Leadership Programme".into(),
                    description: "Seven weeks of history: invited team leads, their answers, courses and paid seats.".into(),
                    available_start: (now - Duration::days(60)).format("%Y-%m-%dT%H:%M").to_string(),
                    available_end: end.clone(),
                    user_limit: "40".into(),
                    course_enrollments_limit: "15".into(),
                    is_self_enrollment: None,
                    allow_self_unenrollment: None,
                    support_email: "academy@acme.example.com".into(),
                    authorization_message: String::new(),
                    alternative_link: String::new(),
                    email_patterns: String::new(),
                    allowed_domains: String::new(),
                },
            )?;
            // LEAD200 (paid), COMM120, FIN210, SEC110 (open).
            for index in [4, 5, 6, 3] {
                catalog_service::add_course(conn, &actor, catalog.id, course_ids[index], None)?;
            }
            seed_history(
                conn,
                History {
                    catalog_id: catalog.id,
                    partner_id: partner.id,
                    manager_id: manager.id,
                    paid_course: course_ids[4],
                    open_course: course_ids[3],
                    outside_course: course_ids[2],
                },
            )?;
            catalog
        }
    };
    names.push(format!("{} ({})", leadership.name, leadership.slug));
    Ok(DemoSignIns { catalogs: names })
}

struct History {
    catalog_id: i64,
    partner_id: i64,
    manager_id: i64,
    paid_course: i64,
    open_course: i64,
    outside_course: i64,
}

/// The catalog's history as it would have been written, set-based: 48 invitations over
/// seven weeks up to two days ago (a few by bulk list or pre-enrolment), 34 accepted, 6 declined, the rest
/// still open or expired; half of those who joined enrolled, every other one of them in
/// the paid course (two seats released since); three asked for a course from elsewhere.
fn seed_history(conn: &mut PgConnection, h: History) -> Result<()> {
    use diesel::RunQueryDsl;
    use diesel::sql_types::BigInt;

    // Person n of the history, and when things happened to them.
    const PEOPLE: &str = "SELECT i.*, substring(i.email from '^colleague([0-9]+)@')::int AS n,
            LEAST(i.accepted_at + make_interval(days => 1 + substring(i.email from '^colleague([0-9]+)@')::int % 3),
                  now() - interval '1 hour') AS enrolled_at
        FROM invitations i WHERE i.catalog_id = $1 AND i.accepted_at IS NOT NULL";

    diesel::sql_query(
        "INSERT INTO users (email, full_name, email_verified_at, created_at, updated_at)
         SELECT 'colleague' || n || '@people.acme.example',
             (ARRAY['Ava','Ben','Chloe','Dev','Elif','Finn','Grace','Hugo','Ines','Jon','Kira','Luca'])[1 + n % 12]
                 || ' ' || (ARRAY['Adams','Baker','Costa','Diaz','Evans','Fischer','Garcia'])[1 + n % 7],
             now() - interval '60 days', now() - interval '60 days', now() - interval '60 days'
         FROM generate_series(1, 48) n WHERE n % 7 <> 0 AND n % 5 <> 0",
    )
    .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO invitations (catalog_id, email, user_id, token_hash, channel, invited_at, invited_by,
             expires_at, accepted_at, declined_at, send_count, last_sent_at)
         SELECT $1, 'colleague' || s.n || '@people.acme.example', u.id,
             sha256(('demo history ' || $1 || ' ' || s.n)::bytea), s.ch, s.at, $2, s.at + interval '30 days',
             CASE WHEN u.id IS NOT NULL THEN
                 CASE WHEN s.ch = 'pre_enrollment' THEN s.at ELSE s.at + make_interval(hours => 1 + (s.n * 7) % 40) END
             END,
             CASE WHEN s.n % 7 = 0 THEN s.at + interval '1 day' END,
             CASE WHEN s.ch = 'pre_enrollment' THEN 0 ELSE 1 END,
             CASE WHEN s.ch = 'pre_enrollment' THEN NULL ELSE s.at END
         FROM (SELECT n, now() - make_interval(days => 50 - n, hours => (n * 5) % 9) AS at,
                   CASE WHEN n % 11 = 0 THEN 'pre_enrollment' WHEN n % 6 = 0 THEN 'bulk' ELSE 'manual' END AS ch
               FROM generate_series(1, 48) n) s
         LEFT JOIN users u ON u.email = 'colleague' || s.n || '@people.acme.example'",
    )
    .bind::<BigInt, _>(h.catalog_id)
    .bind::<BigInt, _>(h.manager_id)
    .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO catalog_learners (catalog_id, user_id, invitation_id, is_active, joined_at, updated_at)
         SELECT catalog_id, user_id, id, true, accepted_at, accepted_at
         FROM invitations WHERE catalog_id = $1 AND accepted_at IS NOT NULL",
    )
    .bind::<BigInt, _>(h.catalog_id)
    .execute(conn)?;
    diesel::sql_query(format!(
        "INSERT INTO licences (user_id, course_id, catalog_id, is_active, created_at, updated_at)
         SELECT p.user_id, $2, $1, p.n NOT IN (16, 32), p.enrolled_at, p.enrolled_at
         FROM ({PEOPLE}) p WHERE p.n % 4 = 0"
    ))
    .bind::<BigInt, _>(h.catalog_id)
    .bind::<BigInt, _>(h.paid_course)
    .execute(conn)?;
    diesel::sql_query(format!(
        "INSERT INTO platform_enrollments (user_id, course_id, mode, is_active, created_at, updated_at)
         SELECT p.user_id, CASE WHEN p.n % 4 = 0 THEN $2 ELSE $3 END,
             CASE WHEN p.n % 4 = 0 AND p.n NOT IN (16, 32) THEN 'verified' ELSE 'audit' END,
             true, p.enrolled_at, p.enrolled_at
         FROM ({PEOPLE}) p WHERE p.n % 2 = 0"
    ))
    .bind::<BigInt, _>(h.catalog_id)
    .bind::<BigInt, _>(h.paid_course)
    .bind::<BigInt, _>(h.open_course)
    .execute(conn)?;
    // The events the services would have written along the way (rule 12).
    diesel::sql_query(format!(
        "INSERT INTO tracking_events (id, name, occurred_at, partner_id, catalog_id, course_id, user_id,
             invitation_id, channel, reason, data)
         SELECT gen_random_uuid(), 'invitation.sent', invited_at, $2, $1, NULL::bigint, user_id, id, channel, NULL, '{{}}'::jsonb
             FROM invitations WHERE catalog_id = $1 AND send_count > 0
         UNION ALL
         SELECT gen_random_uuid(), 'invitation.accepted', accepted_at, $2, $1, NULL, user_id, id, channel, NULL, '{{}}'
             FROM invitations WHERE catalog_id = $1 AND accepted_at IS NOT NULL
         UNION ALL
         SELECT gen_random_uuid(), 'invitation.declined', declined_at, $2, $1, NULL, user_id, id, channel, NULL, '{{}}'
             FROM invitations WHERE catalog_id = $1 AND declined_at IS NOT NULL
         UNION ALL
         SELECT gen_random_uuid(), 'enrollment.activated', p.enrolled_at, $2, $1,
             CASE WHEN p.n % 4 = 0 THEN $3 ELSE $4 END, p.user_id, NULL, NULL, NULL,
             jsonb_build_object('licence_id', l.id)
             FROM ({PEOPLE}) p
             LEFT JOIN licences l ON p.n % 4 = 0 AND l.user_id = p.user_id AND l.course_id = $3 AND l.catalog_id = $1
             WHERE p.n % 2 = 0
         UNION ALL
         SELECT gen_random_uuid(), 'enrollment.deactivated', p.enrolled_at + interval '9 days', $2, $1, $3,
             p.user_id, NULL, NULL, NULL, jsonb_build_object('licence_id', l.id)
             FROM ({PEOPLE}) p JOIN licences l ON l.user_id = p.user_id AND l.course_id = $3 AND l.catalog_id = $1
             WHERE p.n IN (16, 32)
         UNION ALL
         SELECT gen_random_uuid(), 'enrollment.blocked', p.accepted_at + interval '2 days', $2, $1, $5,
             p.user_id, NULL, NULL, 'course_not_in_catalog', '{{}}'
             FROM ({PEOPLE}) p WHERE p.n % 13 = 0"
    ))
    .bind::<BigInt, _>(h.catalog_id)
    .bind::<BigInt, _>(h.partner_id)
    .bind::<BigInt, _>(h.paid_course)
    .bind::<BigInt, _>(h.open_course)
    .bind::<BigInt, _>(h.outside_course)
    .execute(conn)?;
    Ok(())
}
