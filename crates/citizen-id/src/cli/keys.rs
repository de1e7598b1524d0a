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
    /// Publish a new key now and make it the signer after --publish-ahead; older keys stay in
    /// JWKS until their tokens expire (60 min after they stop signing).
    Rotate {
        #[command(flatten)]
        target: Target,
        /// Seconds between publishing the new key and signing with it. Every running instance
        /// re-reads its keys every 20 seconds; the default gives each several chances to publish
        /// the key before any token carries it. 0 switches at once (a compromised key).
        #[arg(long, default_value_t = 120)]
        publish_ahead: u32,
    },
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { target } => {
            let db = Db::connect(&target.database_url()?).await?;
            let now = crate::clock::now_ms();
            for k in keys::list(&db).await? {
                let status = match (k.retired_at, k.publish_until) {
                    _ if k.signs_from > now => format!("published, signs from {}", k.signs_from),
                    (None, _) => "signing".to_string(),
                    (Some(at), until) if at > now => format!("signing until {at}, published until {}", until.unwrap_or(at)),
                    (Some(_), Some(until)) => format!("retired, published until {until}"),
                    (Some(_), None) => "retired".to_string(),
                };
                println!("{}\t{}", k.kid, status);
            }
        }
        KeysCommand::Rotate { target, publish_ahead } => {
            let db = Db::connect(&target.database_url()?).await?;
            let kek = KeyEncryptionKey::from_secret(&target.key_secret()?);
            // Overlap: the longest-lived token signed by the old key is an ID token (60 min).
            let (kid, signs_from) = keys::rotate(&db, &kek, i64::from(publish_ahead) * 1000, 60 * MINUTE + 5 * MINUTE).await?;
            println!("{kid}\tpublished now, signs from {signs_from}");
        }
    }
    Ok(())
}
