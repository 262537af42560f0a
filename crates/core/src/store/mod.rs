//! The filter's records in a shared store: sessions, the Management API token lease and the
//! tenants' JWKS, each over one compare-and-swap key-value primitive (`kv::CasKv`).
//!
//! Flows never call a store: they return `StoreOp`s and receive `StoreOutcome`s. Two executors
//! run them: `execute` over a CAS key-value store (proxy-wasm shared data, answering at once),
//! and `redis::RedisOp` over Redis through Webdis callouts (answering asynchronously). Login
//! states are not stored: they travel sealed in a cookie (`tokens::login_state`).

pub mod jwks;
pub mod kv;
pub mod management_token;
pub mod redis;
pub mod sessions;

pub use jwks::JwksCache;
pub use kv::{CasKv, KvError, StoreError};
pub use management_token::ManagementTokenLease;
pub use sessions::{SessionRecord, Sessions, SweepStats, SLOTS};

use crate::digest::SessionKey;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    Get(SessionKey),
    Put(SessionKey, SessionRecord),
    /// Ends a session: removes it and leaves its ended marker until the given unix secs.
    Delete(SessionKey, u64),
    /// The distinct user ids with a live session.
    ActiveUsers,
    /// The cached Management API token, or the right to fetch it for `lease_ms`.
    AcquireManagementToken {
        lease_ms: u64,
    },
    /// Caches a fetched token until `use_until` (unix secs) and ends the lease.
    SaveManagementToken {
        token: String,
        use_until: u64,
    },
    /// Ends the lease without a token (the fetch failed).
    ReleaseManagementToken,
    /// Forgets `token` (Auth0 refused it) unless another worker already replaced it.
    DropManagementToken {
        token: String,
    },
    /// Asks the root context to refetch an issuer's JWKS (a token named an unknown `kid`).
    WantJwks {
        issuer: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// A live session, or none (never stored, expired, or its marker expired).
    Record(Option<SessionRecord>),
    /// A `Get` found the marker of a session that was ended: its token is refused.
    Ended,
    Done,
    /// A `Delete`'s answer: whether the session was still there. `false` means another request
    /// (a logout or refresh, perhaps on another replica) ended it first.
    Deleted(bool),
    Users(Vec<String>),
    ManagementToken(TokenGrant),
    /// The store refused the operation for a reason the caller can be told.
    Refused(String),
    Unavailable(String),
}

/// What a request gets when it asks for the Management API token.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenGrant {
    /// A cached token, still fresh.
    Ready(String),
    /// No fresh token, and this request now holds the lease: it fetches one.
    FetchIt,
    /// Another request holds the lease and is fetching: wait and ask again.
    Wait,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenGrant::Ready(_) => "Ready(***)",
            TokenGrant::FetchIt => "FetchIt",
            TokenGrant::Wait => "Wait",
        })
    }
}

/// Creates the keys every later compare-and-swap needs (once per VM start): the session slots,
/// the Management API token and lease, and each issuer's JWKS fetch lease.
pub fn prepare<'a, K: CasKv + ?Sized>(
    kv: &K,
    scope: &str,
    issuers: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    Sessions::new(kv, scope).ensure_slots()?;
    ManagementTokenLease::new(kv, scope).ensure_keys()?;
    let jwks = JwksCache::new(kv, scope);
    issuers
        .into_iter()
        .try_for_each(|issuer| jwks.ensure_keys(issuer))
}

/// Runs a store operation on a CAS key-value store, by the record it is about.
pub fn execute<K: CasKv + ?Sized>(
    kv: &K,
    scope: &str,
    op: &StoreOp,
    now: Timestamp,
) -> StoreOutcome {
    let sessions = Sessions::new(kv, scope);
    let lease = ManagementTokenLease::new(kv, scope);
    let done = |r: Result<(), StoreError>| r.map(|_| StoreOutcome::Done);
    let result = match op {
        StoreOp::Get(key) => sessions.get(key, now).map(|found| match found {
            Some(record) if record.ended => StoreOutcome::Ended,
            found => StoreOutcome::Record(found),
        }),
        StoreOp::Put(key, record) => done(sessions.put(key, record)),
        StoreOp::Delete(key, until) => sessions.delete(key, *until).map(StoreOutcome::Deleted),
        StoreOp::ActiveUsers => sessions.active_users(now).map(StoreOutcome::Users),
        StoreOp::AcquireManagementToken { lease_ms } => lease
            .acquire(now, *lease_ms)
            .map(StoreOutcome::ManagementToken),
        StoreOp::SaveManagementToken { token, use_until } => done(lease.save(token, *use_until)),
        StoreOp::ReleaseManagementToken => done(lease.release()),
        StoreOp::DropManagementToken { token } => done(lease.drop_token(token)),
        StoreOp::WantJwks { issuer } => done(JwksCache::new(kv, scope).want(issuer, now)),
    };
    result.unwrap_or_else(|e| StoreOutcome::Unavailable(e.0))
}

#[cfg(test)]
mod tests;
