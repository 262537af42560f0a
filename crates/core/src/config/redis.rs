//! Where the Redis session store is reached: Webdis, through an Envoy cluster.

/// Where Webdis is and how to talk to it. `Debug` is written by hand: it hides the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub cluster: String,
    pub authority: String,
    pub key_prefix: String,
    /// `Basic …` for Webdis' `http_basic_auth` ACL, if configured.
    pub authorization: Option<String>,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("cluster", &self.cluster)
            .field("authority", &self.authority)
            .field("key_prefix", &self.key_prefix)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}
