//! Settings, read once at start-up from a TOML file and `CITIZEN_ID_*` environment variables.
//! Functions take the narrowest part they need (`&TokenLifetimes`, `&SecurityLimits`), never
//! the whole `Settings`.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::clock::{DAY, HOUR, MINUTE};
use crate::web::client_ip::TrustedProxies;

/// Sandpit runs everything locally with simulators and the fixed test code; production never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Sandpit,
    Production,
}

/// The reference's lifetimes (Federation spec Table 18), in milliseconds.
#[derive(Debug, Clone)]
pub struct TokenLifetimes {
    pub authorization_code: i64,
    pub access_token: i64,
    pub id_token: i64,
    pub refresh_token: i64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        TokenLifetimes { authorization_code: 10 * MINUTE, access_token: 5 * MINUTE, id_token: 60 * MINUTE, refresh_token: 30 * DAY }
    }
}

/// Limits on every guessable secret.
#[derive(Debug, Clone)]
pub struct SecurityLimits {
    pub code_lifetime: i64,
    pub code_max_attempts: i64,
    pub codes_per_hour: i64,
    pub password_max_failures: i64,
    pub lockout: i64,
    /// Attempts at a guessable secret per client IP per minute.
    pub per_ip_per_minute: i64,
    /// Sign-in attempts per email per 15 minutes.
    pub per_account_per_quarter_hour: i64,
    /// Messages (codes and notes) to one email address or mobile number per hour, whatever the
    /// journey; and messages asked for from one client IP per hour.
    pub messages_per_recipient_per_hour: i64,
    pub messages_per_ip_per_hour: i64,
    /// SSO session limits: idle and absolute.
    pub session_idle: i64,
    pub session_absolute: i64,
    pub remembered_device: i64,
    /// How long a password + SMS code, or a passkey, presented in this browser lets it make
    /// sensitive changes without confirming again (OWASP ASVS 5.0 V7.5, `web::journeys::reauth`).
    pub reauth_window: i64,
    /// Demographic matches tried against PDS per account, and per client IP, in any 24 hours
    /// (`proofing::uplift`): few, so a stranger's details cannot be found by guessing.
    pub proving_per_account_per_day: i64,
    pub proving_per_ip_per_day: i64,
}

impl Default for SecurityLimits {
    fn default() -> Self {
        SecurityLimits {
            code_lifetime: 10 * MINUTE,
            code_max_attempts: 5,
            codes_per_hour: 5,
            password_max_failures: 5,
            lockout: 15 * MINUTE,
            per_ip_per_minute: 30,
            per_account_per_quarter_hour: 10,
            // Five codes of one journey an hour already; ten of any kind to one address allows a
            // citizen to register, sign in and reset in one hour, not a flood. An IP sends for
            // many people only behind a shared NAT (a practice, a care home): fifty an hour.
            messages_per_recipient_per_hour: 10,
            messages_per_ip_per_hour: 50,
            session_idle: 30 * MINUTE,
            session_absolute: 12 * HOUR,
            remembered_device: 30 * DAY,
            reauth_window: 15 * MINUTE,
            proving_per_account_per_day: 5,
            proving_per_ip_per_day: 20,
        }
    }
}

/// One Notify-compatible provider; the first is primary, the rest are fail-over.
#[derive(Debug, Clone, Deserialize)]
pub struct NotifyProviderSettings {
    pub base_url: String,
    pub api_key: String,
    /// Template name -> this Notify service's template id (see `accounts::messages::Template`).
    #[serde(default)]
    pub templates: std::collections::HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    /// The issuer URL, without a trailing slash: `https://auth.example.org`.
    pub issuer: String,
    pub listen: SocketAddr,
    pub database_url: String,
    pub key_encryption_secret: String,
    pub notify_providers: Vec<NotifyProviderSettings>,
    /// The proxies in front of the service whose `X-Forwarded-For` hops are believed (see
    /// `web::client_ip` for the walk); empty: the TCP peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// Where `/metrics` is served: its own listener, not the public one (`serve`, loopback by
    /// default: it names partners and counts their sign-ins). `None` keeps it on the main
    /// listener (the sandpit).
    pub metrics_listen: Option<SocketAddr>,
    pub lifetimes: TokenLifetimes,
    pub limits: SecurityLimits,
    /// The sandpit's fixed one-time code; always `None` in production.
    pub test_code: Option<String>,
    /// PDS FHIR R4 base URL (e.g. `https://api.service.nhs.uk/personal-demographics/FHIR/R4`).
    pub pds_base_url: Option<String>,
    /// The GP linkage (IDS68 NL01) service base URL.
    pub gp_base_url: Option<String>,
    /// How often each process re-reads the signing keys, to pick up a rotation made elsewhere.
    /// `citizen-id keys rotate` publishes its new key 120 seconds before it signs by default:
    /// several of these.
    pub key_refresh: std::time::Duration,
}

/// The default for `Settings::key_refresh`.
pub const KEY_REFRESH: std::time::Duration = std::time::Duration::from_secs(20);

impl Settings {
    /// Cookies get `Secure` and the `__Host-` prefix whenever the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// What a production config file holds (everything else has safe defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub issuer: Option<String>,
    pub listen: Option<SocketAddr>,
    /// Argon2 threads (each holds 19 MiB for good); default one per core, at most 4
    /// (`crypto::password::pool_threads`).
    pub password_hashing_threads: Option<usize>,
    pub database_url: Option<String>,
    pub key_encryption_secret: Option<String>,
    #[serde(default)]
    pub notify: Vec<NotifyProviderSettings>,
    /// CIDR ranges (IPv4 or IPv6) of the proxies in front of the service.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub pds_base_url: Option<String>,
    pub gp_base_url: Option<String>,
}

/// The default of `metrics_listen` in production: loopback only, Prometheus exporters' port.
pub const METRICS_LISTEN: &str = "127.0.0.1:9464";

impl FileConfig {
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<FileConfig> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| {
                    let hint = if e.to_string().contains("trust_forwarded_for") {
                        "\n(trust_forwarded_for is gone: list your proxies' addresses in trusted_proxies, e.g. [\"10.0.0.0/8\"])"
                    } else {
                        ""
                    };
                    anyhow::anyhow!("{}: {e}{hint}", p.display())
                })?
            }
            None => FileConfig::default(),
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(v) = env("CITIZEN_ID_ISSUER") {
            cfg.issuer = Some(v);
        }
        if let Some(v) = env("DATABASE_URL") {
            cfg.database_url = Some(v);
        }
        if let Some(v) = env("CITIZEN_ID_KEY_ENCRYPTION_SECRET") {
            cfg.key_encryption_secret = Some(v);
        }
        if let Some(v) = env("CITIZEN_ID_LISTEN") {
            cfg.listen = Some(v.parse().map_err(|e| anyhow::anyhow!("CITIZEN_ID_LISTEN: {e}"))?);
        }
        if let Some(v) = env("CITIZEN_ID_PASSWORD_HASHING_THREADS") {
            cfg.password_hashing_threads = Some(v.parse().map_err(|e| anyhow::anyhow!("CITIZEN_ID_PASSWORD_HASHING_THREADS: {e}"))?);
        }
        if let Some(v) = env("CITIZEN_ID_PDS_URL") {
            cfg.pds_base_url = Some(v);
        }
        if let Some(v) = env("CITIZEN_ID_GP_URL") {
            cfg.gp_base_url = Some(v);
        }
        if let Some(v) = env("CITIZEN_ID_TRUSTED_PROXIES") {
            cfg.trusted_proxies = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        }
        if let Some(v) = env("CITIZEN_ID_METRICS_LISTEN") {
            cfg.metrics_listen = Some(v.parse().map_err(|e| anyhow::anyhow!("CITIZEN_ID_METRICS_LISTEN: {e}"))?);
        }
        if let (Some(base_url), Some(api_key)) = (env("CITIZEN_ID_NOTIFY_URL"), env("CITIZEN_ID_NOTIFY_API_KEY")) {
            cfg.notify.insert(0, NotifyProviderSettings { base_url, api_key, templates: Default::default() });
        }
        Ok(cfg)
    }

    /// Production settings: refuses to start without an issuer, a database, a key secret, and
    /// the PDS and GP linkage services (without them every proof of identity would fail as an
    /// outage, which is a misconfiguration to report at start, not to find in production).
    pub fn into_production(self) -> anyhow::Result<Settings> {
        let issuer = self.issuer.ok_or_else(|| anyhow::anyhow!("an issuer URL is required (issuer / CITIZEN_ID_ISSUER)"))?;
        let issuer = issuer.trim_end_matches('/').to_string();
        if !issuer.starts_with("https://") && !is_local(&issuer) {
            anyhow::bail!("the issuer must be an https URL");
        }
        let database_url = self.database_url.ok_or_else(|| anyhow::anyhow!("a database URL is required (database_url / DATABASE_URL)"))?;
        let key_encryption_secret = self
            .key_encryption_secret
            .ok_or_else(|| anyhow::anyhow!("a key-encryption secret is required (key_encryption_secret / CITIZEN_ID_KEY_ENCRYPTION_SECRET)"))?;
        if key_encryption_secret.len() < 32 {
            anyhow::bail!("the key-encryption secret must be at least 32 characters");
        }
        let pds_base_url = self.pds_base_url.ok_or_else(|| anyhow::anyhow!("a PDS FHIR base URL is required (pds_base_url / CITIZEN_ID_PDS_URL)"))?;
        let gp_base_url = self.gp_base_url.ok_or_else(|| anyhow::anyhow!("a GP linkage service URL is required (gp_base_url / CITIZEN_ID_GP_URL)"))?;
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies).map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        Ok(Settings {
            mode: Mode::Production,
            issuer,
            listen: self.listen.unwrap_or_else(|| "0.0.0.0:8080".parse().expect("address")),
            database_url,
            key_encryption_secret,
            notify_providers: self.notify,
            trusted_proxies,
            metrics_listen: Some(self.metrics_listen.unwrap_or_else(|| METRICS_LISTEN.parse().expect("address"))),
            lifetimes: TokenLifetimes::default(),
            limits: SecurityLimits::default(),
            test_code: None,
            pds_base_url: Some(pds_base_url),
            gp_base_url: Some(gp_base_url),
            key_refresh: KEY_REFRESH,
        })
    }
}

fn is_local(url: &str) -> bool {
    ["http://localhost", "http://127.0.0.1", "http://[::1]"].iter().any(|p| url.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> FileConfig {
        FileConfig {
            issuer: Some("https://auth.example.org/".into()),
            database_url: Some("postgres://db.example/cid".into()),
            key_encryption_secret: Some("s".repeat(32)),
            pds_base_url: Some("https://pds.example/FHIR/R4".into()),
            gp_base_url: Some("https://gp.example".into()),
            ..FileConfig::default()
        }
    }

    #[test]
    fn production_needs_each_secret_and_never_takes_the_test_code() {
        let settings = complete().into_production().unwrap();
        assert_eq!((settings.mode, settings.issuer.as_str(), settings.test_code), (Mode::Production, "https://auth.example.org", None));
        let missing = |edit: fn(&mut FileConfig)| {
            let mut cfg = complete();
            edit(&mut cfg);
            cfg.into_production().unwrap_err().to_string()
        };
        assert!(missing(|c| c.issuer = None).contains("an issuer URL is required"));
        assert!(missing(|c| c.issuer = Some("http://auth.example.org".into())).contains("must be an https URL"));
        assert!(missing(|c| c.database_url = None).contains("a database URL is required"));
        assert!(missing(|c| c.key_encryption_secret = None).contains("a key-encryption secret is required"));
        assert!(missing(|c| c.key_encryption_secret = Some("short".into())).contains("at least 32 characters"));
        assert!(missing(|c| c.pds_base_url = None).contains("a PDS FHIR base URL is required (pds_base_url / CITIZEN_ID_PDS_URL)"));
        assert!(missing(|c| c.gp_base_url = None).contains("a GP linkage service URL is required (gp_base_url / CITIZEN_ID_GP_URL)"));
        assert!(missing(|c| c.trusted_proxies = vec!["10.0.0.0/8".into(), "10.0.0.0/40".into()]).contains("trusted_proxies: \"10.0.0.0/40\""));
        assert!(missing(|c| c.trusted_proxies = vec!["proxy.internal".into()]).contains("is not an IP address or CIDR range"));
    }

    #[test]
    fn production_serves_metrics_on_loopback_and_reads_its_proxies() {
        let settings = complete().into_production().unwrap();
        assert_eq!(settings.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(settings.trusted_proxies.is_empty(), "no proxy is trusted unless named");
        let cfg: FileConfig = toml::from_str("trusted_proxies = [\"10.0.0.0/8\", \"2001:db8::/32\"]\nmetrics_listen = \"127.0.0.1:9100\"").unwrap();
        let settings = FileConfig { trusted_proxies: cfg.trusted_proxies, metrics_listen: cfg.metrics_listen, ..complete() }.into_production().unwrap();
        assert!(settings.trusted_proxies.trusts("10.1.1.1".parse().unwrap()) && settings.trusted_proxies.trusts("2001:db8::9".parse().unwrap()));
        assert_eq!(settings.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
    }

    #[test]
    fn the_old_forwarded_for_switch_is_refused_with_its_replacement_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("citizen-id.toml");
        std::fs::write(&path, "trust_forwarded_for = true\n").unwrap();
        let err = FileConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("trust_forwarded_for") && err.contains("trusted_proxies"), "{err}");
    }
}
