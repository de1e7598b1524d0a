//! The SQL of the token endpoint's batched writes (`store::group_commit`): code redemptions and
//! refresh rotations, each as set-based statements over a scratch table on SQLite and as one
//! statement of data-modifying CTEs on PostgreSQL, with the same rules and the same answer rows.

use super::accounts::{SUBJECT_COLUMNS, TOKEN_SUBJECT_COLUMNS};
use super::group_commit::{Redemption, Rotation};
use super::grants::LIVE_GRANT_COLUMNS;

/// The code's columns, then its live grant's and citizen's token fields (NULL when the grant is
/// gone).
fn redeemed_columns() -> String {
    format!("c.grant_id, c.client_id, c.redirect_uri, c.nonce, c.code_challenge, c.id_token_jti, {LIVE_GRANT_COLUMNS}, {TOKEN_SUBJECT_COLUMNS}")
}

/// Binds one redemption's parameters as both backends' redemption SQL numbers them: $1 code
/// hash, $2 now, $3 ID token expiry, $4-$6 the client assertion's client_id, jti and row expiry,
/// $7 the refresh token hash and $8 its expiry (NULL when the partner takes no refresh tokens).
/// A SQLite batch binds one such run of eight per redemption.
pub(super) fn bind_redemption<'q>(query: AnyQuery<'q>, r: &'q Redemption) -> AnyQuery<'q> {
    query
        .bind(r.code_hash.as_str())
        .bind(r.now)
        .bind(r.id_token_expires_at)
        .bind(r.assertion.client_id.as_str())
        .bind(r.assertion.jti.as_str())
        .bind(r.assertion.expires_at)
        .bind(r.refresh.as_ref().map(|(hash, _)| hash.as_str()))
        .bind(r.refresh.as_ref().map(|(_, expires_at)| *expires_at))
}

pub(super) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

const LIVE_GRANT: &str = "LEFT JOIN grants g ON g.id = c.grant_id AND g.revoked_at IS NULL LEFT JOIN accounts a ON a.id = g.account_id";

/// The scratch table a SQLite redemption batch works in: one row per redemption, with what
/// became of it. A TEMP table belongs to its connection and is emptied before every COMMIT, so
/// it holds nothing between batches (and a ROLLBACK empties it too).
pub(super) const SQLITE_REDEEM_SCRATCH: &str = "CREATE TEMP TABLE IF NOT EXISTS redeem_batch (\
    item INTEGER PRIMARY KEY, code_hash TEXT NOT NULL, at_ms BIGINT NOT NULL, id_token_expires_at BIGINT NOT NULL, \
    client_id TEXT NOT NULL, jti TEXT NOT NULL, assertion_expires_at BIGINT NOT NULL, \
    refresh_hash TEXT, refresh_expires_at BIGINT, fresh INTEGER NOT NULL DEFAULT 0, redeemed INTEGER NOT NULL DEFAULT 0)";

/// SQLite: `n` redemptions in one transaction (`store::group_commit`), in set-based statements
/// whose number does not grow with `n`: every statement and every row is a hand-off between
/// SQLite's worker thread and the async side. Item `k` binds `$8k+1` to `$8k+8` (each item's run
/// of eight as `bind_redemption` binds it); one row per item comes back, in item order.
///
/// What one redemption alone would do, item by item in order: its assertion's jti is fresh if
/// it is not stored yet and no earlier item has it; only then may it consume its code, which it
/// does if the code is unconsumed, unexpired and no earlier fresh item consumed it; only then
/// is its refresh token stored, and only with a live grant.
pub(super) fn sqlite_redeem_batch_sql(n: usize) -> &'static str {
    use std::sync::LazyLock;
    static SQL: LazyLock<Vec<String>> = LazyLock::new(|| (1..=super::group_commit::MAX_BATCH).map(sqlite_redeem_batch_sql_text).collect());
    &SQL[n - 1]
}

/// SQLite: the statements that mark the items of scratch table `table` whose client assertion
/// is fresh (its jti not stored yet, and the first item in the batch to carry it) and store those
/// jtis. Nothing else an item asks for happens unless it is fresh.
fn sqlite_record_assertions(table: &str) -> String {
    format!(
        "UPDATE temp.{table} AS b SET fresh = 1 \
         WHERE NOT EXISTS (SELECT 1 FROM client_assertions ca WHERE ca.client_id = b.client_id AND ca.jti = b.jti) \
         AND b.item = (SELECT MIN(d.item) FROM temp.{table} d WHERE d.client_id = b.client_id AND d.jti = b.jti); \
         INSERT INTO client_assertions (client_id, jti, expires_at) \
         SELECT client_id, jti, assertion_expires_at FROM temp.{table} WHERE fresh = 1;"
    )
}

/// PostgreSQL: the CTEs over the batch's items `b` that store each jti once (`j`: the first item
/// carrying it is the one inserted, and only if it is new) and list the fresh items (`fresh`).
const POSTGRES_RECORD_ASSERTIONS: &str = "j AS (INSERT INTO client_assertions (client_id, jti, expires_at) \
    SELECT DISTINCT ON (client_id, jti) client_id, jti, assertion_expires_at FROM b ORDER BY client_id, jti, item \
    ON CONFLICT (client_id, jti) DO NOTHING RETURNING client_id, jti), \
    fresh AS (SELECT DISTINCT ON (b.client_id, b.jti) b.* FROM b JOIN j ON j.client_id = b.client_id AND j.jti = b.jti \
    ORDER BY b.client_id, b.jti, b.item),";

/// A batch's items as VALUES rows: item `k`, then its run of `params` parameters
/// (`$params·k+1` to `$params·k+params`, as the kind's `bind` binds them). With `types` (the
/// item number's, then each parameter's), the first row's values carry them (PostgreSQL types a
/// VALUES list by its first row).
fn batch_values(n: usize, params: usize, types: Option<&[&str]>) -> String {
    let rows: Vec<String> = (0..n)
        .map(|k| {
            let values = (0..=params).map(|i| {
                let value = if i == 0 { k.to_string() } else { format!("${}", params * k + i) };
                match types {
                    Some(t) if k == 0 => format!("{value}::{}", t[i]),
                    _ => value,
                }
            });
            format!("({})", values.collect::<Vec<_>>().join(", "))
        })
        .collect();
    rows.join(", ")
}

fn sqlite_redeem_batch_sql_text(n: usize) -> String {
    format!(
        "BEGIN IMMEDIATE; \
         INSERT INTO temp.redeem_batch (item, code_hash, at_ms, id_token_expires_at, client_id, jti, assertion_expires_at, \
         refresh_hash, refresh_expires_at) VALUES {}; \
         {} \
         UPDATE temp.redeem_batch AS b SET redeemed = 1 WHERE b.fresh = 1 \
         AND EXISTS (SELECT 1 FROM authorization_codes c WHERE c.code_hash = b.code_hash AND c.consumed_at IS NULL AND c.expires_at > b.at_ms) \
         AND b.item = (SELECT MIN(d.item) FROM temp.redeem_batch d WHERE d.code_hash = b.code_hash AND d.fresh = 1); \
         UPDATE authorization_codes AS c SET consumed_at = b.at_ms, id_token_expires_at = b.id_token_expires_at \
         FROM temp.redeem_batch b WHERE b.redeemed = 1 AND c.code_hash = b.code_hash; \
         INSERT INTO refresh_tokens (token_hash, grant_id, scope, created_at, expires_at) \
         SELECT b.refresh_hash, g.id, g.scope, b.at_ms, b.refresh_expires_at FROM temp.redeem_batch b \
         JOIN authorization_codes c ON c.code_hash = b.code_hash JOIN grants g ON g.id = c.grant_id \
         WHERE b.redeemed = 1 AND b.refresh_hash IS NOT NULL AND g.revoked_at IS NULL; \
         SELECT b.item, b.fresh AS assertion_fresh, b.redeemed, {} FROM temp.redeem_batch b \
         LEFT JOIN authorization_codes c ON c.code_hash = b.code_hash AND b.redeemed = 1 {LIVE_GRANT} ORDER BY b.item; \
         DELETE FROM temp.redeem_batch; \
         COMMIT;",
        batch_values(n, 8, None),
        sqlite_record_assertions("redeem_batch"),
        redeemed_columns()
    )
}

/// PostgreSQL: `n` redemptions in one statement (`store::group_commit`), numbered as the SQLite
/// batch numbers them and answering with the same rows, one per item in item order. Data-modifying
/// CTEs over the items, with the rules of one redemption alone, item by item in order: an item's
/// jti is fresh if its insert is new (`ON CONFLICT DO NOTHING`; the first item of each jti is the
/// one inserted) and only then may it consume its code, which the first fresh item for the code
/// does if the code is unconsumed and unexpired (the row lock and the re-check of
/// `consumed_at IS NULL` settle a race with another instance); only then is its refresh token
/// stored, and only with a live grant. Rows are inserted and updated in key order, so two
/// instances' batches that touch the same rows take their locks in the same order.
pub(super) fn postgres_redeem_batch_sql(n: usize) -> &'static str {
    use std::sync::LazyLock;
    static SQL: LazyLock<Vec<String>> = LazyLock::new(|| (1..=super::group_commit::MAX_BATCH).map(postgres_redeem_batch_sql_text).collect());
    &SQL[n - 1]
}

fn postgres_redeem_batch_sql_text(n: usize) -> String {
    format!(
        "WITH b (item, code_hash, at_ms, id_token_expires_at, client_id, jti, assertion_expires_at, refresh_hash, refresh_expires_at) \
         AS (VALUES {}), \
         {POSTGRES_RECORD_ASSERTIONS} \
         claim AS (SELECT DISTINCT ON (code_hash) * FROM fresh ORDER BY code_hash, item), \
         c AS (UPDATE authorization_codes ac SET consumed_at = claim.at_ms, id_token_expires_at = claim.id_token_expires_at \
               FROM claim WHERE ac.code_hash = claim.code_hash AND ac.consumed_at IS NULL AND ac.expires_at > claim.at_ms \
               RETURNING claim.item, ac.grant_id, ac.client_id, ac.redirect_uri, ac.nonce, ac.code_challenge, ac.id_token_jti), \
         r AS (INSERT INTO refresh_tokens (token_hash, grant_id, scope, created_at, expires_at) \
               SELECT b.refresh_hash, g.id, g.scope, b.at_ms, b.refresh_expires_at FROM c JOIN b ON b.item = c.item \
               JOIN grants g ON g.id = c.grant_id WHERE g.revoked_at IS NULL AND b.refresh_hash IS NOT NULL \
               ORDER BY b.refresh_hash RETURNING 1) \
         SELECT b.item, CASE WHEN fresh.item IS NULL THEN 0 ELSE 1 END::bigint AS assertion_fresh, \
         CASE WHEN c.item IS NULL THEN 0 ELSE 1 END::bigint AS redeemed, {} \
         FROM b LEFT JOIN fresh ON fresh.item = b.item LEFT JOIN c ON c.item = b.item {LIVE_GRANT} ORDER BY b.item",
        batch_values(n, 8, Some(&["bigint", "text", "bigint", "bigint", "text", "text", "bigint", "text", "bigint"])),
        redeemed_columns()
    )
}

/// The scratch table a SQLite rotation batch works in, as `SQLITE_REDEEM_SCRATCH` for codes:
/// one row per rotation, with what became of it; emptied before every COMMIT, and by a ROLLBACK.
pub(super) const SQLITE_ROTATE_SCRATCH: &str = "CREATE TEMP TABLE IF NOT EXISTS rotate_batch (\
    item INTEGER PRIMARY KEY, token_hash TEXT NOT NULL, at_ms BIGINT NOT NULL, client_id TEXT NOT NULL, jti TEXT NOT NULL, \
    assertion_expires_at BIGINT NOT NULL, next_hash TEXT NOT NULL, next_expires_at BIGINT NOT NULL, \
    fresh INTEGER NOT NULL DEFAULT 0, spent INTEGER NOT NULL DEFAULT 0)";

/// A refresh rotation's row: whether the assertion's jti was fresh, whether this rotation
/// spent the token, the spent token's scope, and its live grant and citizen (NULL when none).
fn rotation_columns() -> String {
    format!("spent_scope, {LIVE_GRANT_COLUMNS}, {SUBJECT_COLUMNS}")
}

/// Binds one rotation's parameters as both backends' rotation SQL numbers them: $1 the
/// presented token's hash, $2 now, $3-$5 the client assertion's client_id, jti and row expiry,
/// $6 the next token's hash and $7 its expiry. A batch binds one such run of seven per rotation.
pub(super) fn bind_rotation<'q>(query: AnyQuery<'q>, r: &'q Rotation) -> AnyQuery<'q> {
    query
        .bind(r.token_hash.as_str())
        .bind(r.now)
        .bind(r.assertion.client_id.as_str())
        .bind(r.assertion.jti.as_str())
        .bind(r.assertion.expires_at)
        .bind(r.next_hash.as_str())
        .bind(r.next_expires_at)
}

/// SQLite: `n` refresh rotations in one transaction (`store::group_commit`), in set-based
/// statements, as the code redemption batch. What one rotation alone would do, item by item in
/// order: its assertion's jti is fresh if it is not stored yet and no earlier item has it; only
/// then may it spend its token, which the first fresh item for the token does if the token is
/// unspent and unexpired; only then is the next token stored, and only for a live grant. A later
/// item with the same token finds it spent (the caller then revokes the family, as for a reuse).
pub(super) fn sqlite_rotate_batch_sql(n: usize) -> &'static str {
    use std::sync::LazyLock;
    static SQL: LazyLock<Vec<String>> = LazyLock::new(|| (1..=super::group_commit::MAX_BATCH).map(sqlite_rotate_batch_sql_text).collect());
    &SQL[n - 1]
}

fn sqlite_rotate_batch_sql_text(n: usize) -> String {
    format!(
        "BEGIN IMMEDIATE; \
         INSERT INTO temp.rotate_batch (item, token_hash, at_ms, client_id, jti, assertion_expires_at, next_hash, next_expires_at) \
         VALUES {}; \
         {} \
         UPDATE temp.rotate_batch AS b SET spent = 1 WHERE b.fresh = 1 \
         AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.token_hash = b.token_hash AND r.used_at IS NULL AND r.expires_at > b.at_ms) \
         AND b.item = (SELECT MIN(d.item) FROM temp.rotate_batch d WHERE d.token_hash = b.token_hash AND d.fresh = 1); \
         UPDATE refresh_tokens AS r SET used_at = b.at_ms FROM temp.rotate_batch b WHERE b.spent = 1 AND r.token_hash = b.token_hash; \
         INSERT INTO refresh_tokens (token_hash, grant_id, scope, created_at, expires_at) \
         SELECT b.next_hash, g.id, g.scope, b.at_ms, b.next_expires_at FROM temp.rotate_batch b \
         JOIN refresh_tokens r ON r.token_hash = b.token_hash JOIN grants g ON g.id = r.grant_id \
         WHERE b.spent = 1 AND g.revoked_at IS NULL; \
         SELECT b.item, b.fresh AS assertion_fresh, b.spent, {} FROM temp.rotate_batch b \
         LEFT JOIN (SELECT token_hash, grant_id, scope AS spent_scope FROM refresh_tokens) u ON u.token_hash = b.token_hash AND b.spent = 1 \
         LEFT JOIN grants g ON g.id = u.grant_id AND g.revoked_at IS NULL LEFT JOIN accounts a ON a.id = g.account_id ORDER BY b.item; \
         DELETE FROM temp.rotate_batch; \
         COMMIT;",
        batch_values(n, 7, None),
        sqlite_record_assertions("rotate_batch"),
        rotation_columns()
    )
}

/// PostgreSQL: `n` refresh rotations in one statement, numbered and answered as the SQLite batch,
/// with the same rules: `j` records each jti once (the first item of each is the one inserted);
/// the first fresh item for a token spends it in `u` if unspent and unexpired (the row lock and
/// the re-check of `used_at IS NULL` settle a race with another instance); `n` stores the next
/// token for a live grant. Rows are written in key order, as the redemption batch's.
pub(super) fn postgres_rotate_batch_sql(n: usize) -> &'static str {
    use std::sync::LazyLock;
    static SQL: LazyLock<Vec<String>> = LazyLock::new(|| (1..=super::group_commit::MAX_BATCH).map(postgres_rotate_batch_sql_text).collect());
    &SQL[n - 1]
}

fn postgres_rotate_batch_sql_text(n: usize) -> String {
    format!(
        "WITH b (item, token_hash, at_ms, client_id, jti, assertion_expires_at, next_hash, next_expires_at) AS (VALUES {}), \
         {POSTGRES_RECORD_ASSERTIONS} \
         claim AS (SELECT DISTINCT ON (token_hash) * FROM fresh ORDER BY token_hash, item), \
         u AS (UPDATE refresh_tokens r SET used_at = claim.at_ms FROM claim \
               WHERE r.token_hash = claim.token_hash AND r.used_at IS NULL AND r.expires_at > claim.at_ms \
               RETURNING claim.item, r.grant_id, r.scope AS spent_scope), \
         n AS (INSERT INTO refresh_tokens (token_hash, grant_id, scope, created_at, expires_at) \
               SELECT b.next_hash, g.id, g.scope, b.at_ms, b.next_expires_at FROM u JOIN b ON b.item = u.item \
               JOIN grants g ON g.id = u.grant_id WHERE g.revoked_at IS NULL ORDER BY b.next_hash RETURNING 1) \
         SELECT b.item, CASE WHEN fresh.item IS NULL THEN 0 ELSE 1 END::bigint AS assertion_fresh, \
         CASE WHEN u.item IS NULL THEN 0 ELSE 1 END::bigint AS spent, {} \
         FROM b LEFT JOIN fresh ON fresh.item = b.item LEFT JOIN u ON u.item = b.item \
         LEFT JOIN grants g ON g.id = u.grant_id AND g.revoked_at IS NULL LEFT JOIN accounts a ON a.id = g.account_id ORDER BY b.item",
        batch_values(n, 7, Some(&["bigint", "text", "bigint", "text", "text", "bigint", "text", "bigint"])),
        rotation_columns()
    )
}
