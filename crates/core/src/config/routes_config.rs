//! The route table from the `paths` block: which paths lead to which route.

use super::raw::RawPaths;
use super::ConfigError;
use crate::config::routes::{RouteKind, RouteTable};

/// The route table under `prefix`. The management routes exist only when `managementAccess`
/// opens them; the documentation route only while `serveDocumentation` is on.
pub(super) fn route_table(
    prefix: &str,
    paths: RawPaths,
    management_open: bool,
    serve_documentation: bool,
) -> Result<RouteTable, ConfigError> {
    let mut specs = vec![
        (
            RouteKind::Token,
            "paths.token",
            paths.token,
            &["/oauth/token"][..],
        ),
        (
            RouteKind::RefreshToken,
            "paths.refreshToken",
            paths.refresh_token,
            &["/refreshtoken"][..],
        ),
        (
            RouteKind::Logout,
            "paths.logout",
            paths.logout,
            &["/logout"][..],
        ),
        (
            RouteKind::Authorize,
            "paths.authorize",
            paths.authorize,
            &["/authorize"][..],
        ),
        (
            RouteKind::Userinfo,
            "paths.userinfo",
            paths.userinfo,
            &["/userinfo", "/users/me"][..],
        ),
    ];
    if serve_documentation {
        specs.push((
            RouteKind::Documentation,
            "paths.documentation",
            paths.documentation,
            &["/documentation/json"][..],
        ));
    }
    RouteTable::new(
        prefix,
        &specs,
        management_open.then_some(("paths.users", paths.users)),
    )
}
