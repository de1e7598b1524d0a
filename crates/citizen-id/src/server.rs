//! Starting the HTTP server and its workers on a bound listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::integrations::gp::GpLinkageClient;
use crate::integrations::gp::client::HttpGpLinkageClient;
use crate::integrations::notify::NotificationProvider;
use crate::integrations::pds::PdsClient;
use crate::integrations::pds::client::HttpPdsClient;
use crate::integrations::notify::failover::FailoverProvider;
use crate::integrations::notify::notify_client::NotifyClient;
use crate::ops::{delivery, telemetry};
use crate::state::AppState;
use crate::web::router::{metrics_router, router};

pub struct Running {
    pub addr: SocketAddr,
    /// The operator's `/metrics` listener, when it has its own (`metrics_listen`).
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub task: tokio::task::JoinHandle<()>,
}

/// The notification provider chain from configuration: Notify-compatible providers in order,
/// or the development sink in the sandpit.
pub fn provider_from(state: &AppState) -> anyhow::Result<Arc<dyn NotificationProvider>> {
    if let Some(sink) = &state.dev_sink {
        return Ok(sink.clone() as Arc<dyn NotificationProvider>);
    }
    let http = reqwest::Client::builder().build()?;
    let mut providers: Vec<Arc<dyn NotificationProvider>> = Vec::new();
    for (i, p) in state.settings.notify_providers.iter().enumerate() {
        let client = NotifyClient::new(http.clone(), &p.base_url, &p.api_key)
            .map_err(|e| anyhow::anyhow!("notify provider {}: {e}", i + 1))?
            .with_name(format!("notify-{}", i + 1))
            .with_templates(p.templates.clone());
        providers.push(Arc::new(client));
    }
    if providers.is_empty() {
        anyhow::bail!("no notification provider configured (notify / CITIZEN_ID_NOTIFY_URL and CITIZEN_ID_NOTIFY_API_KEY)");
    }
    Ok(Arc::new(FailoverProvider::new(providers)))
}

/// The real HTTP clients for PDS and the GP linkage service, at the configured URLs. `serve`
/// refuses to start without both (`config`); should a caller pass none, the client points at an
/// unroutable address and every call fails as "unavailable" (never a silent success).
pub fn third_parties(pds_url: Option<&str>, gp_url: Option<&str>) -> anyhow::Result<(Arc<dyn PdsClient>, Arc<dyn GpLinkageClient>)> {
    let http = reqwest::Client::builder().build()?;
    let timeout = Duration::from_secs(5);
    let unconfigured = "http://127.0.0.1:9/unconfigured";
    let pds = HttpPdsClient::new(http.clone(), pds_url.unwrap_or(unconfigured), timeout).map_err(|e| anyhow::anyhow!("PDS URL: {e}"))?;
    let gp = HttpGpLinkageClient::new(http, gp_url.unwrap_or(unconfigured), timeout).map_err(|e| anyhow::anyhow!("GP URL: {e}"))?;
    Ok((Arc::new(pds), Arc::new(gp)))
}

/// Starts the bundled PDS and GP simulators on loopback ports (sandpit and tests), seeded
/// with the documented test patients; returns their base URLs.
pub async fn start_simulators() -> anyhow::Result<(String, String)> {
    let any = "127.0.0.1:0".parse().expect("address");
    let (pds_addr, _) = crate::integrations::pds::simulator::spawn(any, crate::integrations::pds::dataset::documented_patients()).await?;
    let (gp_addr, _) = crate::integrations::gp::simulator::spawn(any, crate::integrations::gp::documented_credentials()).await?;
    Ok((format!("http://{pds_addr}"), format!("http://{gp_addr}")))
}

/// Serves `state` on `listener`, and `/metrics` on `metrics_listen` when set, and starts the
/// workers (the delivery worker polls every `poll`; `None` runs no worker, for tests that drive
/// delivery themselves).
pub async fn start(state: AppState, listener: TcpListener, provider: Arc<dyn NotificationProvider>, poll: Option<Duration>) -> anyhow::Result<Running> {
    telemetry::init_metrics();
    let addr = listener.local_addr()?;
    let metrics_addr = match state.settings.metrics_listen {
        Some(at) => {
            let metrics = TcpListener::bind(at).await.map_err(|e| anyhow::anyhow!("metrics_listen {at}: {e}"))?;
            let bound = metrics.local_addr()?;
            tokio::spawn(async move {
                if let Err(e) = axum::serve(metrics, metrics_router()).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            });
            Some(bound)
        }
        None => None,
    };
    // Key rotations made by the CLI or another instance reach this process without a restart.
    let keys = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(keys.settings.key_refresh).await;
            if let Err(e) = keys.keys.reload(&keys.db, &keys.kek).await {
                tracing::warn!(error = %e, "signing key reload failed");
            }
        }
    });
    if let Some(poll) = poll {
        delivery::spawn_workers(state.clone(), provider, poll);
    }
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(Running { addr, metrics_addr, state, task })
}
