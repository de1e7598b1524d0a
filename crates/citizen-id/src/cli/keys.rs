//! `citizen-id keys list|rotate`.

use clap::Subcommand;

use super::Target;
use crate::clock::MINUTE;
use crate::crypto::KeyEncryptionKey;
use crate::oidc::keys;
use crate::store::Db;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the signing keys published in JWKS.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Make a new key the signer; older keys stay in JWKS until their tokens expire (60 min).
    Rotate {
        #[command(flatten)]
        target: Target,
    },
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { target } => {
            let db = Db::connect(&target.database_url()?).await?;
            for k in keys::list(&db).await? {
                let status = match (k.retired_at, k.publish_until) {
                    (None, _) => "signing".to_string(),
                    (Some(_), Some(until)) => format!("retired, published until {until}"),
                    (Some(_), None) => "retired".to_string(),
                };
                println!("{}\t{}", k.kid, status);
            }
        }
        KeysCommand::Rotate { target } => {
            let db = Db::connect(&target.database_url()?).await?;
            let kek = KeyEncryptionKey::from_secret(&target.key_secret()?);
            // Overlap: the longest-lived token signed by the old key is an ID token (60 min).
            let kid = keys::rotate(&db, &kek, 60 * MINUTE + 5 * MINUTE).await?;
            println!("{kid}");
        }
    }
    Ok(())
}
