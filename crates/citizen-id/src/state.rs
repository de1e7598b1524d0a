//! The shared application state handed to every request and worker.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::KeyEncryptionKey;
use crate::integrations::gp::GpLinkageClient;
use crate::integrations::notify::dev_sink::DevSink;
use crate::integrations::pds::PdsClient;
use crate::oidc::keys::KeyRing;
use crate::store::Db;
use crate::store::partners::PartnerRecord;

pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub keys: KeyRing,
    pub kek: KeyEncryptionKey,
    /// The sandpit's development notification sink (shown on /dev/messages).
    pub dev_sink: Option<Arc<DevSink>>,
    /// The sandpit's sample partner (its client id and private key).
    pub demo: Option<crate::web::demo::DemoPartner>,
    /// PDS, the national demographics service.
    pub pds: Arc<dyn PdsClient>,
    /// GP systems' linkage interface (IDS68 NL01).
    pub gp: Arc<dyn GpLinkageClient>,
    /// The passkey relying party (RP id and origin from the issuer).
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    /// Partner records read on the token endpoint's hot path, kept for `PARTNER_CACHE_TTL`.
    /// Shared, not cloned per request: a record carries its keys as JSON (a dozen allocations).
    partner_cache: std::sync::RwLock<std::collections::HashMap<String, (std::time::Instant, Arc<PartnerRecord>)>>,
}

/// How long a partner record read for client authentication is reused. A change made with
/// `citizen-id partner update|remove` reaches every instance within this time.
pub const PARTNER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl App {
    /// The partner, from a short-lived cache (client authentication runs on every token
    /// request; the registry changes rarely).
    pub async fn partner_cached(&self, client_id: &str) -> crate::store::StoreResult<Option<Arc<PartnerRecord>>> {
        if let Some((at, p)) = self.partner_cache.read().expect("cache lock").get(client_id)
            && at.elapsed() < PARTNER_CACHE_TTL
        {
            return Ok(Some(p.clone()));
        }
        let found = self.db.partner(client_id).await?.map(Arc::new);
        let mut cache = self.partner_cache.write().expect("cache lock");
        match &found {
            Some(p) => {
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(client_id.to_string(), (std::time::Instant::now(), p.clone()));
            }
            None => {
                cache.remove(client_id);
            }
        }
        Ok(found)
    }
}

/// The third parties and sandpit extras a server is built with.
pub struct Integrations {
    pub dev_sink: Option<Arc<DevSink>>,
    pub demo: Option<crate::web::demo::DemoPartner>,
    pub pds: Arc<dyn PdsClient>,
    pub gp: Arc<dyn GpLinkageClient>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    /// Connects storage, loads keys and assembles the state (no server yet).
    pub async fn build(settings: Settings, integrations: Integrations) -> anyhow::Result<AppState> {
        let Integrations { dev_sink, demo, pds, gp } = integrations;
        let db = Db::connect(&settings.database_url).await?;
        let kek = KeyEncryptionKey::from_secret(&settings.key_encryption_secret);
        let keys = KeyRing::load(&db, &kek).await?;
        let webauthn = Arc::new(crate::passkeys::relying_party(&settings.issuer)?);
        Ok(AppState(Arc::new(App { settings, db, keys, kek, dev_sink, demo, pds, gp, webauthn, partner_cache: Default::default() })))
    }
}
