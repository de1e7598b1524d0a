//! The anonymous-GET phases: rows in the `sessions` table before and after 10,000 anonymous
//! GETs of the plain pages (/, /signin, /register; target: no new row), and, reported
//! separately, after 10,000 anonymous GET /authorize with a valid partner request (issue 15,
//! item 9: 59,000 rows in 20 s). Each request comes from a client without cookies, as a crawler
//! or a flood would; the rows are counted in the server's own database (its SQLite file, or the
//! bench's PostgreSQL database) with a plain `COUNT(*)`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;

use crate::{Ctx, Job, PhaseResult, phase};

pub const PLAIN_PAGES: [&str; 3] = ["/", "/signin", "/register"];

pub struct SessionRows {
    pub phase: PhaseResult,
    pub rows_before: i64,
    pub rows_after: i64,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
}

impl SessionRows {
    pub fn created(&self) -> i64 {
        self.rows_after - self.rows_before
    }
}

/// Reads the server's `sessions` table (read-only on SQLite).
pub struct SessionCounter {
    pool: sqlx::AnyPool,
}

impl SessionCounter {
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<SessionCounter> {
        sqlx::any::install_default_drivers();
        let sqlite = format!("sqlite://{}?mode=ro", data_dir.join("citizen-id.db").display());
        let pool = AnyPoolOptions::new().max_connections(1).connect(database_url.unwrap_or(&sqlite)).await?;
        Ok(SessionCounter { pool })
    }

    pub async fn count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions").fetch_one(&self.pool).await?)
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// GETs `urls[i % urls.len()]` `n` times without cookies, counting the session rows around them.
/// Any answer below 400 is a success (the home page and /authorize redirect).
pub async fn run(ctx: &Ctx, counter: &SessionCounter, name: &str, urls: Vec<String>, n: usize, limit: Duration) -> anyhow::Result<SessionRows> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).tcp_nodelay(true).build()?;
    let statuses: Arc<Mutex<BTreeMap<u16, u64>>> = Arc::default();
    let urls = Arc::new(urls);
    let job: Job = {
        let statuses = statuses.clone();
        Arc::new(move |i| {
            let (http, urls, statuses) = (http.clone(), urls.clone(), statuses.clone());
            Box::pin(async move {
                let res = http.get(&urls[i % urls.len()]).send().await.map_err(|e| e.to_string())?;
                let status = res.status();
                let _ = res.bytes().await;
                *statuses.lock().unwrap().entry(status.as_u16()).or_default() += 1;
                if status.as_u16() < 400 { Ok(()) } else { Err(format!("{}: {status}", urls[i % urls.len()])) }
            })
        })
    };
    let rows_before = counter.count().await?;
    let phase = phase(ctx, name, job, 0, n, limit).await;
    let rows_after = counter.count().await?;
    let statuses = std::mem::take(&mut *statuses.lock().unwrap());
    eprintln!("  {name}: session rows {rows_before} → {rows_after} (+{}); statuses {statuses:?}", rows_after - rows_before);
    Ok(SessionRows { phase, rows_before, rows_after, statuses })
}
