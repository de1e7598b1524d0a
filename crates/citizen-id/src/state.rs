//! The shared application state handed to every request and worker.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::KeyEncryptionKey;
use crate::integrations::notify::dev_sink::DevSink;
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
    pub async fn build(
        settings: Settings,
        dev_sink: Option<Arc<DevSink>>,
        demo: Option<crate::web::demo::DemoPartner>,
    ) -> anyhow::Result<AppState> {
        let db = Db::connect(&settings.database_url).await?;
        let kek = KeyEncryptionKey::from_secret(&settings.key_encryption_secret);
        let keys = KeyRing::load(&db, &kek).await?;
        Ok(AppState(Arc::new(App { settings, db, keys, kek, dev_sink, demo })))
    }
}
