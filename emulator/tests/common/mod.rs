//! Starts the emulator binary on a free loopback port (stopped on drop) and calls its
//! Management API.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

pub const MGMT: (&str, &str) = (
    "management-client-id",
    "management-client-secret-0123456789",
);
pub const READONLY: (&str, &str) = (
    "readonly-management-client-id",
    "readonly-management-client-secret-0123456789",
);

pub struct Emulator {
    pub base: String,
    child: Child,
}

pub struct Answer {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

impl Emulator {
    pub fn start() -> Emulator {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/it");
        std::fs::create_dir_all(dir).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_auth0-emulator"))
            .args(["serve", "--port", &port.to_string(), "--threads", "2"])
            .args([
                "--tenant",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tenant.json"),
            ])
            .args(["--key-file", &format!("{dir}/emulator-key.pem")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "emulator did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let emulator = Emulator {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        // Ready when it answers HTTP, not only when the port accepts a connection.
        let jwks = format!("{}/.well-known/jwks.json", emulator.base);
        while ureq::get(&jwks).call().is_err() {
            assert!(Instant::now() < deadline, "emulator does not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        emulator
    }

    /// The Management API audience: `<issuer>api/v2/`.
    pub fn audience(&self) -> String {
        format!("{}/api/v2/", self.base)
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Answer {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(Duration::from_secs(10))
            .build();
        let mut req = agent.request(method, &format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.set("authorization", &format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            req = req.set("content-type", ct);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }

    pub fn get(&self, path: &str, token: &str) -> Answer {
        self.send("GET", path, Some(token), None, None)
    }

    pub fn json(&self, method: &str, path: &str, token: &str, body: &Value) -> Answer {
        self.send(
            method,
            path,
            Some(token),
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }

    pub fn form(&self, path: &str, pairs: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.send(
            "POST",
            path,
            None,
            Some("application/x-www-form-urlencoded"),
            Some(body.as_bytes()),
        )
    }

    /// A client_credentials answer for the Management API.
    pub fn grant(&self, client: (&str, &str), audience: &str) -> Answer {
        self.form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client.0),
                ("client_secret", client.1),
                ("audience", audience),
            ],
        )
    }

    pub fn token(&self, client: (&str, &str)) -> String {
        let answer = self.grant(client, &self.audience());
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json["access_token"].as_str().unwrap().to_string()
    }

    pub fn faults(&self, spec: &str) {
        let answer = self.send(
            "POST",
            "/__emulator/faults",
            None,
            Some("application/json"),
            Some(spec.as_bytes()),
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
    }

    /// Logs in with password-realm; the status code.
    pub fn login(&self, realm: &str, username: &str, password: &str) -> u16 {
        self.form(
            "/oauth/token",
            &[
                (
                    "grant_type",
                    "http://auth0.com/oauth/grant-type/password-realm",
                ),
                ("realm", realm),
                ("username", username),
                ("password", password),
                ("client_id", "website-client-id"),
                ("client_secret", "website-client-secret-0123456789"),
            ],
        )
        .status
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// `?q=` with the query percent-encoded.
pub fn q(query: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", query)
        .append_pair("search_engine", "v3")
        .finish()
}
