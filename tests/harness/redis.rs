//! redis-server and Webdis on free loopback ports for the Redis session-store backend, set up as
//! docs/sessions.md recommends: Redis's `default` user (the one Webdis authenticates as) with a
//! password and only the filter's commands, Webdis with an ACL that refuses every command to
//! anonymous callers and allows only the filter's commands with basic auth.

use super::{free_port, repo, stop, wait_for_port};
// Every command the filter sends: the only ones the Redis and Webdis ACLs allow.
use auth0_filter_core::store::redis::COMMANDS;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const WEBDIS_USER: &str = "gw";
pub const WEBDIS_PASSWORD: &str = "webdis-secret";
/// Redis AUTH between Webdis and redis-server.
const REDIS_PASSWORD: &str = "redis-secret";

/// Stopped when dropped; parts can be stopped, paused and restarted to test outages.
pub struct Redis {
    pub webdis_port: u16,
    redis_port: u16,
    dir: PathBuf,
    redis: Option<Child>,
    webdis: Option<Child>,
}

impl Redis {
    pub fn start(name: &str) -> Redis {
        let dir = repo().join("target/it").join(format!("{name}-redis"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut redis = Redis {
            webdis_port: 0,
            redis_port: 0,
            dir,
            redis: None,
            webdis: None,
        };
        // A free port can still be taken before the server binds it (e.g. as the local port of
        // some outgoing connection): start again on new ports, a bounded number of times.
        let mut failures = vec![];
        for _ in 0..4 {
            (redis.redis_port, redis.webdis_port) = (free_port(), free_port());
            match redis
                .try_start_redis()
                .and_then(|()| redis.try_start_webdis())
            {
                Ok(()) => return redis,
                Err(why) => {
                    failures.push(why);
                    redis.stop_webdis();
                    redis.stop_redis();
                }
            }
        }
        panic!("redis-server/webdis did not start: {failures:?}");
    }

    /// (Re)starts redis-server on its port.
    pub fn start_redis(&mut self) {
        self.try_start_redis().expect("redis listens");
    }

    /// (Re)starts Webdis on its port.
    pub fn start_webdis(&mut self) {
        self.try_start_webdis().expect("webdis listens");
    }

    fn try_start_redis(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let password = format!(">{REDIS_PASSWORD}");
        let allowed: Vec<String> = COMMANDS
            .iter()
            .map(|c| format!("+{}", c.to_lowercase()))
            .collect();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &self.redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--user",
                "default",
                "on",
                &password,
                "~*",
                "resetchannels",
                "-@all",
            ])
            .args(&allowed)
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        let listening = wait_for_port(self.redis_port, "redis-server", &mut child, &log);
        self.redis = Some(child);
        listening
    }

    pub fn stop_redis(&mut self) {
        if let Some(mut child) = self.redis.take() {
            stop(&mut child);
        }
    }

    /// SIGSTOP / SIGCONT redis-server: Redis is "slow", Webdis waits on it.
    pub fn pause_redis(&self, paused: bool) {
        if let Some(child) = &self.redis {
            let signal = if paused { "-STOP" } else { "-CONT" };
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill {signal}");
        }
    }

    fn try_start_webdis(&mut self) -> Result<(), String> {
        let config = serde_json::json!({
            "redis_host": "127.0.0.1", "redis_port": self.redis_port, "redis_auth": REDIS_PASSWORD,
            "http_host": "127.0.0.1", "http_port": self.webdis_port,
            "threads": 2, "daemonize": false, "database": 0, "verbosity": 1,
            "logfile": self.dir.join("webdis.log"),
            "acl": [
                {"disabled": ["*"]},
                {"http_basic_auth": format!("{WEBDIS_USER}:{WEBDIS_PASSWORD}"),
                 "enabled": COMMANDS}
            ]
        });
        let config_path = self.dir.join("webdis.json");
        std::fs::write(&config_path, config.to_string()).expect("webdis config");
        let log = self.dir.join("webdis.stderr");
        let mut child = Command::new("webdis")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start webdis (apt-get install webdis)");
        let listening = wait_for_port(self.webdis_port, "webdis", &mut child, &log);
        self.webdis = Some(child);
        listening
    }

    pub fn stop_webdis(&mut self) {
        if let Some(mut child) = self.webdis.take() {
            stop(&mut child);
        }
    }

    /// The filter's `sessionStore` for this Redis.
    pub fn store_config(&self, key_prefix: &str) -> serde_json::Value {
        serde_json::json!({
            "backend": "redis", "webdisCluster": "webdis", "keyPrefix": key_prefix,
            "username": WEBDIS_USER, "password": WEBDIS_PASSWORD
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // A paused redis-server must be resumed to die cleanly.
        self.pause_redis(false);
        self.stop_webdis();
        self.stop_redis();
    }
}
