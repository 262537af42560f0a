//! Entry points for the fuzz targets in `fuzz/` that the public API does not already offer.
//! Not part of the filter's API: thin wrappers over private functions, nothing else.

use crate::config::Config;
use crate::http::error::FilterError;
use crate::jwt::Claims;

/// The `POST /users/import` rewriting: the client's multipart body to Auth0's, as
/// `(content type, body)` of the Management API call.
pub fn import_users(
    config: &Config,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(Option<String>, Vec<u8>), FilterError> {
    crate::flows::management::import_users(&config.management, content_type, body)
        .map(|request| (request.content_type, request.body.unwrap_or_default()))
}

/// The claims of an ID token, read without verification (a session's profile at login).
pub fn unverified_claims(token: &str) -> Option<Claims> {
    crate::flows::identity::unverified_claims(token)
}
