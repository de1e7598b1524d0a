//! Storage promises: one schema in two dialects, a tamper-evident audit trail, signing keys sealed
//! at rest, rate-limit windows.

use crate::on_both_databases;
use crate::support::TestApp;

#[test]
fn both_backends_have_the_same_migration_files() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let names = |b: &str| {
        let mut v: Vec<String> = std::fs::read_dir(format!("{dir}/{b}")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
    assert!(!names("sqlite").is_empty());
}

async fn the_audit_trail_detects_tampering(app: TestApp) {
    let citizen = app.citizen().await;
    let ip = "192.0.2.1";
    citizen_id::accounts::signin::audit(&app.state, "test.one", Some(&citizen.id), ip, serde_json::json!({})).await;
    citizen_id::accounts::signin::audit(&app.state, "test.two", Some(&citizen.id), ip, serde_json::json!({})).await;
    assert_eq!(app.state.db.verify_audit_chain().await.unwrap(), None);
    sqlx::query("UPDATE audit_log SET event = 'test.edited' WHERE event = 'test.one'").execute(app.state.db.pool()).await.unwrap();
    assert!(app.state.db.verify_audit_chain().await.unwrap().is_some(), "an edited row breaks the chain");
}

/// Signing keys at rest (issue item 6): the stored private half is AES-GCM sealed under the
/// key-encryption secret, bound to its kid: no PKCS#8 in the clear, and neither another secret
/// nor another key's context opens it.
async fn signing_keys_are_sealed_at_rest(app: TestApp) {
    use citizen_id::crypto::KeyEncryptionKey;
    let (kid, stored): (String, String) = sqlx::query_as("SELECT kid, private_key FROM signing_keys").fetch_one(app.state.db.pool()).await.unwrap();
    assert!(stored.starts_with("v1.") && !stored.contains("MII") && !stored.contains("PRIVATE KEY"), "sealed, not PKCS#8: {}", &stored[..20]);
    let context = format!("signing_keys:{kid}");
    let der = app.state.kek.open(&context, &stored).expect("the server's secret opens it");
    assert_eq!(der[0], 0x30, "a DER sequence inside");
    assert!(KeyEncryptionKey::from_secret(&"another-secret-".repeat(3)).open(&context, &stored).is_err());
    assert!(app.state.kek.open("signing_keys:another-kid", &stored).is_err(), "bound to its kid");
}

on_both_databases!(the_audit_trail_detects_tampering, signing_keys_are_sealed_at_rest);

/// A rate-limit bucket keeps the window before the current one (the sliding count), forgets
/// windows further back, and counts every one of many hits made at once.
async fn rate_limit_windows_carry_over_and_count_every_hit(app: TestApp) {
    use citizen_id::store::rate_limits::WindowHits;
    const LEN: i64 = 60_000;
    let db = &app.state.db;
    // Far ahead of the real clock, so the app's purge worker leaves these rows alone.
    let start = 70_000_000 * LEN;
    let hits = |current, previous| WindowHits { current, previous };
    for n in 1..=3 {
        assert_eq!(db.hit_sliding("ip:test:a", start, LEN).await.unwrap(), hits(n, 0));
    }
    assert_eq!(db.hit_sliding("ip:test:a", start + LEN, LEN).await.unwrap(), hits(1, 3), "the window just before carries over");
    assert_eq!(db.hit_sliding("ip:test:a", start + LEN, LEN).await.unwrap(), hits(2, 3));
    assert_eq!(db.hit_sliding("ip:test:a", start + 3 * LEN, LEN).await.unwrap(), hits(1, 0), "an older window does not");
    assert_eq!(db.hit_sliding("ip:test:b", start, LEN).await.unwrap(), hits(1, 0), "buckets are separate");

    let concurrent = (0..20).map(|_| db.hit_sliding("ip:test:c", start, LEN));
    let mut seen: Vec<i64> = futures_util::future::join_all(concurrent).await.into_iter().map(|h| h.unwrap().current).collect();
    seen.sort();
    assert_eq!(seen, (1..=20).collect::<Vec<_>>(), "each hit saw its own count");
}

on_both_databases!(rate_limit_windows_carry_over_and_count_every_hit);

mod purge {
    use citizen_id::crypto::{secret_key, sha256_hex, time_ordered_token};
    use citizen_id::store::Db;
    use citizen_id::store::purge::Retention;

    use crate::on_both_databases;
    use crate::support::TestApp;

    const DAY: i64 = 24 * 3600 * 1000;
    /// Far ahead of the real clock, so the app's own purge worker (real time) never takes the
    /// rows these tests expect to purge themselves.
    const NOW: i64 = 4_000_000_000_000;
    const RETENTION: Retention = Retention { refresh_tokens: 30 * DAY, authorization_codes: 70 * 60_000 };

    async fn refresh_token(db: &Db, key: &str, issued: i64, lifetime: i64) {
        sqlx::query("INSERT INTO refresh_tokens (token_hash, grant_id, scope, created_at, expires_at) VALUES ($1, 'g', 'openid', $2, $3)")
            .bind(key)
            .bind(issued)
            .bind(issued + lifetime)
            .execute(db.pool())
            .await
            .unwrap();
    }

    /// Runs a purge, waiting for the purge lock on PostgreSQL: the app's own purge worker (it
    /// purges once at start) may hold it for a moment, and a purge that finds it taken skips.
    async fn purge(db: &Db) -> u64 {
        for _ in 0..50 {
            if let Some(n) = db.purge_expired(NOW, RETENTION).await.unwrap() {
                return n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the purge lock was never free");
    }

    async fn column(db: &Db, sql: &'static str) -> Vec<String> {
        let mut k: Vec<String> = sqlx::query_scalar(sql).fetch_all(db.pool()).await.unwrap();
        k.sort();
        k
    }

    /// `store::purge`: the walk along the time-ordered keys deletes every expired token, of
    /// either key shape, and nothing that still lives.
    async fn purges_expired_refresh_tokens_of_both_key_shapes_and_nothing_live(app: TestApp) {
        let db = &app.state.db;
        let ordered = |issued: i64| secret_key(&time_ordered_token(issued, 32));
        let (old, live, just_expired) = (ordered(NOW - 31 * DAY), ordered(NOW - 29 * DAY), ordered(NOW - 30 * DAY - 1));
        for (key, issued) in [(&old, NOW - 31 * DAY), (&live, NOW - 29 * DAY), (&just_expired, NOW - 30 * DAY - 1)] {
            refresh_token(db, key, issued, 30 * DAY).await;
        }
        // Bare-hash keys from before the time prefix: above every prefix, below, and one live.
        let (legacy_high, legacy_low, legacy_live) =
            (format!("f{}", &sha256_hex("a")[1..]), format!("00{}", &sha256_hex("b")[2..]), format!("e{}", &sha256_hex("c")[1..]));
        refresh_token(db, &legacy_high, NOW - 31 * DAY, 30 * DAY).await;
        refresh_token(db, &legacy_low, NOW - 31 * DAY, 30 * DAY).await;
        refresh_token(db, &legacy_live, NOW - DAY, 30 * DAY).await;
        // Issued under a longer lifetime than today's: old enough to be walked, kept while it lives.
        let long_lived = ordered(NOW - 40 * DAY);
        refresh_token(db, &long_lived, NOW - 40 * DAY, 60 * DAY).await;

        purge(db).await;
        let mut expected = vec![live, legacy_live, long_lived];
        expected.sort();
        assert_eq!(column(db, "SELECT token_hash FROM refresh_tokens").await, expected);
    }

    async fn keeps_a_spent_code_while_its_id_token_lives(app: TestApp) {
        let db = &app.state.db;
        let mut keys = Vec::new();
        for (n, (issued, id_token_expires_at)) in
            [(NOW - 80 * 60_000, None), (NOW - 75 * 60_000, Some(NOW - 60_000)), (NOW - 65 * 60_000, Some(NOW + 60_000)), (NOW - 5 * 60_000, None)]
                .into_iter()
                .enumerate()
        {
            let key = secret_key(&time_ordered_token(issued, 32));
            sqlx::query(
                "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, nonce, expires_at, id_token_jti, id_token_expires_at) \
                 VALUES ($1, 'g', 'rp', 'https://rp.example/cb', 'n', $2, $3, $4)",
            )
            .bind(&key)
            .bind(issued + 10 * 60_000)
            .bind(format!("purge-test-jti-{n}"))
            .bind(id_token_expires_at)
            .execute(db.pool())
            .await
            .unwrap();
            keys.push(key);
        }
        purge(db).await;
        // Gone: the unused code past its 10 minutes, the spent one whose ID token has expired.
        let mut expected = vec![keys[2].clone(), keys[3].clone()];
        expected.sort();
        assert_eq!(column(db, "SELECT code_hash FROM authorization_codes").await, expected);
    }

    /// A backlog larger than a purge chunk goes in several chunks, across their boundaries, with
    /// the live rows between the expired ones kept: refresh tokens of both key shapes (the walk
    /// below the time floor and the one above every prefix), a table walked whole by a composite
    /// key (client assertions), and one by a single random key (remembered devices).
    async fn purges_a_backlog_of_several_chunks(app: TestApp) {
        use citizen_id::store::purge::CHUNK;
        let db = &app.state.db;
        let n = CHUNK * 5 / 2;
        let mut live = (Vec::new(), Vec::new(), Vec::new());
        let mut tx = db.pool().begin().await.unwrap();
        for i in 0..n {
            // Every seventh row of each table still lives; the others expired.
            let alive = i % 7 == 0;
            let issued = NOW - 31 * DAY + i;
            // Both key shapes: time-ordered, and a bare hash from before the prefix (above it).
            let key = secret_key(&time_ordered_token(issued, 32));
            let legacy = format!("f{}", &sha256_hex(&format!("legacy-{i}"))[1..]);
            let lifetime = if alive { 60 * DAY } else { 30 * DAY };
            for key in [&key, &legacy] {
                sqlx::query("INSERT INTO refresh_tokens (token_hash, grant_id, scope, created_at, expires_at) VALUES ($1, 'g', 'openid', $2, $3)")
                    .bind(key)
                    .bind(issued)
                    .bind(issued + lifetime)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            let expires = if alive { NOW + 60_000 } else { NOW - 60_000 };
            let (client, jti) = (format!("client-{}", i % 3), sha256_hex(&format!("jti-{i}")));
            sqlx::query("INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)")
                .bind(&client)
                .bind(&jti)
                .bind(expires)
                .execute(&mut *tx)
                .await
                .unwrap();
            let device = sha256_hex(&format!("device-{i}"));
            sqlx::query("INSERT INTO remembered_devices (token_hash, account_id, created_at, expires_at) VALUES ($1, 'a', $2, $3)")
                .bind(&device)
                .bind(NOW - DAY)
                .bind(expires)
                .execute(&mut *tx)
                .await
                .unwrap();
            if alive {
                live.0.push(key);
                live.0.push(legacy);
                live.1.push(format!("{client} {jti}"));
                live.2.push(device);
            }
        }
        tx.commit().await.unwrap();
        let expired = 4 * (n as u64 - live.2.len() as u64);

        assert!(purge(db).await >= expired);
        live.0.sort();
        live.1.sort();
        live.2.sort();
        assert_eq!(column(db, "SELECT token_hash FROM refresh_tokens").await, live.0);
        assert_eq!(column(db, "SELECT client_id || ' ' || jti FROM client_assertions").await, live.1);
        assert_eq!(column(db, "SELECT token_hash FROM remembered_devices").await, live.2);
    }

    /// Instances sharing PostgreSQL purge one at a time: while another holds the purge lock, a
    /// purge does nothing and says so; once it is released, the next purge does the work. On
    /// SQLite (one serving process) every purge runs.
    async fn one_instance_purges_at_a_time(app: TestApp) {
        use citizen_id::store::purge::PURGE_LOCK;
        let db = &app.state.db;
        let postgres = db.backend() == citizen_id::store::Backend::Postgres;
        let expired = secret_key(&time_ordered_token(NOW - 31 * DAY, 32));
        refresh_token(db, &expired, NOW - 31 * DAY, 30 * DAY).await;
        // Another instance's connection (the pool's connections are this instance's).
        let mut other = if postgres { Some(<sqlx::AnyConnection as sqlx::Connection>::connect(&app.state.settings.database_url).await.unwrap()) } else { None };
        if let Some(other) = other.as_mut() {
            // Not the blocking pg_advisory_lock: should a purge ever keep the lock, this test
            // fails instead of hanging (the app's own worker purges once at start).
            let mut locked = false;
            for _ in 0..50 {
                locked = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(PURGE_LOCK).fetch_one(&mut *other).await.unwrap();
                if locked {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(locked, "the purge lock is free between purges");
            assert_eq!(db.purge_expired(NOW, RETENTION).await.unwrap(), None, "another instance is purging");
            assert_eq!(column(db, "SELECT token_hash FROM refresh_tokens").await, vec![expired.clone()]);
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(PURGE_LOCK).execute(&mut *other).await.unwrap();
        }
        assert!(purge(db).await >= 1);
        assert!(column(db, "SELECT token_hash FROM refresh_tokens").await.is_empty());
        // And each purge lets the lock go: another instance can take it at once.
        purge(db).await;
        if let Some(other) = other.as_mut() {
            let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(PURGE_LOCK).fetch_one(&mut *other).await.unwrap();
            assert!(free, "the purge lock was released");
        }
    }

    on_both_databases!(
        purges_expired_refresh_tokens_of_both_key_shapes_and_nothing_live,
        keeps_a_spent_code_while_its_id_token_lives,
        purges_a_backlog_of_several_chunks,
        one_instance_purges_at_a_time,
    );
}

/// Refresh token rotation is one transaction: the assertion's jti, the old token spent, the new
/// one stored, or none of them.
mod refresh_rotation {
    use citizen_id::clock;
    use citizen_id::crypto::{random_token, sha256_hex};
    use citizen_id::store::grants::{AssertionUse, GrantRecord, NewAuthorizationCode, NewRefreshToken, RefreshRotation};

    use crate::on_both_databases;
    use crate::support::TestApp;

    fn outcome(r: &Result<RefreshRotation, citizen_id::store::StoreError>) -> &'static str {
        match r {
            Ok(RefreshRotation::Rotated { .. }) => "rotated",
            Ok(RefreshRotation::Reused) => "reused",
            Ok(RefreshRotation::Invalid) => "invalid",
            Ok(RefreshRotation::AssertionReplayed) => "assertion replayed",
            Err(_) => "error",
        }
    }

    /// When the new token cannot be stored, the old one is not spent and the assertion's jti not
    /// used: the partner's retry rotates it, rather than counting as a reuse that revokes the
    /// family (which it did when rotation took separate steps).
    async fn a_failed_rotation_changes_nothing(app: TestApp) {
        let db = &app.state.db;
        let partner = app.partner("openid", &["P0.Cp.Cd"]).await;
        let citizen = app.citizen().await;
        let now = clock::now_ms();
        let grant = GrantRecord {
            id: "g-rot".into(),
            account_id: citizen.id.clone(),
            client_id: partner.client_id.clone(),
            scope: "openid".into(),
            vot: "P0.Cp.Cd".into(),
            auth_time: now / 1000,
        };
        let code = NewAuthorizationCode {
            code_hash: sha256_hex(&random_token(32)),
            client_id: partner.client_id.clone(),
            redirect_uri: partner.redirect_uri.clone(),
            nonce: "n".into(),
            code_challenge: None,
            expires_at: now + 600_000,
            id_token_jti: random_token(16),
        };
        db.insert_grant_with_code(&grant, &code, now).await.unwrap();
        db.insert_refresh_token("rt-old", "g-rot", "openid", now, now + 60_000).await.unwrap();
        db.insert_refresh_token("rt-taken", "g-other", "openid", now, now + 60_000).await.unwrap();
        let assertion = |jti: &str| AssertionUse { client_id: partner.client_id.clone(), jti: jti.into(), expires_at: now + 60_000 };
        let next = |hash: &'static str| NewRefreshToken { token_hash: hash, expires_at: now + 120_000 };

        // The new token's key is taken: the rotation fails as a whole.
        let failed = db.rotate_refresh_token("rt-old", now, &assertion("j-1"), next("rt-taken")).await;
        assert_eq!(outcome(&failed), "error");
        let spent: Option<i64> = sqlx::query_scalar("SELECT used_at FROM refresh_tokens WHERE token_hash = 'rt-old'").fetch_one(db.pool()).await.unwrap();
        assert_eq!(spent, None, "the old token is not spent");
        // The retry, with the same assertion: rotated, and the grant lives.
        let retried = db.rotate_refresh_token("rt-old", now, &assertion("j-1"), next("rt-new")).await;
        assert_eq!(outcome(&retried), "rotated");
        assert!(db.active_grant_with_subject("g-rot").await.unwrap().is_some());
        // A jti used before changes nothing: the new token stays unspent.
        let replayed = db.rotate_refresh_token("rt-new", now, &assertion("j-1"), next("rt-newer")).await;
        assert_eq!(outcome(&replayed), "assertion replayed");
        assert_eq!(outcome(&db.rotate_refresh_token("rt-new", now, &assertion("j-2"), next("rt-newer")).await), "rotated");
        // The old token again: a reuse, and the family is revoked.
        assert_eq!(outcome(&db.rotate_refresh_token("rt-old", now, &assertion("j-3"), next("rt-x")).await), "reused");
        assert!(db.active_grant_with_subject("g-rot").await.unwrap().is_none());
    }

    on_both_databases!(a_failed_rotation_changes_nothing);
}

/// A security notice (password changed, passkey removed...) is queued in the transaction that
/// makes the change: when the notice cannot be queued the change does not happen either, so a
/// change is never made without its owner being told.
mod notices {
    use citizen_id::store::outbox::NewOutboxMessage;
    use citizen_id::store::passkeys::PasskeyRecord;

    use crate::on_both_databases;
    use crate::support::TestApp;

    /// A notice whose outbox id is taken already: queueing it fails.
    async fn unqueueable_notice(app: &TestApp) -> NewOutboxMessage {
        let msg = NewOutboxMessage { id: "taken".into(), channel: "email".into(), template: "password-changed".into(), sealed_message: "x".into() };
        app.state.db.enqueue(&msg, 0).await.unwrap();
        msg
    }

    async fn outbox_rows(app: &TestApp) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(app.state.db.pool()).await.unwrap()
    }

    async fn no_change_without_its_notice(app: TestApp) {
        let db = &app.state.db;
        let citizen = app.citizen().await;
        let before = db.account(&citizen.id).await.unwrap().unwrap();
        let passkey = PasskeyRecord {
            id: "cred-1".into(),
            account_id: citizen.id.clone(),
            name: "Laptop".into(),
            credential: "{}".into(),
            created_at: 1,
            last_used_at: None,
            sign_count: 0,
            backup_eligible: false,
            backup_state: false,
        };
        db.insert_passkey(&passkey, None).await.unwrap();
        let taken = unqueueable_notice(&app).await;
        let queued = outbox_rows(&app).await;

        assert!(db.set_password(&citizen.id, "new-hash", 2, Some(&taken)).await.is_err());
        assert!(db.set_email(&citizen.id, "new@example.com", 2, Some(&taken)).await.is_err());
        assert!(db.set_mobile(&citizen.id, "+447700900999", false, 2, Some(&taken)).await.is_err());
        assert!(db.delete_passkey(&citizen.id, "cred-1", 2, |_| taken.clone()).await.is_err());
        assert!(db.remove_password(&citizen.id, 2, &taken).await.is_err());
        let second = PasskeyRecord { id: "cred-2".into(), ..passkey.clone() };
        assert!(db.insert_passkey(&second, Some(&taken)).await.is_err());

        let after = db.account(&citizen.id).await.unwrap().unwrap();
        assert_eq!((after.password_hash, after.email, after.mobile), (before.password_hash, before.email, before.mobile));
        let passkeys: Vec<String> = db.passkeys_for_account(&citizen.id).await.unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(passkeys, ["cred-1"]);
        assert_eq!(outbox_rows(&app).await, queued, "nothing half-written");

        // And with a notice that can be queued, change and notice go together.
        let fresh = NewOutboxMessage { id: "fresh".into(), ..taken.clone() };
        db.delete_passkey(&citizen.id, "cred-1", 3, |name| {
            assert_eq!(name, "Laptop");
            fresh.clone()
        })
        .await
        .unwrap();
        assert!(db.passkeys_for_account(&citizen.id).await.unwrap().is_empty());
        assert_eq!(outbox_rows(&app).await, queued + 1);
    }

    on_both_databases!(no_change_without_its_notice);
}
