//! redis-server and Webdis on free loopback ports for the Redis session-store backend, set up as
//! docs/sessions.md recommends: Redis's `default` user (the one Webdis authenticates as) with a
//! password and only the filter's commands, Webdis with an ACL that refuses every command to
//! anonymous callers and allows only the filter's commands with basic auth.

use super::launch::{free_port, Proc};
use super::repo;
// Every command the filter sends: the only ones the Redis and Webdis ACLs allow.
use auth0_filter_core::store::redis::COMMANDS;
use std::path::PathBuf;
use std::process::Command;

pub const WEBDIS_USER: &str = "gw";
pub const WEBDIS_PASSWORD: &str = "webdis-secret";
/// Redis AUTH between Webdis and redis-server.
const REDIS_PASSWORD: &str = "redis-secret";

/// Stopped when dropped; parts can be stopped, paused and restarted to test outages.
pub struct Redis {
    pub webdis_port: u16,
    redis_port: u16,
    dir: PathBuf,
    redis: Option<Proc>,
    webdis: Option<Proc>,
}

impl Redis {
    /// In target/it/NAME-redis.
    pub fn start(name: &str) -> Redis {
        Self::start_in(repo().join("target/it").join(format!("{name}-redis")))
            .unwrap_or_else(|failures| panic!("redis-server/webdis did not start: {failures}"))
    }

    /// With its files and logs in `dir` (emptied first).
    pub fn start_in(dir: PathBuf) -> Result<Redis, String> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
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
                Ok(()) => return Ok(redis),
                Err(why) => {
                    failures.push(why);
                    redis.stop_webdis();
                    redis.stop_redis();
                }
            }
        }
        Err(format!("{failures:?}"))
    }

    /// The pids of redis-server and Webdis.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        (
            self.redis.as_ref().map(Proc::id),
            self.webdis.as_ref().map(Proc::id),
        )
    }

    /// Whichever of redis-server and Webdis has exited, with its status.
    pub fn exited(&mut self) -> Option<String> {
        for proc in [self.redis.as_mut(), self.webdis.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(status) = proc.exited() {
                return Some(format!("{} exited ({status})", proc.what()));
            }
        }
        None
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
        let mut command = Command::new("redis-server");
        command
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
            .args(&allowed);
        let mut proc = Proc::spawn("redis-server", &mut command, &log)
            .map_err(|e| format!("{e} (run `make deps`: redis-server)"))?;
        let listening = proc
            .wait_listening(self.redis_port)
            .map_err(|e| e.to_string());
        self.redis = Some(proc);
        listening
    }

    pub fn stop_redis(&mut self) {
        self.redis = None;
    }

    /// SIGSTOP / SIGCONT redis-server: Redis is "slow", Webdis waits on it.
    pub fn pause_redis(&self, paused: bool) {
        if let Some(proc) = &self.redis {
            proc.signal(if paused { libc::SIGSTOP } else { libc::SIGCONT });
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
        std::fs::write(&config_path, config.to_string())
            .map_err(|e| format!("{}: {e}", config_path.display()))?;
        let log = self.dir.join("webdis.stderr");
        let mut command = Command::new("webdis");
        command.arg(&config_path);
        let mut proc = Proc::spawn("webdis", &mut command, &log)
            .map_err(|e| format!("{e} (run `make deps`: webdis)"))?;
        let listening = proc
            .wait_listening(self.webdis_port)
            .map_err(|e| e.to_string());
        self.webdis = Some(proc);
        listening
    }

    pub fn stop_webdis(&mut self) {
        self.webdis = None;
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
