//! `auth0-stack`: the test harness's Envoy-config renderer and stack launcher as a command, so
//! `make run`, `make validate-envoy`, `make compose-config`, the curl tour, the api-check, the
//! browser test and the bench render and start exactly what the integration tests do.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use harness::launch::{
    self, Bins, EnvoyConfig, EnvoyPlan, EnvoyRun, Failure, FilterPlan, Launched, Plan, Proc, Side,
};
use harness::render::{render, FilterConfig, Ports, Shape};
use harness::{free_port, repo, Redis};
use serde_json::{json, Value};

const USAGE: &str = "\
usage:
  auth0-stack render [--hold] [--compose] LISTEN ADMIN AUTH0 UPSTREAM WASM
      Prints envoy/envoy.template.yaml as `make run` runs it: filter-config.json with the
      `website` client as the default client. --hold: the hold mode (bodyReading: holdFilter,
      the hold instance after the filter). --compose: for docker-compose.yml (Envoy on
      0.0.0.0, the emulator and the upstream by service name, the tenant at localhost:AUTH0).
  auth0-stack filter-config AUTH0 LISTEN
      Prints envoy/filter-config.json for a tenant on AUTH0 and a gateway on LISTEN (its own
      defaults: what the tests give a control plane's translation).
  auth0-stack ports N
      Prints N free 127.0.0.1 ports.
  auth0-stack up [OPTIONS] [-- COMMAND [ARGS...]]
      Starts the Auth0 emulator, the echo upstream and Envoy with the filter (as `render`
      renders it) on 127.0.0.1, each ready before the next. Then, without COMMAND: prints one
      JSON line {base, listen, admin, auth0, upstream, webdis, dir, envoy_config, pids} and
      runs until its standard input closes or SIGINT/SIGTERM/SIGHUP; with COMMAND: runs it with
      AUTH0_STACK_JSON (that line), LISTEN_PORT, ADMIN_PORT, AUTH0_PORT, UPSTREAM_PORT (and
      WEBDIS_PORT) in its environment, until it exits (its status is this one's). Then stops
      everything. Every wait is bounded; what it started dies with it even on SIGKILL.
    --dir DIR                    logs, rendered files, the emulator key (default
                                 target/stack/PID)
    --log-here                   the processes write to this one's output, not to DIR/*.log
    --envoy BIN --emulator BIN --wasm FILE
                                 default: $ENVOY_BIN, $EMULATOR_BIN, $WASM_PATH, else .venv/bin/envoy,
                                 target/release/auth0-emulator, target/wasm/auth0_filter.wasm
    --listen-port P --admin-port P --auth0-port P --upstream-port P
                                 fixed ports (default: free ones)
    --use-auth0 P --use-upstream P
                                 an emulator / echo upstream already running on P
    --no-envoy                   only the emulator and the echo upstream
    --envoy-config FILE          run FILE, rendered for --listen-port and --admin-port
    --body hold                  the hold mode
    --store redis                sessions in redis-server through Webdis, both started here
    --config-json JSON           top-level members over the filter configuration (null removes
                                 one; {{AUTH0_PORT}} and {{LISTEN_PORT}} are filled in)
    --site-at-listen-port        the sample site's http://localhost:8080 (tenant callbacks,
                                 clients' redirect URLs) moved to the listen port
    --envoy-concurrency N (2)    --envoy-cpus LIST (taskset -c)
    --log-level L (warning)      --component-log-level SPEC
    --emulator-threads N         --echo-threads N
    --tenant FILE (emulator/tenant.json)   --key-file FILE (DIR/emulator-key.pem)";

/// What `up` was asked for.
#[derive(Default)]
struct Up {
    dir: Option<PathBuf>,
    envoy: Option<PathBuf>,
    emulator: Option<PathBuf>,
    wasm: Option<PathBuf>,
    listen: Option<u16>,
    admin: Option<u16>,
    auth0: Option<u16>,
    upstream: Option<u16>,
    use_auth0: Option<u16>,
    use_upstream: Option<u16>,
    no_envoy: bool,
    log_here: bool,
    envoy_config: Option<PathBuf>,
    hold: bool,
    redis: bool,
    config_json: Vec<String>,
    site_at_listen_port: bool,
    run: EnvoyRun,
    emulator_threads: Option<u32>,
    echo_threads: Option<u32>,
    tenant: Option<PathBuf>,
    key_file: Option<PathBuf>,
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("render") => render_command(rest),
        Some("filter-config") => filter_config_command(rest),
        Some("ports") => ports_command(rest),
        Some("up") => parse_up(rest).and_then(up),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(0)
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("auth0-stack: {message}");
            ExitCode::from(1)
        }
    }
}

fn port(text: &str) -> Result<u16, String> {
    text.parse().map_err(|_| format!("not a port: {text}"))
}

fn render_command(args: &[String]) -> Result<u8, String> {
    let hold = args.iter().any(|a| a == "--hold");
    let compose = args.iter().any(|a| a == "--compose");
    let positional: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--hold" && *a != "--compose")
        .collect();
    let [listen, admin, auth0, upstream, wasm] = positional[..] else {
        return Err(USAGE.to_string());
    };
    let config = FilterConfig::local_run(auth0, listen, compose)?;
    let ports = Ports {
        listen: port(listen)?,
        admin: port(admin)?,
        auth0: port(auth0)?,
        upstream: port(upstream)?,
        // Webdis's own default port, for a `sessionStore` of backend `redis`.
        webdis: 7379,
        wasm: PathBuf::from(wasm),
        dir: PathBuf::from("."),
    };
    let shape = Shape {
        hold,
        compose,
        prefix: String::new(),
    };
    let text = render(&ports, &config, &shape)?;
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(0)
}

fn filter_config_command(args: &[String]) -> Result<u8, String> {
    let [auth0, listen] = args else {
        return Err(USAGE.to_string());
    };
    println!("{}", FilterConfig::shipped(auth0, listen, false)?.json());
    Ok(0)
}

fn ports_command(args: &[String]) -> Result<u8, String> {
    let [count] = args else {
        return Err(USAGE.to_string());
    };
    let count: usize = count.parse().map_err(|_| USAGE.to_string())?;
    let ports: Vec<String> = (0..count).map(|_| free_port().to_string()).collect();
    println!("{}", ports.join(" "));
    Ok(0)
}

fn absolute(path: &str) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{path}: {e}"))
}

fn parse_up(args: &[String]) -> Result<Up, String> {
    let mut up = Up::default();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--" {
            up.command = args.cloned().collect();
            break;
        }
        let switch = match flag.as_str() {
            "--no-envoy" => Some(&mut up.no_envoy),
            "--site-at-listen-port" => Some(&mut up.site_at_listen_port),
            "--log-here" => Some(&mut up.log_here),
            _ => None,
        };
        if let Some(switch) = switch {
            *switch = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || -> Result<u32, String> {
            value
                .parse()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--dir" => up.dir = Some(absolute(value)?),
            "--envoy" => up.envoy = Some(absolute(value)?),
            "--emulator" => up.emulator = Some(absolute(value)?),
            "--wasm" => up.wasm = Some(absolute(value)?),
            "--listen-port" => up.listen = Some(port(value)?),
            "--admin-port" => up.admin = Some(port(value)?),
            "--auth0-port" => up.auth0 = Some(port(value)?),
            "--upstream-port" => up.upstream = Some(port(value)?),
            "--use-auth0" => up.use_auth0 = Some(port(value)?),
            "--use-upstream" => up.use_upstream = Some(port(value)?),
            "--envoy-config" => up.envoy_config = Some(absolute(value)?),
            "--body" if value == "hold" => up.hold = true,
            "--body" if value == "flag" => up.hold = false,
            "--store" if value == "redis" => up.redis = true,
            "--store" if value == "shared" => up.redis = false,
            "--config-json" => up.config_json.push(value.clone()),
            "--envoy-concurrency" => up.run.concurrency = number()?,
            "--envoy-cpus" => up.run.cpus = Some(value.clone()),
            "--log-level" => up.run.log_level = value.clone(),
            "--component-log-level" => up.run.component_log_level = Some(value.clone()),
            "--emulator-threads" => up.emulator_threads = Some(number()?),
            "--echo-threads" => up.echo_threads = Some(number()?),
            "--tenant" => up.tenant = Some(absolute(value)?),
            "--key-file" => up.key_file = Some(absolute(value)?),
            _ => return Err(format!("unknown option {flag} {value}\n{USAGE}")),
        }
    }
    if up.envoy_config.is_some() && (up.listen.is_none() || up.admin.is_none()) {
        return Err("--envoy-config needs --listen-port and --admin-port".into());
    }
    Ok(up)
}

/// `flag`, else the environment variable, else the repository's default; it must exist.
fn program(flag: &Option<PathBuf>, variable: &str, default: &str) -> Result<PathBuf, String> {
    let path = match (flag, std::env::var_os(variable)) {
        (Some(path), _) => path.clone(),
        (None, Some(value)) => PathBuf::from(value),
        (None, None) => repo().join(default),
    };
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} does not exist: run `make build`",
            path.display()
        ))
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    launch::request_stop();
}

/// SIGINT, SIGTERM and SIGHUP stop the stack; so does the end of standard input when no
/// command runs (whoever started `up` is gone or done with it).
fn stop_on_signals_and(watch_stdin: bool) {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(signal, handler as libc::sighandler_t);
        }
    }
    if watch_stdin {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            launch::request_stop();
        });
    }
}

/// What `up` started.
struct Stack {
    launched: Launched,
    redis: Option<Redis>,
    dir: PathBuf,
}

impl Stack {
    fn report(&self) -> Value {
        let launched = &self.launched;
        let envoy = launched.envoy.as_ref();
        let mut pids = serde_json::Map::new();
        for (name, proc) in [
            ("envoy", envoy),
            ("emulator", launched.emulator.as_ref()),
            ("echo", launched.echo.as_ref()),
        ] {
            if let Some(proc) = proc {
                pids.insert(name.into(), proc.id().into());
            }
        }
        if let Some(redis) = &self.redis {
            let (redis_pid, webdis_pid) = redis.pids();
            pids.insert("redis".into(), json!(redis_pid));
            pids.insert("webdis".into(), json!(webdis_pid));
        }
        let listen = envoy.map(|_| launched.listen);
        json!({
            "base": listen.map(|port| format!("http://127.0.0.1:{port}")),
            "listen": listen,
            "admin": envoy.map(|_| launched.admin),
            "auth0": launched.auth0,
            "upstream": launched.upstream,
            "webdis": self.redis.as_ref().map(|redis| redis.webdis_port),
            "dir": self.dir,
            "envoy_config": launched.envoy_config,
            "pids": pids,
        })
    }

    /// The first of its processes that has exited, as a message.
    fn exited(&mut self) -> Option<String> {
        let launched = &mut self.launched;
        for proc in [
            launched.envoy.as_mut(),
            launched.echo.as_mut(),
            launched.emulator.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(status) = proc.exited() {
                let log = proc.log_path();
                return Some(match log.as_os_str().is_empty() {
                    true => format!("{} exited ({status})", proc.what()),
                    false => format!(
                        "{} exited ({status}); its log: {}",
                        proc.what(),
                        log.display()
                    ),
                });
            }
        }
        self.redis.as_mut().and_then(Redis::exited)
    }

    /// Envoy first, then what it reaches.
    fn stop(mut self) {
        let grace = Duration::from_secs(5);
        let launched = &mut self.launched;
        for proc in [
            launched.envoy.as_mut(),
            launched.echo.as_mut(),
            launched.emulator.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            proc.terminate(grace);
        }
        drop(self.redis.take());
    }
}

fn up(options: Up) -> Result<u8, String> {
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => repo()
            .join("target/stack")
            .join(std::process::id().to_string()),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    launch::die_with_launcher();
    stop_on_signals_and(options.command.is_empty());
    let bins = Bins {
        envoy: program(&options.envoy, "ENVOY_BIN", ".venv/bin/envoy")?,
        emulator: program(
            &options.emulator,
            "EMULATOR_BIN",
            "target/release/auth0-emulator",
        )?,
        wasm: program(&options.wasm, "WASM_PATH", "target/wasm/auth0_filter.wasm")?,
    };
    let redis = match options.redis {
        true => Some(Redis::start_in(dir.join("redis"))?),
        false => None,
    };
    let launched = start(&options, &dir, bins, redis.as_ref()).map_err(|f| f.to_string())?;
    let mut stack = Stack {
        launched,
        redis,
        dir,
    };
    let report = stack.report().to_string();
    let code = if options.command.is_empty() {
        let mut stdout = std::io::stdout();
        // A reader that went away is not waited for: the stack stops when stdin closes.
        let _ = writeln!(stdout, "{report}").and_then(|()| stdout.flush());
        supervise(&mut stack, None)
    } else {
        let launched = &stack.launched;
        let mut command = Command::new(&options.command[0]);
        command
            .args(&options.command[1..])
            .env("AUTH0_STACK_JSON", &report)
            .env("LISTEN_PORT", launched.listen.to_string())
            .env("ADMIN_PORT", launched.admin.to_string())
            .env("AUTH0_PORT", launched.auth0.to_string())
            .env("UPSTREAM_PORT", launched.upstream.to_string());
        if let Some(redis) = &stack.redis {
            command.env("WEBDIS_PORT", redis.webdis_port.to_string());
        }
        match Proc::start(&options.command[0], &mut command) {
            Ok(proc) => supervise(&mut stack, Some(proc)),
            Err(failure) => {
                eprintln!("auth0-stack: {failure}");
                1
            }
        }
    };
    stack.stop();
    Ok(code)
}

/// Starts the stack (`launch_retrying`: again on new free ports while another process takes one
/// first).
fn start(options: &Up, dir: &Path, bins: Bins, redis: Option<&Redis>) -> Result<Launched, Failure> {
    launch::launch_retrying(|| {
        // The listen port is chosen first when the tenant's site URLs follow it.
        let listen = match options.site_at_listen_port {
            true => Some(options.listen.unwrap_or_else(free_port)),
            false => options.listen,
        };
        let mut filter = FilterPlan {
            local_run: true,
            overrides: options.config_json.clone(),
            replace: vec![],
        };
        let mut tenant = options
            .tenant
            .clone()
            .unwrap_or_else(|| repo().join("emulator/tenant.json"));
        if let Some(listen) = listen.filter(|_| options.site_at_listen_port) {
            let site = format!("localhost:{listen}");
            let text = std::fs::read_to_string(&tenant)
                .map_err(|e| Failure::Other(format!("{}: {e}", tenant.display())))?;
            tenant = dir.join("tenant.json");
            std::fs::write(&tenant, text.replace("localhost:8080", &site))
                .map_err(|e| Failure::Other(format!("{}: {e}", tenant.display())))?;
            filter.replace.push(("localhost:8080".into(), site));
        }
        if let Some(redis) = redis {
            let store = json!({ "sessionStore": redis.store_config("auth0-stack:") });
            filter.overrides.push(store.to_string());
        }
        let side = |running: Option<u16>, port: Option<u16>, threads: Option<u32>| match running {
            Some(port) => Side::Running(port),
            None => Side::Start { port, threads },
        };
        let envoy = (!options.no_envoy).then(|| EnvoyPlan {
            listen,
            admin: options.admin,
            webdis: redis.map_or(7379, |redis| redis.webdis_port),
            filter,
            config: match &options.envoy_config {
                Some(path) => EnvoyConfig::File(path.clone()),
                None => EnvoyConfig::Template(Shape {
                    hold: options.hold,
                    compose: false,
                    prefix: String::new(),
                }),
            },
            run: options.run.clone(),
        });
        Ok(Plan {
            dir: dir.to_path_buf(),
            fresh_dir: false,
            log_here: options.log_here,
            bins: bins.clone(),
            emulator: side(options.use_auth0, options.auth0, options.emulator_threads),
            tenant,
            key_file: options
                .key_file
                .clone()
                .unwrap_or_else(|| dir.join("emulator-key.pem")),
            echo: side(options.use_upstream, options.upstream, options.echo_threads),
            envoy,
        })
    })
}

/// Waits for the end: a stop request, the command's exit, or a process of the stack exiting
/// (reported). Returns the exit code.
fn supervise(stack: &mut Stack, mut command: Option<Proc>) -> u8 {
    loop {
        if let Some(proc) = command.as_mut() {
            if let Some(status) = proc.status() {
                return match status {
                    Ok(status) => match (status.code(), status.signal()) {
                        (Some(code), _) => u8::try_from(code).unwrap_or(1),
                        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
                        (None, None) => 1,
                    },
                    Err(_) => 1,
                };
            }
        }
        if launch::stopping() {
            if let Some(mut proc) = command.take() {
                proc.terminate(Duration::from_secs(5));
            }
            return 0;
        }
        if let Some(message) = stack.exited() {
            eprintln!("auth0-stack: {message}");
            if let Some(mut proc) = command.take() {
                proc.terminate(Duration::from_secs(5));
            }
            return 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
