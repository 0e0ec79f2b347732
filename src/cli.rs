//! The command line: parses arguments and calls into the library.

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::configuration::Settings;
use crate::db::Db;
use crate::domain::{EmailAddress, Password, SecretToken};
use crate::jobs::{self, Runner};
use crate::startup::Application;
use crate::{demo, services, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "partner-catalog",
    version,
    about = "Course catalogs for corporate partners"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate the database, then serve the web application.
    Serve {
        /// Also load the demo data and print its sign-ins.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Create a staff account, or make an existing account staff, and set its password.
    CreateStaff {
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make an API token for a staff member or partner manager and print it, once.
    CreateApiToken {
        /// The account the token acts as.
        #[arg(long)]
        email: String,
        /// What the token is for (shown on the account's API tokens page).
        #[arg(long)]
        name: String,
    },
    /// Load the demo data (safe to run again).
    SeedDemo,
    /// Run the background jobs (email delivery, reminders, …) on their own.
    Worker,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = actix_web::rt::System::new().block_on(run(cli.command, settings));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Creates and migrates the database, waiting for it (with backoff) while it is away.
async fn prepare_database(settings: &Settings) -> anyhow::Result<Db> {
    Db::connect_with_retry(settings).await
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            prepare_database(&settings).await?;
            println!("Database is up to date.");
        }
        Command::Serve { demo: with_demo } => {
            let db = prepare_database(&settings).await?;
            let sign_ins = if with_demo {
                Some(demo::seed(&db, &services::ServiceContext::from_settings(&settings)).await?)
            } else {
                None
            };
            let base_url = settings.base_url.clone();
            let app = Application::build(settings, db)?;
            println!(
                "Partner Catalog is listening on {base_url} (port {})",
                app.port()
            );
            match app.mail_destination() {
                Some(to) => println!("Emails are sent to {to}."),
                None => {
                    println!("Emails wait in the outbox for a separate worker (RUN_WORKER=false).")
                }
            }
            if let Some(sign_ins) = sign_ins {
                println!("{sign_ins}");
            }
            app.run_until_stopped().await?;
        }
        Command::CreateStaff {
            email,
            password_stdin,
        } => {
            let db = prepare_database(&settings).await?;
            let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("email {e}"))?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                let line = line.trim_end_matches(['\r', '\n']).to_string();
                (
                    Password::parse(&line).map_err(|e| anyhow::anyhow!("password {e}"))?,
                    false,
                )
            } else {
                let generated = SecretToken::generate().into_string();
                (
                    Password::parse(&generated).map_err(|e| anyhow::anyhow!("password {e}"))?,
                    true,
                )
            };
            let printed = password.expose().to_string();
            let user = services::accounts::create_staff(&db, email, password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Staff account {} is ready.", user.email);
            if generated {
                println!("Password: {printed}");
            }
        }
        Command::CreateApiToken { email, name } => {
            let db = prepare_database(&settings).await?;
            let address = email.trim().to_lowercase();
            let (token, secret) = db
                .transaction(move |conn| {
                    services::api_tokens::create_for_email(conn, &email, &name)
                })
                .await
                .map_err(|e| match e {
                    crate::error::Error::NotFound(_) => {
                        anyhow::anyhow!("no account has the email address {address}")
                    }
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!("{secret}");
            eprintln!(
                "API token \"{}\" (#{}) was made. It is printed above once and cannot be shown again.",
                token.name, token.id
            );
        }
        Command::SeedDemo => {
            let db = prepare_database(&settings).await?;
            println!(
                "{}",
                demo::seed(&db, &services::ServiceContext::from_settings(&settings)).await?
            );
        }
        Command::Worker => {
            // Listen for stop signals before anything else, so that one arriving during
            // start-up or the first batch ends the process gracefully.
            let shutdown = jobs::shutdown_signal();
            let db = prepare_database(&settings).await?;
            let runner = Runner::from_settings(&settings, db)?;
            println!(
                "Worker running {}; emails go to {}. Ctrl-C or SIGTERM stops it.",
                runner.describe(),
                runner.mail_destination()
            );
            runner.run(shutdown).await;
        }
    }
    Ok(())
}
