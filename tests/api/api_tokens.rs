//! API tokens: the page that makes and revokes them (the secret shown once, only its
//! hash stored), `authenticate` and its throttle, and `create-api-token`.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use partner_catalog::error::Error;
use partner_catalog::models::api_tokens::ApiToken;
use partner_catalog::models::sign_in_attempts;
use partner_catalog::models::users::{self, User};
use partner_catalog::policies::Actor;
use partner_catalog::services;
use reqwest::StatusCode;

use crate::hardening::signed_in_manager;
use crate::helpers::{TestApp, spawn_app};
use crate::journey;

type Authenticated = partner_catalog::error::Result<Option<(User, ApiToken)>>;

async fn authenticate(app: &TestApp, presented: &str, client_ip: &str) -> Authenticated {
    let (presented, client_ip) = (presented.to_string(), client_ip.to_string());
    app.db
        .transaction(move |conn| services::api_tokens::authenticate(conn, &presented, &client_ip))
        .await
}

/// The user id a token authenticates as, if it does.
async fn user_of(app: &TestApp, presented: &str, client_ip: &str) -> Option<i64> {
    authenticate(app, presented, client_ip)
        .await
        .expect("no error")
        .map(|(user, _)| user.id)
}

async fn user(app: &TestApp, email: &'static str) -> User {
    app.db
        .run(move |conn| Ok(users::find_by_email(conn, email)?.expect("the user")))
        .await
        .unwrap()
}

async fn staff_actor(app: &TestApp) -> Actor {
    Actor::for_user(&user(app, "staff@example.org").await, None)
}

/// The token a page shows once.
fn secret_on(body: &str) -> String {
    let start = body
        .find("id=\"new-token\"")
        .expect("a new token on the page");
    let open = body[start..].find('>').expect("textarea") + start + 1;
    let close = body[open..].find("</textarea>").expect("textarea end") + open;
    body[open..close].to_string()
}

/// Runs a statement against the app's database, answering a count.
async fn count_where(app: &TestApp, sql: &'static str, text: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let text = text.to_string();
    app.db
        .run(move |conn| {
            let row: Count = diesel::sql_query(sql)
                .bind::<Text, _>(text)
                .get_result(conn)?;
            Ok(row.n)
        })
        .await
        .unwrap()
}

async fn execute(app: &TestApp, sql: &'static str, id: i64) {
    app.db
        .run(move |conn| {
            diesel::sql_query(sql).bind::<BigInt, _>(id).execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

/// The token's secret is nowhere in the database: the token is found by its SHA-256,
/// and no audit entry carries it.
async fn assert_only_the_hash_is_stored(app: &TestApp, secret: &str) {
    assert_eq!(
        count_where(
            app,
            "SELECT COUNT(*) AS n FROM api_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            secret,
        )
        .await,
        1
    );
    assert_eq!(
        count_where(
            app,
            "SELECT COUNT(*) AS n FROM api_tokens WHERE position(convert_to($1, 'UTF8') in token_hash) > 0 \
             OR strpos(name, $1) > 0",
            secret,
        )
        .await,
        0
    );
    assert_eq!(
        count_where(
            app,
            "SELECT COUNT(*) AS n FROM audit_entries WHERE strpos(concat(before::text, after::text, reason), $1) > 0 \
             OR strpos(concat(before::text, after::text), 'token_hash') > 0",
            secret,
        )
        .await,
        0
    );
    assert_eq!(
        count_where(
            app,
            "SELECT COUNT(*) AS n FROM sign_in_attempts WHERE strpos(email, $1) > 0",
            secret,
        )
        .await,
        0
    );
}

/// Makes a token on the page as this browser; answers the page and the secret.
async fn make_token(browser: &TestApp, name: &str) -> (String, String) {
    let made = browser.post("/account/api-tokens", &[("name", name)]).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let secret = secret_on(&made.body);
    (made.body, secret)
}

#[tokio::test]
async fn a_manager_makes_a_token_shown_once_and_stored_only_as_a_hash() {
    let app = spawn_app().await;
    journey::setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    manager
        .get("/account")
        .await
        .assert_contains("href=\"/account/api-tokens\"");
    let empty = manager.get("/account/api-tokens").await;
    assert_eq!(empty.status, StatusCode::OK);
    empty.assert_contains("You have no API tokens yet.");

    let (page, secret) = make_token(&manager, "  HR system sync ").await;
    assert!(secret.starts_with("pct_"), "{secret}");
    // 256 random bits after the prefix, URL-safe base64.
    assert!(secret.len() >= 4 + 43, "{secret}");
    assert!(page.contains("it will not be shown again"));
    assert_eq!(
        page.matches(&secret).count(),
        1,
        "the secret once on the page"
    );
    assert!(page.contains("HR system sync"));

    // Never again: not on the list, not on the account page, not after signing in again.
    let list = manager.get("/account/api-tokens").await;
    assert!(!list.body.contains(&secret));
    assert!(!list.body.contains("pct_"));
    list.assert_contains("HR system sync");
    list.assert_contains("never");
    list.assert_contains("active");
    assert!(!manager.get("/account").await.body.contains(&secret));
    assert_only_the_hash_is_stored(&app, &secret).await;

    let manager_user = user(&app, "manager@acme.example").await;
    let (who, token) = authenticate(&app, &secret, "192.0.2.1")
        .await
        .unwrap()
        .expect("the token works");
    assert_eq!(who.id, manager_user.id);
    assert_eq!(token.name, "HR system sync");

    // The audit trail names the maker and the partner, without the secret.
    #[derive(QueryableByName)]
    struct Entry {
        #[diesel(sql_type = Text)]
        actor_role: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
        partner_id: Option<i64>,
    }
    let entries: Vec<Entry> = app
        .db
        .run(|conn| {
            Ok(diesel::sql_query(
                "SELECT actor_role, partner_id FROM audit_entries WHERE action = 'api_token.create'",
            )
            .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor_role, "partner_manager");
    assert!(entries[0].partner_id.is_some());
    manager
        .get("/partner/acme/audit")
        .await
        .assert_contains("created an API token");
}

#[tokio::test]
async fn staff_make_tokens_too_and_a_bad_name_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let staff_user = app.signed_in_staff().await;
    let staff = &app;
    staff
        .get("/account")
        .await
        .assert_contains("href=\"/account/api-tokens\"");

    for bad in ["", "   ", "tab\there", "x".repeat(101).as_str()] {
        let refused = staff.post("/account/api-tokens", &[("name", bad)]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad:?}");
        refused.assert_contains("href=\"#f-name\"");
        assert!(!refused.body.contains("id=\"new-token\""));
    }
    let kept = staff
        .post("/account/api-tokens", &[("name", "tab\there")])
        .await;
    kept.assert_contains("value=\"tab\there\"");
    assert_eq!(app.count("api_tokens").await, 0);

    let (_, secret) = make_token(staff, "Nightly export").await;
    assert!(secret.starts_with("pct_"));
    assert!(
        !staff
            .get("/account/api-tokens")
            .await
            .body
            .contains(&secret)
    );
    assert_only_the_hash_is_stored(&app, &secret).await;
    assert_eq!(
        user_of(&app, &secret, "192.0.2.1").await,
        Some(staff_user.id)
    );
    let (_, second) = make_token(staff, "Nightly export").await;
    assert_ne!(second, secret, "each token its own secret");
}

#[tokio::test]
async fn people_without_a_role_find_no_token_page() {
    let app = spawn_app().await;
    app.signed_in_learner().await;
    assert!(
        !app.get("/account")
            .await
            .body
            .contains("/account/api-tokens")
    );
    assert_eq!(
        app.get("/account/api-tokens").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post("/account/api-tokens", &[("name", "mine")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/account/api-tokens/1/revoke").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count("api_tokens").await, 0);
    // Nor through the service.
    let learner = user(&app, "learner@example.org").await;
    let refused = app
        .db
        .transaction(move |conn| {
            services::api_tokens::create(conn, &Actor::for_user(&learner, None), "mine")
        })
        .await;
    assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    // Signed out: to the sign-in page.
    let anonymous = app.another_browser();
    let answer = anonymous.get("/account/api-tokens").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn revoking_asks_first_and_the_token_stops_working_at_once() {
    let app = spawn_app().await;
    journey::setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let (_, secret) = make_token(&manager, "CI").await;
    let manager_id = user(&app, "manager@acme.example").await.id;
    assert_eq!(user_of(&app, &secret, "192.0.2.1").await, Some(manager_id));
    let id: i64 = app
        .db
        .run(|conn| {
            use partner_catalog::models::schema::api_tokens;
            Ok(api_tokens::table.select(api_tokens::id).first(conn)?)
        })
        .await
        .unwrap();

    // Another manager of the same partner sees no such token.
    app.create_user("other@acme.example", "other password 1", false)
        .await;
    let staff = staff_actor(&app).await;
    let ctx = app.ctx();
    app.db
        .transaction(move |conn| {
            let partner = partner_catalog::models::partners::find_by_code(conn, "acme")?.unwrap();
            services::partners::assign_manager(conn, &ctx, &staff, partner.id, "other@acme.example")
        })
        .await
        .unwrap();
    let other = app.another_browser();
    other
        .sign_in("other@acme.example", "other password 1")
        .await
        .assert_redirect_to("/");
    let path = format!("/account/api-tokens/{id}/revoke");
    assert_eq!(other.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        other.post(&path, &[("reason", "")]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(user_of(&app, &secret, "192.0.2.1").await, Some(manager_id));

    let list = manager.get("/account/api-tokens").await;
    list.assert_contains(&format!("href=\"{path}\""));
    let confirm = manager.get(&path).await;
    assert_eq!(confirm.status, StatusCode::OK);
    confirm.assert_contains("Revoke the API token “CI”?");
    confirm.assert_contains(&format!("action=\"{path}\""));
    // Still working until the confirmation is posted.
    assert_eq!(user_of(&app, &secret, "192.0.2.1").await, Some(manager_id));

    let too_long = "x".repeat(501);
    let refused = manager.post(&path, &[("reason", &too_long)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(user_of(&app, &secret, "192.0.2.1").await, Some(manager_id));

    manager
        .post(&path, &[("reason", "the contractor left")])
        .await
        .assert_redirect_to("/account/api-tokens");
    let after = manager.get("/account/api-tokens").await;
    after.assert_contains("The token was revoked");
    after.assert_contains("revoked");
    assert!(!after.body.contains(&format!("href=\"{path}\"")));
    assert_eq!(user_of(&app, &secret, "192.0.2.1").await, None);
    // Revoking again changes nothing.
    manager
        .post(&path, &[("reason", "")])
        .await
        .assert_redirect_to("/account/api-tokens");
    assert_eq!(
        count_where(
            &app,
            "SELECT COUNT(*) AS n FROM audit_entries WHERE action = 'api_token.revoke' AND reason = $1",
            "the contractor left",
        )
        .await,
        1
    );
    assert_eq!(
        count_where(
            &app,
            "SELECT COUNT(*) AS n FROM audit_entries WHERE action = $1",
            "api_token.revoke",
        )
        .await,
        1
    );
}

#[tokio::test]
async fn staff_may_revoke_anyones_token_and_others_get_not_found() {
    let app = spawn_app().await;
    journey::setup(&app, None).await;
    let manager = signed_in_manager(&app).await;
    let (_, secret) = make_token(&manager, "CI").await;
    let (token, _) = authenticate(&app, &secret, "192.0.2.1")
        .await
        .unwrap()
        .map(|(user, token)| (token, user))
        .unwrap();
    let learner = app
        .create_user("learner@example.org", "learner password 1", false)
        .await;
    let id = token.id;
    let refused = app
        .db
        .transaction(move |conn| {
            services::api_tokens::revoke(conn, &Actor::for_user(&learner, None), id, None)
        })
        .await;
    assert!(matches!(refused, Err(Error::NotFound(_))), "{refused:?}");
    let staff = staff_actor(&app).await;
    app.db
        .transaction(move |conn| services::api_tokens::revoke(conn, &staff, id, Some("leaked")))
        .await
        .unwrap();
    assert!(user_of(&app, &secret, "192.0.2.1").await.is_none());
}

/// A manager (of ACME) and a staff member, each with a token made through the service.
async fn tokens_of_manager_and_staff(app: &TestApp) -> (String, String) {
    journey::setup(app, None).await;
    signed_in_manager(app).await;
    let manager = user(app, "manager@acme.example").await;
    let partner_id = crate::journey::acme_id(app).await;
    let staff = user(app, "staff@example.org").await;
    app.db
        .transaction(move |conn| {
            let (_, for_manager) = services::api_tokens::create(
                conn,
                &Actor::for_user(&manager, Some(partner_id)),
                "manager's",
            )?;
            let (_, for_staff) =
                services::api_tokens::create(conn, &Actor::for_user(&staff, None), "staff's")?;
            Ok((for_manager, for_staff))
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn authenticate_refuses_revoked_expired_deactivated_and_roleless_tokens() {
    let app = spawn_app().await;
    let (manager_secret, staff_secret) = tokens_of_manager_and_staff(&app).await;
    let manager = user(&app, "manager@acme.example").await;
    let staff = user(&app, "staff@example.org").await;
    let (ip, ip2) = ("192.0.2.10", "192.0.2.12");
    assert_eq!(user_of(&app, &manager_secret, ip).await, Some(manager.id));
    assert_eq!(user_of(&app, &staff_secret, ip).await, Some(staff.id));

    // Unknown, mangled, without the prefix.
    assert_eq!(user_of(&app, "pct_nothing", ip).await, None);
    assert_eq!(user_of(&app, &manager_secret[4..], ip).await, None);
    assert_eq!(user_of(&app, &format!("{manager_secret}x"), ip).await, None);
    assert_eq!(user_of(&app, "", ip).await, None);
    // Surrounding blanks (a copied header) do not matter.
    assert_eq!(
        user_of(&app, &format!(" {manager_secret}\n"), ip).await,
        Some(manager.id)
    );

    // Expired.
    execute(
        &app,
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        manager.id,
    )
    .await;
    assert_eq!(user_of(&app, &manager_secret, ip2).await, None);
    execute(
        &app,
        "UPDATE api_tokens SET expires_at = now() + interval '1 day' WHERE user_id = $1",
        manager.id,
    )
    .await;
    assert_eq!(user_of(&app, &manager_secret, ip2).await, Some(manager.id));

    // Deactivated, then active again.
    let actor = Actor::for_user(&staff, None);
    let (a, id) = (actor.clone(), manager.id);
    app.db
        .transaction(move |conn| services::users::set_active(conn, &a, id, false, None))
        .await
        .unwrap();
    assert_eq!(user_of(&app, &manager_secret, ip2).await, None);
    let a = actor.clone();
    app.db
        .transaction(move |conn| services::users::set_active(conn, &a, id, true, None))
        .await
        .unwrap();
    assert_eq!(user_of(&app, &manager_secret, ip2).await, Some(manager.id));

    // No longer a manager.
    let a = actor.clone();
    app.db
        .transaction(move |conn| {
            let partner = partner_catalog::models::partners::find_by_code(conn, "acme")?.unwrap();
            services::partners::unassign_manager(conn, &a, partner.id, id, None)
        })
        .await
        .unwrap();
    assert_eq!(user_of(&app, &manager_secret, ip2).await, None);

    // No longer staff (another staff member takes the role away).
    let other = app
        .create_user("second-staff@example.org", "staff password 2", true)
        .await;
    let staff_id = staff.id;
    app.db
        .transaction(move |conn| {
            services::users::set_staff(conn, &Actor::for_user(&other, None), staff_id, false, None)
        })
        .await
        .unwrap();
    assert_eq!(user_of(&app, &staff_secret, ip2).await, None);

    // Revoked.
    let (_, fresh) = app
        .db
        .transaction(|conn| {
            let other = users::find_by_email(conn, "second-staff@example.org")?.unwrap();
            services::api_tokens::create(conn, &Actor::for_user(&other, None), "fresh")
        })
        .await
        .unwrap();
    let (_, token) = authenticate(&app, &fresh, "192.0.2.11")
        .await
        .unwrap()
        .unwrap();
    let id = token.id;
    app.db
        .transaction(move |conn| {
            let other = users::find_by_email(conn, "second-staff@example.org")?.unwrap();
            services::api_tokens::revoke(conn, &Actor::for_user(&other, None), id, None)
        })
        .await
        .unwrap();
    assert_eq!(user_of(&app, &fresh, "192.0.2.11").await, None);
}

#[tokio::test]
async fn last_used_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (secret, _) = tokens_of_manager_and_staff(&app).await;
    let manager = signed_in_manager_browser(&app).await;
    manager
        .get("/account/api-tokens")
        .await
        .assert_contains("never");

    let (_, first) = authenticate(&app, &secret, "192.0.2.20")
        .await
        .unwrap()
        .unwrap();
    let used = first.last_used_at.expect("noted");
    assert!((chrono::Utc::now() - used).num_seconds() < 10);
    let (_, again) = authenticate(&app, &secret, "192.0.2.20")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.last_used_at,
        Some(used),
        "no second write within a minute"
    );
    assert!(
        !manager
            .get("/account/api-tokens")
            .await
            .body
            .contains(">never<")
    );

    execute(
        &app,
        "UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1",
        first.id,
    )
    .await;
    let (_, later) = authenticate(&app, &secret, "192.0.2.20")
        .await
        .unwrap()
        .unwrap();
    let written = later.last_used_at.expect("noted");
    assert!(
        (chrono::Utc::now() - written).num_seconds() < 10,
        "{written}"
    );
    let stored: Option<chrono::DateTime<chrono::Utc>> = app
        .db
        .run(move |conn| {
            use partner_catalog::models::schema::api_tokens;
            Ok(api_tokens::table
                .find(first.id)
                .select(api_tokens::last_used_at)
                .first(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(stored, Some(written));
}

/// The manager `tokens_of_manager_and_staff` made, signed in in a browser of its own.
async fn signed_in_manager_browser(app: &TestApp) -> TestApp {
    let browser = app.another_browser();
    browser
        .sign_in("manager@acme.example", "manager password 1")
        .await
        .assert_redirect_to("/");
    browser
}

#[tokio::test]
async fn ten_failures_from_one_address_stop_further_guesses_from_there_but_not_the_right_token() {
    let app = spawn_app().await;
    let (secret, _) = tokens_of_manager_and_staff(&app).await;
    let (guesser, elsewhere) = ("198.51.100.7", "198.51.100.8");
    for attempt in 1..=10 {
        let answer = authenticate(&app, &format!("pct_guess{attempt}"), guesser).await;
        assert!(matches!(answer, Ok(None)), "attempt {attempt}: {answer:?}");
    }
    let eleventh = authenticate(&app, "pct_guess11", guesser).await;
    let Err(Error::TooManyRequests(message)) = eleventh else {
        panic!("expected too many requests, got {eleventh:?}");
    };
    assert!(message.contains("15 minutes"), "{message}");
    // The right token still works from there: a neighbour's bad guesses lock nobody out.
    assert!(user_of(&app, &secret, guesser).await.is_some());
    assert!(matches!(
        authenticate(&app, "pct_guess12", guesser).await,
        Err(Error::TooManyRequests(_))
    ));
    // Another address is not affected, and neither are password sign-ins from the first.
    assert!(user_of(&app, &secret, elsewhere).await.is_some());
    let password_failures = app
        .db
        .run(move |conn| {
            Ok(sign_in_attempts::recent_failures(
                conn,
                None,
                guesser,
                chrono::Utc::now() - chrono::Duration::minutes(15),
            )?)
        })
        .await
        .unwrap();
    assert!(password_failures.is_empty(), "{password_failures:?}");
    // A refused attempt is not counted: exactly ten failures are recorded.
    assert_eq!(
        count_where(
            &app,
            "SELECT COUNT(*) AS n FROM sign_in_attempts WHERE email = 'api-token' AND client_ip = $1",
            guesser,
        )
        .await,
        10
    );

    // Once the failures leave the window, the address may try again.
    app.db
        .run(|conn| {
            diesel::sql_query(
                "UPDATE sign_in_attempts SET attempted_at = attempted_at - interval '16 minutes'",
            )
            .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    assert!(user_of(&app, &secret, guesser).await.is_some());
}

#[tokio::test]
async fn concurrent_failures_never_pass_the_limit() {
    let app = spawn_app().await;
    let mut attempts = Vec::new();
    for attempt in 0..16 {
        let app = app.another_browser();
        attempts.push(tokio::spawn(async move {
            authenticate(&app, &format!("pct_guess{attempt}"), "203.0.113.9").await
        }));
    }
    let (mut failed, mut throttled) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(None) => failed += 1,
            Err(Error::TooManyRequests(_)) => throttled += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((failed, throttled), (10, 6));
}

fn run_cli(database_url: &str, args: &[&str]) -> std::process::Output {
    let var_dir = std::env::temp_dir().join(format!("pc-var-{}", uuid::Uuid::new_v4().simple()));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_partner-catalog"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("DATABASE_POOL_SIZE", "2")
        .env("VAR_DIR", &var_dir)
        .env("SESSION_KEY", "k".repeat(64))
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the binary");
    let _ = std::fs::remove_dir_all(var_dir);
    output
}

#[tokio::test]
async fn the_command_line_prints_a_token_once() {
    let app = spawn_app().await;
    journey::setup(&app, None).await;
    signed_in_manager(&app).await;
    app.create_user("learner@example.org", "learner password 1", false)
        .await;
    let url = app.database_url.clone();
    let made = tokio::task::spawn_blocking(move || {
        run_cli(
            &url,
            &[
                "create-api-token",
                "--email",
                " Manager@ACME.example ",
                "--name",
                "HR sync",
            ],
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(made.stdout).unwrap();
    let stderr = String::from_utf8(made.stderr).unwrap();
    assert!(made.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "only the token on standard output: {stdout}"
    );
    let secret = lines[0];
    assert!(secret.starts_with("pct_"), "{secret}");
    assert!(stderr.contains("cannot be shown again"), "{stderr}");
    assert!(!stderr.contains(secret));
    assert_only_the_hash_is_stored(&app, secret).await;
    let manager = user(&app, "manager@acme.example").await;
    assert_eq!(user_of(&app, secret, "192.0.2.30").await, Some(manager.id));
    assert_eq!(
        count_where(
            &app,
            "SELECT COUNT(*) AS n FROM audit_entries WHERE action = 'api_token.create' AND actor_role = $1",
            "system",
        )
        .await,
        1
    );
    // Shown on the manager's page like any other, without its secret.
    let page = signed_in_manager_browser(&app).await;
    let list = page.get("/account/api-tokens").await;
    list.assert_contains("HR sync");
    assert!(!list.body.contains(secret));

    for (email, name, expected) in [
        (
            "nobody@example.org",
            "x",
            "no account has the email address nobody@example.org",
        ),
        (
            "learner@example.org",
            "x",
            "Only staff and partner managers",
        ),
        ("staff@example.org", " ", "Name: is required"),
        ("not an address", "x", "Email:"),
    ] {
        let url = app.database_url.clone();
        let refused = tokio::task::spawn_blocking(move || {
            run_cli(
                &url,
                &["create-api-token", "--email", email, "--name", name],
            )
        })
        .await
        .unwrap();
        let stderr = String::from_utf8(refused.stderr).unwrap();
        assert!(!refused.status.success(), "{email}: {stderr}");
        assert!(refused.stdout.is_empty(), "{email}");
        assert!(stderr.contains(expected), "{email}: {stderr}");
    }
    assert_eq!(app.count("api_tokens").await, 1);
}
