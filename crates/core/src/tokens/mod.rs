//! What the filter does with tokens beyond parsing them: verifying access tokens against the
//! tenant's keys with a per-worker cache, and sealing the login state of a browser login.

pub mod login_state;
pub mod verifier;
