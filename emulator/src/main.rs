//! auth0-emulator: a local stand-in for the Auth0 APIs auth0-filter calls, faithful to Auth0's
//! documented request formats, answers, error bodies and status codes:
//!
//! - the Authentication API (`authn`): `/oauth/token` grants, `/oauth/revoke`, `/userinfo`,
//!   `/authorize` with the hosted login page (`login`), `/v2/logout`, the JWKS;
//! - the Management API v2 subset (`mgmt`, `users`, `jobs`), audience `<issuer>api/v2/`:
//!   `GET|POST /api/v2/users` (Lucene v3 search in `lucene`), `GET|PATCH|DELETE
//!   /api/v2/users/{id}`, `GET /api/v2/connections`, `POST /api/v2/jobs/users-imports`
//!   (multipart, parsed in `multipart`), `GET /api/v2/jobs/{id}[/errors]`;
//! - test controls under `/__emulator/` (`faults`): delays, injected failures, call and grant
//!   counts, short-lived and revoked Management API tokens.
//!
//! Both APIs share one mutable user store (`store`), seeded from the tenant file: users created
//! or imported through the Management API can log in, deleted ones cannot. `echo` mode runs a
//! tiny upstream that reflects requests, for pass-through tests, and serves the sample login site
//! (`site`).
//!
//! Usage:
//!   auth0-emulator serve --port N --tenant tenant.json --key-file key.pem [--issuer URL] [--threads N] [--host ADDR]
//!   auth0-emulator echo --port N [--host ADDR]
//!
//! `--host` is the listen address, 127.0.0.1 by default (0.0.0.0 in docker-compose.yml).

mod authn;
mod echo;
mod faults;
mod jobs;
mod login;
mod lucene;
mod mgmt;
mod multipart;
mod server;
mod site;
mod store;
mod tenant;
mod tokens;
mod users;

use std::collections::HashMap;
use std::process::ExitCode;

fn args() -> (String, HashMap<String, String>) {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let mut flags = HashMap::new();
    while let Some(flag) = it.next() {
        if let Some(name) = flag.strip_prefix("--") {
            flags.insert(name.to_string(), it.next().unwrap_or_default());
        }
    }
    (mode, flags)
}

fn main() -> ExitCode {
    let (mode, flags) = args();
    let port: u16 = flags.get("port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let threads: usize = flags
        .get("threads")
        .and_then(|p| p.parse().ok())
        .unwrap_or(8);
    let host = flags
        .get("host")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".to_string());
    let result = match mode.as_str() {
        "serve" => serve(&host, port, threads, &flags),
        "echo" => echo::run(&host, port, threads),
        _ => Err("usage: auth0-emulator serve|echo --port N [...]".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auth0-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    host: &str,
    port: u16,
    threads: usize,
    flags: &HashMap<String, String>,
) -> Result<(), String> {
    let tenant_path = flags.get("tenant").ok_or("--tenant is required")?;
    let key_path = flags.get("key-file").ok_or("--key-file is required")?;
    let tenant = tenant::Tenant::load(tenant_path)?;
    let issuer = flags
        .get("issuer")
        .cloned()
        .unwrap_or_else(|| format!("http://127.0.0.1:{port}/"));
    let signer = tokens::Signer::load_or_create(key_path, &issuer)?;
    let app = authn::Emulator::new(tenant, signer);
    server::run(host, port, threads, move |request| app.handle(request))
}
