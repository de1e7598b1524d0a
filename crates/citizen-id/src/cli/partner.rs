//! `citizen-id partner add|list|show|update|remove` (F2).

use std::path::PathBuf;

use clap::Subcommand;

use super::Target;
use crate::clock;
use crate::config::Mode;
use crate::partners::{PartnerInput, build, check_redirect_uris_for};
use crate::store::{Db, StoreError};

#[derive(clap::Args)]
pub struct PartnerArgs {
    /// The name citizens see on the consent page.
    #[arg(long)]
    name: Option<String>,
    /// An exact redirect URI (https; http://localhost only with --sandpit). Repeat for more, at most 10.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// This registry is a sandpit's: http://localhost redirect URIs may be registered (NHS
    /// login permits no HTTP URIs, and `serve` refuses them at /authorize).
    #[arg(long)]
    sandpit: bool,
    /// The partner's RSA public key (PEM or JWK file). Repeat for more.
    #[arg(long = "public-key")]
    public_keys: Vec<PathBuf>,
    /// Permitted scopes, space separated ("openid profile email").
    #[arg(long)]
    scopes: Option<String>,
    /// A permitted vector of trust, e.g. P9.Cp.Cd. Repeat for more.
    #[arg(long = "vtr")]
    vectors: Vec<String>,
    /// Issue refresh tokens.
    #[arg(long)]
    refresh_tokens: Option<bool>,
    /// IM1 access (needed for gp_integration_credentials).
    #[arg(long)]
    im1: Option<bool>,
    /// A partner whose asserted_login_identity this partner accepts (SSO pairing). Repeat for
    /// more; on update the list given replaces the stored one.
    #[arg(long = "sso-from")]
    sso_from: Vec<String>,
    /// On update: accept assertions from no partner.
    #[arg(long, conflicts_with = "sso_from")]
    no_sso: bool,
}

#[derive(Subcommand)]
pub enum PartnerCommand {
    /// Register a partner; prints its client_id.
    Add {
        #[command(flatten)]
        target: Target,
        /// Choose the client id (default: random).
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        args: PartnerArgs,
    },
    List {
        #[command(flatten)]
        target: Target,
    },
    Show {
        #[command(flatten)]
        target: Target,
        client_id: String,
    },
    /// Change a partner; options given replace the stored values.
    Update {
        #[command(flatten)]
        target: Target,
        client_id: String,
        #[command(flatten)]
        args: PartnerArgs,
    },
    /// Remove a partner and everything issued to it.
    Remove {
        #[command(flatten)]
        target: Target,
        client_id: String,
    },
}

/// The registry's rules: the sandpit's only when the operator says so.
fn mode(sandpit: bool) -> Mode {
    if sandpit { Mode::Sandpit } else { Mode::Production }
}

fn read_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    paths.iter().map(|p| std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))).collect()
}

pub async fn run(cmd: PartnerCommand) -> anyhow::Result<()> {
    match cmd {
        PartnerCommand::Add { target, client_id, args } => {
            let db = Db::connect(&target.database_url()?).await?;
            let record = build(PartnerInput {
                client_id,
                name: args.name.unwrap_or_default(),
                redirect_uris: args.redirect_uris,
                public_keys: read_keys(&args.public_keys)?,
                scopes: args.scopes.unwrap_or_else(|| "openid".into()),
                vectors: args.vectors,
                refresh_tokens: args.refresh_tokens.unwrap_or(true),
                im1: args.im1.unwrap_or(false),
                sso_from: args.sso_from,
            })
            .map_err(anyhow::Error::msg)?;
            check_redirect_uris_for(&record, mode(args.sandpit)).map_err(anyhow::Error::msg)?;
            match db.insert_partner(&record).await {
                Err(StoreError::Conflict) => anyhow::bail!("a partner with client id {} already exists", record.client_id),
                other => other?,
            }
            println!("{}", record.client_id);
        }
        PartnerCommand::List { target } => {
            let db = Db::connect(&target.database_url()?).await?;
            for p in db.partners().await? {
                println!("{}\t{}\t{}", p.client_id, p.name, p.vectors.join(","));
            }
        }
        PartnerCommand::Show { target, client_id } => {
            let db = Db::connect(&target.database_url()?).await?;
            let p = db.partner(&client_id).await?.ok_or_else(|| anyhow::anyhow!("no partner {client_id}"))?;
            println!("{}", serde_json::to_string_pretty(&p)?);
        }
        PartnerCommand::Update { target, client_id, args } => {
            let db = Db::connect(&target.database_url()?).await?;
            let old = db.partner(&client_id).await?.ok_or_else(|| anyhow::anyhow!("no partner {client_id}"))?;
            let keys = if args.public_keys.is_empty() {
                old.public_keys.iter().map(|k| k.to_string()).collect()
            } else {
                read_keys(&args.public_keys)?
            };
            let mut record = build(PartnerInput {
                client_id: Some(client_id),
                name: args.name.unwrap_or(old.name),
                redirect_uris: if args.redirect_uris.is_empty() { old.redirect_uris } else { args.redirect_uris },
                public_keys: keys,
                scopes: args.scopes.unwrap_or_else(|| old.scopes.join(" ")),
                vectors: if args.vectors.is_empty() { old.vectors } else { args.vectors },
                refresh_tokens: args.refresh_tokens.unwrap_or(old.refresh_tokens),
                im1: args.im1.unwrap_or(old.im1),
                sso_from: match (args.no_sso, args.sso_from.is_empty()) {
                    (true, _) => Vec::new(),
                    (false, true) => old.sso_from,
                    (false, false) => args.sso_from,
                },
            })
            .map_err(anyhow::Error::msg)?;
            check_redirect_uris_for(&record, mode(args.sandpit)).map_err(anyhow::Error::msg)?;
            record.created_at = old.created_at;
            record.updated_at = clock::now_ms();
            db.update_partner(&record).await?;
            println!("updated {}", record.client_id);
        }
        PartnerCommand::Remove { target, client_id } => {
            let db = Db::connect(&target.database_url()?).await?;
            if !db.delete_partner(&client_id).await? {
                anyhow::bail!("no partner {client_id}");
            }
            println!("removed {client_id}");
        }
    }
    Ok(())
}
