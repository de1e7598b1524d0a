//! The `citizen-id` command: run the service (sandpit or production) and operate it.

mod keys;
mod partner;
pub mod sandpit;
mod simulate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::FileConfig;

#[derive(Parser)]
#[command(name = "citizen-id", version, about = "Citizen ID: identity verification and sign-in for health and care")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where operator commands find the database: the sandpit's data dir or `DATABASE_URL`.
#[derive(clap::Args, Clone)]
pub struct Target {
    /// The sandpit data directory (SQLite and keys live there).
    #[arg(long, default_value = ".data/sandpit")]
    pub data_dir: PathBuf,
    /// A database URL (sqlite:... or postgres://...); overrides --data-dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

impl Target {
    pub fn database_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(format!("sqlite://{}?mode=rwc", self.data_dir.join("citizen-id.db").display()))
    }

    /// The key-encryption secret: from the environment, or the sandpit's data dir.
    pub fn key_secret(&self) -> anyhow::Result<String> {
        if let Ok(v) = std::env::var("CITIZEN_ID_KEY_ENCRYPTION_SECRET") {
            return Ok(v);
        }
        sandpit::read_or_create_secret(&self.data_dir)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run everything on embedded defaults: SQLite, simulators, a demo partner, test code 190696.
    Sandpit(sandpit::SandpitArgs),
    /// Run in production from a config file and environment variables.
    Serve {
        /// TOML config file (issuer, database_url, key_encryption_secret, [[notify]] ...).
        #[arg(long, env = "CITIZEN_ID_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        target: Target,
    },
    /// Token signing keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Partner services (OIDC clients).
    Partner {
        #[command(subcommand)]
        command: partner::PartnerCommand,
    },
    /// Run a bundled third-party simulator, or make test data for one.
    Simulate {
        #[command(subcommand)]
        command: simulate::SimulateCommand,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sandpit(args) => sandpit::run(args).await,
        Command::Serve { config } => serve(config).await,
        Command::Migrate { target } => {
            crate::store::Db::connect(&target.database_url()?).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys { command } => keys::run(command).await,
        Command::Partner { command } => partner::run(command).await,
        Command::Simulate { command } => simulate::run(command).await,
    }
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    crate::ops::telemetry::init_logging(true);
    let file = FileConfig::load(config.as_deref())?;
    let hashing_threads = crate::crypto::password::configure(file.password_hashing_threads);
    tracing::info!(hashing_threads, "password hashing threads started");
    let settings = file.into_production()?;
    let listen = settings.listen;
    let (pds, gp) = crate::server::third_parties(settings.pds_base_url.as_deref(), settings.gp_base_url.as_deref())?;
    let integrations = crate::state::Integrations { dev_sink: None, demo: None, pds, gp };
    let state = crate::state::AppState::build(settings, integrations).await?;
    let provider = crate::server::provider_from(&state)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let running = crate::server::start(state, listener, provider, Some(std::time::Duration::from_secs(1))).await?;
    tracing::info!(addr = %running.addr, metrics = ?running.metrics_addr, "citizen-id serving");
    running.task.await?;
    Ok(())
}
