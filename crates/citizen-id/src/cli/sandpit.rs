//! `citizen-id sandpit`: the whole service on one machine, like a `start-dev`. SQLite in the
//! data dir, a generated key-encryption secret, notifications on a development page, a demo
//! partner, and the fixed test code 190696. Never for real citizens.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Mode, SecurityLimits, Settings, TokenLifetimes};
use crate::integrations::notify::dev_sink::DevSink;
use crate::oidc::keys::generate_rsa_pkcs8;
use crate::partners::{PartnerInput, build};
use crate::state::{AppState, Integrations};
use crate::store::StoreError;
use crate::web::demo::DemoPartner;

/// The sandpit's fixed one-time code (as NHS login's sandpit documents).
pub const TEST_CODE: &str = "190696";
pub const DEMO_CLIENT_ID: &str = "sandpit-demo";

#[derive(clap::Args)]
pub struct SandpitArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[arg(long, default_value = ".data/sandpit")]
    data_dir: PathBuf,
}

pub fn read_or_create_secret(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("key-encryption-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(s.trim().to_string());
    }
    let secret = crate::crypto::random_token(32);
    write_private(&path, secret.as_bytes())?;
    Ok(secret)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    Ok(())
}

/// Sandpit settings for an issuer and database.
pub fn settings(issuer: String, listen: SocketAddr, database_url: String, secret: String) -> Settings {
    Settings {
        mode: Mode::Sandpit,
        issuer,
        listen,
        database_url,
        key_encryption_secret: secret,
        notify_providers: vec![],
        trusted_proxies: Default::default(),
        metrics_listen: None,
        lifetimes: TokenLifetimes::default(),
        limits: SecurityLimits::default(),
        test_code: Some(TEST_CODE.to_string()),
        pds_base_url: None,
        gp_base_url: None,
        key_refresh: crate::config::KEY_REFRESH,
    }
}

/// The demo partner's key (kept in the data dir) and its registration, created or refreshed.
pub async fn ensure_demo_partner(state: &AppState, der: &[u8], public_jwk: &serde_json::Value) -> anyhow::Result<()> {
    let mut jwk = public_jwk.clone();
    jwk["kid"] = "demo-1".into();
    let record = build(PartnerInput {
        client_id: Some(DEMO_CLIENT_ID.into()),
        name: "Sample partner service".into(),
        redirect_uris: vec![state.settings.endpoint("/demo/callback")],
        public_keys: vec![jwk.to_string()],
        scopes: "openid profile basic_demographics profile_extended email phone landline gp_registration_details client_metadata".into(),
        vectors: ["P0.Cp.Cd", "P5.Cp.Cd", "P9.Cp.Cd", "P0.Cm", "P5.Cm", "P9.Cm", "P9.Cp.Ck"].iter().map(|s| s.to_string()).collect(),
        refresh_tokens: true,
        im1: false,
        sso_from: vec![],
    })
    .map_err(anyhow::Error::msg)?;
    let _ = der;
    match state.db.insert_partner(&record).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict) => {
            state.db.update_partner(&record).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

pub fn demo_key(dir: &Path) -> anyhow::Result<(Vec<u8>, serde_json::Value)> {
    let path = dir.join("demo-partner-key.pk8");
    let public = dir.join("demo-partner-key.jwk.json");
    if let (Ok(der), Ok(jwk)) = (std::fs::read(&path), std::fs::read_to_string(&public)) {
        return Ok((der, serde_json::from_str(&jwk)?));
    }
    let (der, jwk) = generate_rsa_pkcs8()?;
    write_private(&path, &der)?;
    std::fs::write(&public, jwk.to_string())?;
    Ok((der, jwk))
}

pub async fn run(args: SandpitArgs) -> anyhow::Result<()> {
    crate::ops::telemetry::init_logging(false);
    std::fs::create_dir_all(&args.data_dir)?;
    let secret = read_or_create_secret(&args.data_dir)?;
    let database_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", args.data_dir.join("citizen-id.db").display()));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_loopback() { "localhost".to_string() } else { addr.ip().to_string() };
    let issuer = format!("http://{host}:{}", addr.port());
    let (der, jwk) = demo_key(&args.data_dir)?;
    let demo = DemoPartner::from_pkcs8(DEMO_CLIENT_ID, &der)?;
    let sink = Arc::new(DevSink::new());
    let (pds_url, gp_url) = crate::server::start_simulators().await?;
    let (pds, gp) = crate::server::third_parties(Some(&pds_url), Some(&gp_url))?;
    let mut settings = settings(issuer.clone(), addr, database_url, secret);
    settings.pds_base_url = Some(pds_url.clone());
    settings.gp_base_url = Some(gp_url.clone());
    let integrations = Integrations { dev_sink: Some(sink.clone()), demo: Some(demo), pds, gp };
    let state = AppState::build(settings, integrations).await?;
    ensure_demo_partner(&state, &der, &jwk).await?;
    let running = crate::server::start(state, listener, sink, Some(Duration::from_millis(200))).await?;
    // Written, not `println!`ed: a closed stdout (`citizen-id sandpit | head`) must not stop
    // the server, and `println!` panics when it cannot write.
    let banner = format!(
        "\n  Citizen ID sandpit is running.\n\n  Open:               {issuer}/\n  Sample partner:     {issuer}/demo\n  \
         Messages sent:      {issuer}/dev/messages\n  Discovery:          {issuer}/.well-known/openid-configuration\n  \
         Test security code: {TEST_CODE}\n  PDS simulator:      {pds_url}   GP simulator: {gp_url}\n  Data:               {}\n\n",
        args.data_dir.display()
    );
    let mut stdout = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut stdout, banner.as_bytes()).and_then(|()| std::io::Write::flush(&mut stdout));
    drop(stdout);
    running.task.await?;
    Ok(())
}
