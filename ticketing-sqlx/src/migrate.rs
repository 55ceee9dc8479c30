//! [`migrate`]: the schema migrations, safe to run from several servers starting at once.

use sqlx::{MySqlPool, Row};
use ticketing_core::{Error, Result};

use crate::ADAPTER;

/// How long a server waits for another one that is migrating the same database.
const LOCK_WAIT_SECONDS: i64 = 300;

/// Runs [`migrations`](crate::migrations) on `pool`'s database under a named lock, so that
/// servers started together migrate one after the other: the first applies, the rest find
/// everything applied.
///
/// sqlx's migrator locks with `GET_LOCK(name, -1)`, which MySQL reads as "wait forever" but
/// MariaDB answers `NULL` at once: on MariaDB two servers starting together both applied the
/// first migration and one failed on a duplicate version. This takes a lock of its own with a
/// positive timeout on the connection the migrator then runs on. A database that cannot be
/// reached, or another migrator holding the lock for five minutes, is
/// [`Error::Unavailable`]; a failed migration is [`Error::Backend`].
pub async fn migrate(pool: &MySqlPool) -> Result<()> {
    let unavailable = |e: sqlx::Error| Error::unavailable(ADAPTER, e);
    let mut conn = pool.acquire().await.map_err(unavailable)?;
    let name: String = sqlx::query("SELECT CONCAT('ticketing-migrations:', DATABASE())")
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?
        .try_get(0)
        .map_err(unavailable)?;
    let locked: Option<i64> = sqlx::query("SELECT GET_LOCK(?, ?)")
        .bind(&name)
        .bind(LOCK_WAIT_SECONDS)
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?
        .try_get(0)
        .map_err(unavailable)?;
    if locked != Some(1) {
        return Err(Error::unavailable(
            ADAPTER,
            format!("another server held the migration lock {name} for {LOCK_WAIT_SECONDS} s"),
        ));
    }
    // `run_direct` is `run` on one connection (sqlx's way around `Acquire` not being general
    // enough for a `Send` future); this connection is the one holding the lock.
    let migrated = crate::migrations()
        .run_direct(None, &mut *conn, false)
        .await;
    // The lock is the session's: released here, or with the connection if this fails.
    let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(&name)
        .execute(&mut *conn)
        .await;
    migrated.map_err(|e| Error::backend(ADAPTER, e))
}
