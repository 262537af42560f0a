//! What the identity flows share: what a token must satisfy, the `/userinfo` shape, and how a
//! verification that lacks keys waits for them.

use super::{Action, Ctx};
use crate::config::{Client, Config};
use crate::http::error::FilterError;
use crate::jwt::{Claims, VerifyError};
use crate::store::StoreOp;

/// Standard OIDC profile claims copied from the ID token into `/userinfo`.
const PROFILE_CLAIMS: [&str; 20] = [
    "sub",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
];

/// How long a request waits for the first JWKS fetch, in 25 ms steps.
const MAX_KEY_WAITS: u32 = 200;

/// Auth0's `iss`: the tenant URL with its trailing slash.
pub fn issuer(client: &Client) -> String {
    client.access_expectation.issuer.clone()
}

/// The claims of an ID token taken from Auth0's token endpoint over the filter's own callout,
/// at login or refresh: OIDC Core 3.1.3.7 lets such a token be trusted without its signature.
pub(crate) fn unverified_claims(token: &str) -> Option<Claims> {
    crate::jwt::unverified_payload(token)
}

/// What a session keeps of its ID token's claims: the ones `/userinfo` shows.
pub fn profile_claims(config: &Config, mut claims: Claims) -> Claims {
    claims.retain(|name, _| {
        name != "sub"
            && (PROFILE_CLAIMS.contains(&name.as_str())
                || config.custom_claims_namespaces.contains(name))
    });
    claims
}

/// The member that says what a user may do: only an `app_metadata` namespace may give it.
const GROUPS: &str = "groups";

/// `/userinfo`: `sub` and the standard profile claims of the ID token, plus the members of
/// each `customClaimsNamespaces` object at the top level (standard claims win on a clash), but
/// `groups` only from an `app_metadata` namespace.
pub fn userinfo_body(config: &Config, claims: &Claims, subject: &str) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    body.insert("sub".into(), subject.into());
    for name in PROFILE_CLAIMS {
        if let Some(value) = claims.get(name) {
            body.entry(name.to_string())
                .or_insert_with(|| value.clone());
        }
    }
    // `app_metadata` namespaces first: users can edit their `user_metadata`, so it must not
    // be able to shadow an admin-controlled member; and where the admin gave no `groups`, a
    // user's own must not stand in for them (a consumer of /userinfo would trust it).
    let mut namespaces: Vec<&String> = config.custom_claims_namespaces.iter().collect();
    namespaces.sort_by_key(|n| !is_app_metadata(n));
    for namespace in namespaces {
        let admin = is_app_metadata(namespace);
        if let Some(serde_json::Value::Object(members)) = claims.get(namespace) {
            for (key, value) in members {
                if key == GROUPS && !admin {
                    continue;
                }
                body.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    serde_json::Value::Object(body)
}

fn is_app_metadata(namespace: &str) -> bool {
    namespace.ends_with("app_metadata")
}

/// The user's groups for the identity header: `groups` of an `app_metadata` namespace only
/// (never `user_metadata`, which users can edit), and only values that cannot be mistaken for
/// several groups or break the header (no `,`, no control characters).
pub fn groups(config: &Config, claims: &Claims) -> Vec<String> {
    config
        .custom_claims_namespaces
        .iter()
        .filter(|n| is_app_metadata(n))
        .filter_map(|n| claims.get(n)?.get(GROUPS)?.as_array())
        .flatten()
        .filter_map(|v| v.as_str())
        .filter(|g| !g.is_empty() && !g.contains(',') && !g.chars().any(char::is_control))
        .map(str::to_string)
        .collect()
}

/// What to do when keys are missing: wait for the first fetch, or ask for a refetch once when
/// the token names a `kid` we do not have and wait until it can have landed (refetches happen
/// at most once a second per tenant, so a flood of made-up `kid`s costs little; and the
/// `Verifier` lets only so many distinct tokens wait at once, answering the others
/// `UnknownKeyNoWait`). `Some(action)` retries; `None` means the verification failure is final.
pub struct KeyWaits {
    waits: u32,
    /// When the unknown `kid` was first met (unix ms).
    unknown_since: Option<u64>,
}

impl KeyWaits {
    pub fn new() -> Self {
        KeyWaits {
            waits: 0,
            unknown_since: None,
        }
    }

    pub fn on_error(&mut self, ctx: &Ctx<'_>, issuer: &str, error: &VerifyError) -> Option<Action> {
        match error {
            VerifyError::NoKeys if self.waits < MAX_KEY_WAITS => {
                self.waits += 1;
                Some(Action::Wait { millis: 25 })
            }
            VerifyError::UnknownKey(_) => match self.unknown_since {
                None => {
                    self.unknown_since = Some(ctx.now.millis());
                    Some(Action::Store(StoreOp::WantJwks {
                        issuer: issuer.to_string(),
                    }))
                }
                // Long enough for the rate-limited refetch to land; a made-up `kid` gives up
                // after that, so a flood of them holds little.
                Some(since) => {
                    let budget = crate::tokens::verifier::UNKNOWN_KEY_WAIT_MS;
                    (ctx.now.millis() < since + budget).then_some(Action::Wait { millis: 50 })
                }
            },
            _ => None,
        }
    }
}

/// The answer to a final verification failure: 401, except that missing keys (the JWKS cannot
/// be fetched) are the gateway's problem: 503, to retry.
pub fn unauthorized(error: &VerifyError) -> FilterError {
    if let VerifyError::NoKeys = error {
        let mut unavailable = FilterError::unavailable("the signing keys are not available yet");
        unavailable.retry_after = Some(1);
        return unavailable;
    }
    let why = match error {
        VerifyError::Expired => "the token has expired",
        VerifyError::NoKeys => "the signing keys are not available yet",
        VerifyError::UnknownKey(_) | VerifyError::UnknownKeyNoWait => {
            "the token is signed with an unknown key"
        }
        VerifyError::Algorithm => "the token's algorithm is not accepted",
        VerifyError::Malformed | VerifyError::Invalid => "the token is not valid",
        VerifyError::NoClient => "the token was not issued to a configured client",
    };
    FilterError::unauthorized(why)
}
