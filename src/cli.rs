//! The command line: parses arguments and calls into the library.

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::configuration::Settings;
use crate::db::{self, Db};
use crate::domain::{EmailAddress, Password, SecretToken};
use crate::mail::Worker;
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
    /// Load the demo data (safe to run again).
    SeedDemo,
    /// Run the email outbox worker on its own.
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

fn prepare_database(settings: &Settings) -> anyhow::Result<Db> {
    let url = settings.database_url.expose_secret();
    db::create_database_if_missing(url)?;
    db::run_migrations(url)?;
    Db::connect(settings)
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            prepare_database(&settings)?;
            println!("Database is up to date.");
        }
        Command::Serve { demo: with_demo } => {
            let db = prepare_database(&settings)?;
            let sign_ins = if with_demo {
                Some(demo::seed(&db).await?)
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
            let db = prepare_database(&settings)?;
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
        Command::SeedDemo => {
            let db = prepare_database(&settings)?;
            println!("{}", demo::seed(&db).await?);
        }
        Command::Worker => {
            let db = prepare_database(&settings)?;
            let worker = Worker::from_settings(&settings, db)?;
            println!(
                "Email worker sending through {}; Ctrl-C stops it.",
                worker.transport().describe()
            );
            worker.run(crate::mail::worker::shutdown_signal()).await;
        }
    }
    Ok(())
}
