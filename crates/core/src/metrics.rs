//! The filter's Envoy stats: what is counted and under which names. The core decides every
//! name and value; the host only defines each name once per VM and applies the values.
//!
//! Names (all under the configured `statPrefix`, `auth0_filter` by default; Envoy shows them
//! in `/stats/prometheus` as `<prefix>_...`, see docs/operations.md):
//! - `<prefix>.route.<route>.<outcome>`: answered requests per route and outcome;
//! - `<prefix>.login.<password|code|refresh>`: successful logins by grant;
//! - `<prefix>.logout`: successful logouts;
//! - `<prefix>.management_call.<route>`: Management API calls made for a management route;
//! - `<prefix>.management_token_fetch`, `<prefix>.jwks_fetch`: callouts for those;
//! - `<prefix>.callout_failure.<kind>`: Auth0 callouts that failed, by kind;
//! - `<prefix>.callout_latency_ms`: histogram of Auth0 callout latency;
//! - `<prefix>.callout_abandoned`: callouts whose request ended first (the client hung up);
//! - `<prefix>.sessions_live`: gauge of live sessions, as of the last full sweep.

use crate::http::{Callout, CalloutResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One stat change: a counter increment, a gauge value or a histogram sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricEvent {
    pub kind: MetricKind,
    pub name: String,
    pub value: u64,
}

impl MetricEvent {
    fn count(prefix: &str, name: &str) -> Self {
        Self::counter(stat_name(prefix, &[name]))
    }

    fn counter(name: String) -> Self {
        MetricEvent {
            kind: MetricKind::Counter,
            name,
            value: 1,
        }
    }
}

/// `prefix.part.part...` in one allocation, without the formatting machinery: a route's
/// outcome is named on every request the filter answers or guards.
fn stat_name(prefix: &str, parts: &[&str]) -> String {
    let size = parts.iter().map(|part| part.len() + 1).sum::<usize>();
    let mut name = String::with_capacity(prefix.len() + size);
    name.push_str(prefix);
    for part in parts {
        name.push('.');
        name.push_str(part);
    }
    name
}

/// How an answered request ended, from the status the filter gave it.
pub fn outcome_of(status: u16) -> &'static str {
    match status {
        0..=399 => "success",
        504 => "timeout",
        429 | 502 => "auth0_error",
        // The filter's own 503s: the session store is unavailable, or the signing keys are
        // not fetched yet.
        503 => "unavailable",
        400..=499 => "client_error",
        _ => "internal_error",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGrant {
    Password,
    Code,
    Refresh,
}

impl LoginGrant {
    fn name(self) -> &'static str {
        match self {
            LoginGrant::Password => "password",
            LoginGrant::Code => "code",
            LoginGrant::Refresh => "refresh",
        }
    }
}

/// What a request's end adds to `events`: its route outcome, and a login or logout when it
/// succeeded.
pub fn request_end(
    events: &mut Vec<MetricEvent>,
    prefix: &str,
    route: &str,
    status: u16,
    grant: Option<LoginGrant>,
) {
    let outcome = outcome_of(status);
    events.push(MetricEvent::counter(stat_name(
        prefix,
        &["route", route, outcome],
    )));
    if outcome == "success" {
        if let Some(grant) = grant {
            events.push(MetricEvent::counter(stat_name(
                prefix,
                &["login", grant.name()],
            )));
        }
        if route == "logout" {
            events.push(MetricEvent::count(prefix, "logout"));
        }
    }
}

/// What a callout adds when it is made: Management API calls and token fetches by purpose.
pub fn callout_made(
    prefix: &str,
    route: &str,
    callout: &Callout,
    management: bool,
) -> Vec<MetricEvent> {
    if !management {
        return Vec::new();
    }
    if callout.path.contains("/api/v2/") {
        vec![MetricEvent::count(
            prefix,
            &format!("management_call.{route}"),
        )]
    } else if callout.path.ends_with("/oauth/token") {
        vec![MetricEvent::count(prefix, "management_token_fetch")]
    } else {
        Vec::new()
    }
}

/// What an Auth0 callout's answer adds: its latency, and its failure kind if it failed.
/// `timeout_ms` tells a timeout from a refused connection (see `auth0::callout_failure`).
pub fn callout_answered(
    prefix: &str,
    result: &CalloutResult,
    elapsed_ms: u64,
    timeout_ms: u64,
) -> Vec<MetricEvent> {
    let mut events = vec![MetricEvent {
        kind: MetricKind::Histogram,
        name: format!("{prefix}.callout_latency_ms"),
        value: elapsed_ms,
    }];
    let failure = match result {
        CalloutResult::Failed { elapsed_ms } => {
            if elapsed_ms.saturating_mul(10) >= timeout_ms.saturating_mul(9) {
                Some("timeout")
            } else {
                Some("connect")
            }
        }
        CalloutResult::Answered { status: 429, .. } => Some("rate_limited"),
        CalloutResult::Answered { status: 504, .. }
            if result.header("x-envoy-upstream-service-time").is_none() =>
        {
            Some("timeout")
        }
        CalloutResult::Answered { status, .. } if *status >= 500 => Some("status_5xx"),
        CalloutResult::Answered { .. } => None,
    };
    if let Some(kind) = failure {
        events.push(MetricEvent::count(
            prefix,
            &format!("callout_failure.{kind}"),
        ));
    }
    events
}

/// An answered callout that the flow still turned into a 502: its body was unusable (not
/// JSON, fields missing) or Auth0 refused the gateway's own credentials.
pub fn invalid_answer(prefix: &str) -> MetricEvent {
    MetricEvent::count(prefix, "callout_failure.invalid_answer")
}

pub fn jwks_fetch(prefix: &str) -> MetricEvent {
    MetricEvent::count(prefix, "jwks_fetch")
}

/// Callouts whose request ended before the answer came (the client hung up meanwhile).
pub fn callouts_abandoned(prefix: &str, count: u64) -> MetricEvent {
    MetricEvent {
        value: count,
        ..MetricEvent::count(prefix, "callout_abandoned")
    }
}

/// A request in the hold mode whose headers no hold instance stopped: it was refused.
pub fn hold_missing(prefix: &str) -> MetricEvent {
    MetricEvent::count(prefix, "hold_missing")
}

pub fn sessions_live(prefix: &str, live: u64) -> MetricEvent {
    MetricEvent {
        kind: MetricKind::Gauge,
        name: format!("{prefix}.sessions_live"),
        value: live,
    }
}

#[cfg(test)]
mod tests;
