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
    /// `GET /users`
    UsersSearch,
    /// `GET /users/active`
    UsersActive,
    /// `POST /users`
    UserCreate,
    /// `PATCH /users/:userID`
    UserUpdate,
    /// `DELETE /users/:userID`
    UserDelete,
    /// `POST /users/import`
    UsersImport,
    /// `GET /users/import/status/:jobID`
    ImportStatus,
    /// `GET /users/import/status/:jobID/errors`
    ImportErrors,
    /// `GET /authorize`
    Authorize,
    /// `GET /userinfo` and `GET /users/me`
    Userinfo,
    /// `GET /documentation/json`: the OpenAPI description of these routes.
    Documentation,
}

impl RouteKind {
    /// The route's name in stats and log lines.
    pub fn metric_name(self) -> &'static str {
        match self {
            RouteKind::Token => "token",
            RouteKind::RefreshToken => "refresh_token",
            RouteKind::Logout => "logout",
            RouteKind::UsersSearch => "users_search",
            RouteKind::UsersActive => "users_active",
            RouteKind::UserCreate => "user_create",
            RouteKind::UserUpdate => "user_update",
            RouteKind::UserDelete => "user_delete",
            RouteKind::UsersImport => "users_import",
            RouteKind::ImportStatus => "import_status",
            RouteKind::ImportErrors => "import_errors",
            RouteKind::Authorize => "authorize",
            RouteKind::Userinfo => "userinfo",
            RouteKind::Documentation => "documentation",
        }
    }

    /// The user-management routes, which call Auth0's Management API.
    pub fn is_management(self) -> bool {
        matches!(
            self,
            RouteKind::UsersSearch
                | RouteKind::UsersActive
                | RouteKind::UserCreate
                | RouteKind::UserUpdate
                | RouteKind::UserDelete
                | RouteKind::UsersImport
                | RouteKind::ImportStatus
                | RouteKind::ImportErrors
        )
    }

    fn method(self) -> &'static str {
        match self {
            RouteKind::Token
            | RouteKind::RefreshToken
            | RouteKind::UserCreate
            | RouteKind::UsersImport => "POST",
            RouteKind::UserUpdate => "PATCH",
            RouteKind::UserDelete => "DELETE",
            RouteKind::Logout
            | RouteKind::Authorize
            | RouteKind::Userinfo
            | RouteKind::Documentation
            | RouteKind::UsersSearch
            | RouteKind::UsersActive
            | RouteKind::ImportStatus
            | RouteKind::ImportErrors => "GET",
        }
    }
}

/// A request the filter owns, with the path parameter (user or job id, still %-encoded) of the
/// routes that have one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub kind: RouteKind,
    pub param: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Full paths (prefix included) and the route they lead to.
    exact: Vec<(String, RouteKind)>,
    /// Full base paths of the user-management routes; empty while those are closed.
    users: Vec<String>,
}

/// A configured route: kind, config field (for errors), configured paths, default paths.
pub type RouteSpec<'a> = (RouteKind, &'a str, Option<Vec<String>>, &'a [&'a str]);

fn paths_of(
    field: &str,
    configured: &Option<Vec<String>>,
    defaults: &[&str],
) -> Result<Vec<String>, ConfigError> {
    let paths: Vec<String> = match configured {
        Some(paths) => paths.clone(),
        None => defaults.iter().map(|p| p.to_string()).collect(),
    };
    for (index, path) in paths.iter().enumerate() {
        if !path.starts_with('/')
            || path.len() < 2
            || path.ends_with('/')
            || path.contains(['?', '#', ' '])
        {
            return Err(ConfigError {
                field: format!("{field}[{index}]"),
                problem: "must be a path starting with `/`, without a trailing `/`".into(),
            });
        }
    }
    Ok(paths)
}

impl RouteTable {
    /// Builds the table from configured paths (or the original's defaults) under `prefix`.
    /// `users` is the base path spec of the management routes, `None` while they are closed.
    pub fn new(
        prefix: &str,
        specs: &[RouteSpec<'_>],
        users: Option<(&str, Option<Vec<String>>)>,
    ) -> Result<RouteTable, ConfigError> {
        let mut table = RouteTable::default();
        for (kind, field, configured, defaults) in specs {
            for (index, path) in paths_of(field, configured, defaults)?
                .into_iter()
                .enumerate()
            {
                let full = format!("{prefix}{path}");
                if table.exact.iter().any(|(p, _)| *p == full) {
                    return Err(ConfigError {
                        field: format!("{field}[{index}]"),
                        problem: "this path is already used by another route".into(),
                    });
                }
                table.exact.push((full, *kind));
            }
        }
        if let Some((field, configured)) = users {
            for (index, path) in paths_of(field, &configured, &["/users"])?
                .into_iter()
                .enumerate()
            {
                let full = format!("{prefix}{path}");
                // Exact routes under it (`/users/me`) take priority; only the base itself clashes.
                if table.exact.iter().any(|(p, _)| *p == full) {
                    return Err(ConfigError {
                        field: format!("{field}[{index}]"),
                        problem: "overlaps the path of another route".into(),
                    });
                }
                table.users.push(full);
            }
        }
        Ok(table)
    }

    /// The first full path of a route, e.g. where `/authorize` is served.
    pub fn first_path(&self, kind: RouteKind) -> Option<&str> {
        self.exact
            .iter()
            .find(|(_, k)| *k == kind)
            .map(|(p, _)| p.as_str())
    }

    /// The route a request goes to, or `None` to pass it through. Only the method and the path
    /// (query string ignored) are looked at, so this is cheap on every request.
    pub fn classify(&self, method: &str, path: &str) -> Option<RouteMatch> {
        let path = crate::http::split_path(path).0;
        if let Some((_, kind)) = self
            .exact
            .iter()
            .find(|(p, k)| p == path && k.method() == method)
        {
            return Some(RouteMatch {
                kind: *kind,
                param: None,
            });
        }
        self.users
            .iter()
            .find_map(|base| users_route(base, method, path))
    }
}

fn users_route(base: &str, method: &str, path: &str) -> Option<RouteMatch> {
    let rest = path.strip_prefix(base)?;
    let route = |kind: RouteKind, param: Option<&str>| {
        (kind.method() == method).then(|| RouteMatch {
            kind,
            param: param.map(str::to_string),
        })
    };
    if rest.is_empty() {
        return route(RouteKind::UsersSearch, None).or_else(|| route(RouteKind::UserCreate, None));
    }
    let rest = rest.strip_prefix('/').filter(|r| !r.is_empty())?;
    match rest {
        "active" if method == "GET" => return route(RouteKind::UsersActive, None),
        "import" if method == "POST" => return route(RouteKind::UsersImport, None),
        _ => {}
    }
    if method == "GET" {
        let job = rest
            .strip_prefix("import/status/")
            .filter(|j| !j.is_empty())?;
        return match job.strip_suffix("/errors").filter(|j| !j.is_empty()) {
            Some(job) => route(RouteKind::ImportErrors, Some(job)),
            None => route(RouteKind::ImportStatus, Some(job)),
        };
    }
    route(RouteKind::UserUpdate, Some(rest)).or_else(|| route(RouteKind::UserDelete, Some(rest)))
}

#[cfg(test)]
mod tests;
