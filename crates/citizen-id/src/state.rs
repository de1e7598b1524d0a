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
        Ok(AppState(Arc::new(App { settings, db, keys, kek, dev_sink, demo, pds, gp, webauthn })))
    }
}
