//! The load harness on PostgreSQL (`--postgres ADMIN_URL`): a fresh database for the run, the
//! server pointed at it with `DATABASE_URL`, and the database backends that serve it pinned to
//! the server's core and counted as the server's CPU. On SQLite that work happens inside the
//! server process; counting the backends keeps the two figures comparable (the whole service
//! on one core). PostgreSQL's own background processes (WAL writer, checkpointer) are neither
//! pinned nor counted: they show as "other" CPU.

use std::process::{Command, Stdio};

use sqlx::any::AnyPoolOptions;

pub struct BenchDb {
    /// A connection to the admin database, for `pg_stat_activity` and the final `DROP`.
    admin: sqlx::AnyPool,
    pub name: String,
    /// The bench database's URL, as the server and the setup code get it.
    pub url: String,
}

impl BenchDb {
    /// Creates `cid_bench_<pid>` through `admin_url` (a database the user may `CREATE DATABASE` from).
    pub async fn create(admin_url: &str) -> anyhow::Result<BenchDb> {
        sqlx::any::install_default_drivers();
        let admin = AnyPoolOptions::new().max_connections(1).connect(admin_url).await?;
        let name = format!("cid_bench_{}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await?;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(BenchDb { admin, name, url: url.to_string() })
    }

    /// The server processes of the bench database's connections now.
    pub async fn backends(&self) -> Vec<u32> {
        sqlx::query_scalar::<_, i32>("SELECT pid FROM pg_stat_activity WHERE datname = $1")
            .bind(&self.name)
            .fetch_all(&self.admin)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pid| u32::try_from(pid).ok())
            .collect()
    }

    /// Pins `pids` to `cpu` (best effort: a backend may have ended meanwhile).
    pub fn pin(pids: &[u32], cpu: usize) {
        for pid in pids {
            let _ = Command::new("taskset")
                .args(["-p", "-c", &cpu.to_string(), &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Drops the bench database (its server has stopped; `FORCE` ends any straggler).
    pub async fn remove(self) {
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))).execute(&self.admin).await {
            eprintln!("  warning: could not drop the bench database {}: {e}", self.name);
        }
        self.admin.close().await;
    }
}
