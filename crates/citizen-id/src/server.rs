//! Starting the HTTP server and its workers on a bound listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::integrations::notify::NotificationProvider;
use crate::integrations::notify::failover::FailoverProvider;
use crate::integrations::notify::notify_client::NotifyClient;
use crate::ops::{delivery, telemetry};
use crate::state::AppState;
use crate::web::router::router;

pub struct Running {
    pub addr: SocketAddr,
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
            .with_name(format!("notify-{}", i + 1));
        providers.push(Arc::new(client));
    }
    if providers.is_empty() {
        anyhow::bail!("no notification provider configured (notify / CITIZEN_ID_NOTIFY_URL and CITIZEN_ID_NOTIFY_API_KEY)");
    }
    Ok(Arc::new(FailoverProvider::new(providers)))
}

/// Serves `state` on `listener` and starts the workers.
pub async fn start(state: AppState, listener: TcpListener, provider: Arc<dyn NotificationProvider>, poll: Duration) -> anyhow::Result<Running> {
    telemetry::init_metrics();
    let addr = listener.local_addr()?;
    delivery::spawn_workers(state.clone(), provider, poll);
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(Running { addr, state, task })
}
