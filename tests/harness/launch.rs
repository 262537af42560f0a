//! The one process launcher: the Auth0 emulator (`auth0-emulator serve`), the echo upstream
//! (`auth0-emulator echo`) and Envoy on free 127.0.0.1 ports, each logging to a file in its
//! run directory, each wait for readiness bounded, each process stopped when its handle is
//! dropped. The test gateways (`Gateway`) and `auth0-stack up` (`make run`, the curl tour, the
//! api-check, the browser test, the bench) launch through here; redis-server and Webdis too
//! (redis.rs).

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::render::{render, FilterConfig, Ports, Render, Shape};
use super::repo;

/// How long any one process may take to be ready.
pub const READY_WITHIN: Duration = Duration::from_secs(60);

static STOPPING: AtomicBool = AtomicBool::new(false);
static DIE_WITH_LAUNCHER: AtomicBool = AtomicBool::new(false);

/// Makes every wait for readiness give up at once (`auth0-stack up` on a signal, or when its
/// standard input closes). Only stores to an atomic: safe in a signal handler.
pub fn request_stop() {
    STOPPING.store(true, Ordering::SeqCst);
}

pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Processes started from now on are killed when the thread that started them ends, even if
/// it is killed with SIGKILL (Linux's parent-death signal): `auth0-stack up` leaves no orphans.
/// Not for the tests, whose gateways may outlive the test thread that started them.
pub fn die_with_launcher() {
    DIE_WITH_LAUNCHER.store(true, Ordering::SeqCst);
}

/// Why a start failed.
#[derive(Debug)]
pub enum Failure {
    /// The process exited before it was ready: what it was, its status and its log.
    Exited {
        what: String,
        status: String,
        log: String,
    },
    /// Not ready within `READY_WITHIN`.
    Timeout(String),
    /// `request_stop` was called meanwhile.
    Stopped,
    /// It could not be started, or its files not written.
    Other(String),
}

impl Failure {
    /// Whether another process took one of the ports first (then new ports may do).
    pub fn port_taken(&self) -> bool {
        match self {
            Failure::Exited { log, .. } => {
                log.contains("Address already in use")
                    || log.contains("address in use")
                    || log.contains("cannot listen")
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Exited { what, status, log } => write!(f, "{what} exited ({status}): {log}"),
            Failure::Timeout(message) | Failure::Other(message) => f.write_str(message),
            Failure::Stopped => f.write_str("stopped before everything was ready"),
        }
    }
}

/// A loopback port nobody listens on. Ports come from a per-process counter (spread by pid so
/// test binaries and runs don't overlap) and are checked bindable, so parallel tests in one
/// binary never get the same port; a start that still loses a race is retried.
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU16;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 400) as u16 * 100;
    for _ in 0..2_000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 20_000;
        let port = 20_000 + (base - 20_000 + offset) % 40_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port");
}

/// A started process; killed when dropped.
pub struct Proc {
    what: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `command` with no input, its output (both streams) in the file `log`.
    pub fn spawn(what: &str, command: &mut Command, log: &Path) -> Result<Proc, Failure> {
        let file = std::fs::File::create(log)
            .map_err(|e| Failure::Other(format!("{}: {e}", log.display())))?;
        let copy = file
            .try_clone()
            .map_err(|e| Failure::Other(format!("{}: {e}", log.display())))?;
        command.stdin(Stdio::null()).stdout(copy).stderr(file);
        let mut proc = Self::start(what, command)?;
        proc.log = log.to_path_buf();
        Ok(proc)
    }

    /// Starts `command` with the input and output it was given.
    pub fn start(what: &str, command: &mut Command) -> Result<Proc, Failure> {
        if DIE_WITH_LAUNCHER.load(Ordering::SeqCst) {
            let launcher = std::process::id();
            // SAFETY: between fork and exec this only makes two async-signal-safe system calls.
            unsafe {
                command.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The launcher may have died before the call: then nobody would stop this.
                    if libc::getppid() as u32 != launcher {
                        return Err(std::io::Error::other("the launcher is gone"));
                    }
                    Ok(())
                });
            }
        }
        let child = command
            .spawn()
            .map_err(|e| Failure::Other(format!("start {what} ({command:?}): {e}")))?;
        Ok(Proc {
            what: what.to_string(),
            child,
            log: PathBuf::new(),
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status, once it has exited.
    pub fn exited(&mut self) -> Option<String> {
        self.status().map(|status| match status {
            Ok(status) => status.to_string(),
            Err(e) => e,
        })
    }

    /// Its exit status, once it has exited.
    pub fn status(&mut self) -> Option<Result<std::process::ExitStatus, String>> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(Ok(status)),
            Ok(None) => None,
            Err(e) => Some(Err(e.to_string())),
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Polls `ready` until it holds, failing when the process exits first, on `request_stop`,
    /// or after `READY_WITHIN`.
    pub fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) -> Result<(), Failure> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.exited() {
                return Err(Failure::Exited {
                    what: self.what.clone(),
                    status,
                    log: self.log(),
                });
            }
            if ready() {
                return Ok(());
            }
            if stopping() {
                return Err(Failure::Stopped);
            }
            if Instant::now() >= deadline {
                return Err(Failure::Timeout(format!(
                    "{} not ready within {}s: {}",
                    self.what,
                    READY_WITHIN.as_secs(),
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until something accepts connections on `port`.
    pub fn wait_listening(&mut self, port: u16) -> Result<(), Failure> {
        self.wait_ready(|| TcpStream::connect(("127.0.0.1", port)).is_ok())
    }

    /// Sends `signal` (a libc signal number).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of a child not yet waited for.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn terminate(&mut self, grace: Duration) {
        if self.exited().is_none() {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + grace;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The programs a stack runs.
#[derive(Clone)]
pub struct Bins {
    pub envoy: PathBuf,
    pub emulator: PathBuf,
    pub wasm: PathBuf,
}

/// The emulator or the echo upstream: started here (on `port`, else a free one), or one
/// already running on a port.
#[derive(Clone, Copy)]
pub enum Side {
    Start {
        port: Option<u16>,
        threads: Option<u32>,
    },
    Running(u16),
}

/// How Envoy runs.
#[derive(Clone)]
pub struct EnvoyRun {
    pub concurrency: u32,
    /// `-l`.
    pub log_level: String,
    /// `--component-log-level`, if any.
    pub component_log_level: Option<String>,
    /// Pinned to these CPUs (`taskset -c`), if any.
    pub cpus: Option<String>,
}

impl Default for EnvoyRun {
    fn default() -> Self {
        EnvoyRun {
            concurrency: 2,
            log_level: "warning".into(),
            component_log_level: None,
            cpus: None,
        }
    }
}

/// The configuration Envoy runs.
pub enum EnvoyConfig<'a> {
    /// envoy/envoy.template.yaml (render.rs) with the filter configuration `filter` makes.
    Template(Shape),
    /// What a function renders from the ports and the filter configuration.
    Rendered(Render<'a>),
    /// A file already rendered for the ports given.
    File(PathBuf),
}

/// The filter configuration of a stack: envoy/filter-config.json for its ports, then changes.
#[derive(Clone, Default)]
pub struct FilterPlan {
    /// `make run`'s (`FilterConfig::local_run`) rather than the file's own defaults.
    pub local_run: bool,
    /// Top-level members over it (`FilterConfig::merge`), in turn: JSON objects whose
    /// `{{AUTH0_PORT}}` and `{{LISTEN_PORT}}` are filled in first.
    pub overrides: Vec<String>,
    /// Text replaced in its values, after the overrides.
    pub replace: Vec<(String, String)>,
}

pub struct EnvoyPlan<'a> {
    pub listen: Option<u16>,
    pub admin: Option<u16>,
    /// Where the `webdis` cluster points (a port nothing answers on when Redis is not used).
    pub webdis: u16,
    pub filter: FilterPlan,
    pub config: EnvoyConfig<'a>,
    pub run: EnvoyRun,
}

pub struct Plan<'a> {
    /// Logs and rendered files. `fresh_dir`: emptied first.
    pub dir: PathBuf,
    pub fresh_dir: bool,
    /// The processes write to this process's output (`make run`) rather than to log files.
    pub log_here: bool,
    pub bins: Bins,
    pub emulator: Side,
    pub tenant: PathBuf,
    pub key_file: PathBuf,
    pub echo: Side,
    /// Without one, only the emulator and the echo upstream.
    pub envoy: Option<EnvoyPlan<'a>>,
}

/// What `launch` started, and where.
pub struct Launched {
    pub listen: u16,
    pub admin: u16,
    pub auth0: u16,
    pub upstream: u16,
    pub envoy_config: Option<PathBuf>,
    /// Fields drop in order: Envoy first, then what it reaches.
    pub envoy: Option<Proc>,
    pub echo: Option<Proc>,
    pub emulator: Option<Proc>,
}

/// Starts what `plan` says once (the emulator and the echo upstream, then Envoy once they
/// listen, so the filter's first JWKS fetch finds the emulator); on a failure stops what it
/// started.
pub fn launch(plan: &Plan) -> Result<Launched, Failure> {
    let dir = &plan.dir;
    if plan.fresh_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::fs::create_dir_all(dir).map_err(|e| Failure::Other(format!("{}: {e}", dir.display())))?;
    let pick = |side: Side| match side {
        Side::Start { port, .. } => port.unwrap_or_else(free_port),
        Side::Running(port) => port,
    };
    let (auth0, upstream) = (pick(plan.emulator), pick(plan.echo));
    let spawn = |what: &str, command: &mut Command, log: &str| match plan.log_here {
        true => Proc::start(what, command.stdin(Stdio::null())),
        false => Proc::spawn(what, command, &dir.join(log)),
    };
    let mut emulator = match plan.emulator {
        Side::Start { threads, .. } => {
            let mut command = Command::new(&plan.bins.emulator);
            command
                .args(["serve", "--port", &auth0.to_string()])
                .args(
                    threads
                        .map(|t| ["--threads".to_string(), t.to_string()])
                        .iter()
                        .flatten(),
                )
                .arg("--tenant")
                .arg(&plan.tenant)
                .arg("--key-file")
                .arg(&plan.key_file)
                .current_dir(repo());
            Some(Proc::spawn(
                "the emulator",
                &mut command,
                &dir.join("emulator.log"),
            )?)
        }
        Side::Running(_) => None,
    };
    let mut echo = match plan.echo {
        Side::Start { threads, .. } => {
            let mut command = Command::new(&plan.bins.emulator);
            command
                .args(["echo", "--port", &upstream.to_string()])
                .args(
                    threads
                        .map(|t| ["--threads".to_string(), t.to_string()])
                        .iter()
                        .flatten(),
                )
                .current_dir(repo());
            Some(Proc::spawn(
                "the echo upstream",
                &mut command,
                &dir.join("echo.log"),
            )?)
        }
        Side::Running(_) => None,
    };
    if let Some(proc) = emulator.as_mut() {
        proc.wait_listening(auth0)?;
    }
    if let Some(proc) = echo.as_mut() {
        proc.wait_listening(upstream)?;
    }
    let mut launched = Launched {
        listen: 0,
        admin: 0,
        auth0,
        upstream,
        envoy_config: None,
        envoy: None,
        echo,
        emulator,
    };
    let Some(envoy) = &plan.envoy else {
        return Ok(launched);
    };
    let (listen, admin) = (
        envoy.listen.unwrap_or_else(free_port),
        envoy.admin.unwrap_or_else(free_port),
    );
    let ports = Ports {
        listen,
        admin,
        auth0,
        upstream,
        webdis: envoy.webdis,
        wasm: plan.bins.wasm.clone(),
        dir: dir.clone(),
    };
    let filter = || filter_config(&envoy.filter, auth0, listen).map_err(Failure::Other);
    let text = match &envoy.config {
        EnvoyConfig::File(_) => None,
        EnvoyConfig::Template(shape) => {
            Some(render(&ports, &filter()?, shape).map_err(Failure::Other)?)
        }
        EnvoyConfig::Rendered(render) => Some(render(&ports, &filter()?)),
    };
    let yaml_path = match (&envoy.config, text) {
        (EnvoyConfig::File(path), _) => path.clone(),
        (_, text) => {
            let path = dir.join("envoy.yaml");
            std::fs::write(&path, text.unwrap_or_default())
                .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
            path
        }
    };
    let mut command = match &envoy.run.cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.args(["-c", cpus]).arg(&plan.bins.envoy);
            command
        }
        None => Command::new(&plan.bins.envoy),
    };
    command
        .arg("-c")
        .arg(&yaml_path)
        .args(["--concurrency", &envoy.run.concurrency.to_string()])
        .arg("--disable-hot-restart")
        .args(["-l", &envoy.run.log_level])
        .args(
            envoy
                .run
                .component_log_level
                .iter()
                .flat_map(|level| ["--component-log-level", level]),
        )
        .current_dir(repo());
    // Envoy's --log-path file is flushed only every few seconds; stderr line by line.
    let mut proc = spawn("Envoy", &mut command, "envoy.log")?;
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(1))
        .build();
    proc.wait_ready(|| {
        agent
            .get(&format!("http://127.0.0.1:{admin}/ready"))
            .call()
            .is_ok()
            && TcpStream::connect(("127.0.0.1", listen)).is_ok()
    })?;
    launched.listen = listen;
    launched.admin = admin;
    launched.envoy_config = Some(yaml_path);
    launched.envoy = Some(proc);
    Ok(launched)
}

/// `launch` of the plan `plan` makes, made and launched again (at most three times in all)
/// while another process takes one of its free ports first.
pub fn launch_retrying<'a>(
    mut plan: impl FnMut() -> Result<Plan<'a>, Failure>,
) -> Result<Launched, Failure> {
    let mut attempt = 1;
    loop {
        match launch(&plan()?) {
            Err(failure) if failure.port_taken() && attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

/// The filter configuration `plan` describes for a tenant on `auth0` and a gateway on
/// `listen`.
pub fn filter_config(plan: &FilterPlan, auth0: u16, listen: u16) -> Result<FilterConfig, String> {
    let (auth0, listen) = (auth0.to_string(), listen.to_string());
    let mut config = if plan.local_run {
        FilterConfig::local_run(&auth0, &listen, false)?
    } else {
        FilterConfig::shipped(&auth0, &listen, false)?
    };
    for overrides in &plan.overrides {
        config.merge(
            &overrides
                .replace("{{AUTH0_PORT}}", &auth0)
                .replace("{{LISTEN_PORT}}", &listen),
        )?;
    }
    for (from, to) in &plan.replace {
        config.replace(from, to);
    }
    Ok(config)
}
