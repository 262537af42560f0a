//! Which requests the filter owns. Everything else passes through untouched, body unread.

use crate::config::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// `POST /oauth/token`
    Token,
    /// `POST /refreshtoken`
    RefreshToken,
    /// `GET /logout`
    Logout,
}

impl RouteKind {
    pub fn method(self) -> &'static str {
        match self {
            RouteKind::Token | RouteKind::RefreshToken => "POST",
            RouteKind::Logout => "GET",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Full paths (prefix included) and the route they lead to.
    entries: Vec<(String, RouteKind)>,
}

type RouteSpec<'a> = (RouteKind, &'a str, Option<Vec<String>>, &'a [&'a str]);

impl RouteTable {
    /// Builds the table from configured paths (or the original's defaults) under `prefix`.
    pub fn new(prefix: &str, specs: &[RouteSpec<'_>]) -> Result<RouteTable, ConfigError> {
        let mut entries: Vec<(String, RouteKind)> = Vec::new();
        for (kind, field, configured, defaults) in specs {
            let paths: Vec<String> = match configured {
                Some(paths) => paths.clone(),
                None => defaults.iter().map(|p| p.to_string()).collect(),
            };
            for (index, path) in paths.iter().enumerate() {
                let bad = |problem: &str| ConfigError {
                    field: format!("{field}[{index}]"),
                    problem: problem.to_string(),
                };
                if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
                    return Err(bad("must be a path starting with `/`"));
                }
                let full = format!("{prefix}{path}");
                if entries.iter().any(|(p, _)| *p == full) {
                    return Err(bad("this path is already used by another route"));
                }
                entries.push((full, *kind));
            }
        }
        Ok(RouteTable { entries })
    }

    /// The route a request goes to, or `None` to pass it through. Only the method and the path
    /// (query string ignored) are looked at, so this is cheap on every request.
    pub fn classify(&self, method: &str, path: &str) -> Option<RouteKind> {
        let path = crate::http::split_path(path).0;
        self.entries
            .iter()
            .find(|(p, kind)| p == path && kind.method() == method)
            .map(|(_, kind)| *kind)
    }

    pub fn paths(&self) -> impl Iterator<Item = (&str, RouteKind)> {
        self.entries.iter().map(|(p, k)| (p.as_str(), *k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(prefix: &str) -> RouteTable {
        RouteTable::new(
            prefix,
            &[
                (RouteKind::Token, "paths.token", None, &["/oauth/token"]),
                (
                    RouteKind::RefreshToken,
                    "paths.refreshToken",
                    Some(vec!["/refreshtoken".into(), "/oauth/refreshtoken".into()]),
                    &["/refreshtoken"],
                ),
                (RouteKind::Logout, "paths.logout", None, &["/logout"]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn owns_only_listed_method_and_path() {
        let t = table("");
        assert_eq!(t.classify("POST", "/oauth/token"), Some(RouteKind::Token));
        assert_eq!(
            t.classify("POST", "/oauth/token?x=1"),
            Some(RouteKind::Token)
        );
        assert_eq!(t.classify("GET", "/oauth/token"), None);
        assert_eq!(t.classify("POST", "/oauth/token/"), None);
        assert_eq!(
            t.classify("POST", "/oauth/refreshtoken"),
            Some(RouteKind::RefreshToken)
        );
        assert_eq!(
            t.classify("POST", "/refreshtoken"),
            Some(RouteKind::RefreshToken)
        );
        assert_eq!(
            t.classify("GET", "/logout?redirect=/x"),
            Some(RouteKind::Logout)
        );
        assert_eq!(t.classify("GET", "/anything"), None);
    }

    #[test]
    fn prefix_applies_to_every_route() {
        let t = table("/auth");
        assert_eq!(
            t.classify("POST", "/auth/oauth/token"),
            Some(RouteKind::Token)
        );
        assert_eq!(t.classify("POST", "/oauth/token"), None);
    }

    #[test]
    fn duplicate_or_relative_paths_are_refused() {
        let dup = RouteTable::new(
            "",
            &[
                (
                    RouteKind::Token,
                    "paths.token",
                    Some(vec!["/x".into()]),
                    &[],
                ),
                (
                    RouteKind::Logout,
                    "paths.logout",
                    Some(vec!["/x".into()]),
                    &[],
                ),
            ],
        );
        assert_eq!(dup.unwrap_err().field, "paths.logout[0]");
        let rel = RouteTable::new(
            "",
            &[(RouteKind::Token, "paths.token", Some(vec!["x".into()]), &[])],
        );
        assert_eq!(rel.unwrap_err().field, "paths.token[0]");
    }
}
