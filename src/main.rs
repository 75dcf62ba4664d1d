//! The tidemark server binary: parses the command line (redis-server style), sets up
//! logging, checks that io_uring works, creates `dir`, then runs one shard per thread, each
//! on its own compio io_uring runtime, until a signal or a shard failure.
//!
//! What can fail here, and the exit code: a bad flag, value or config file (2, before
//! anything touches the data directory); an unopenable log file, no io_uring, an
//! uncreatable `dir`, or a shard that refuses to start, fails or panics (1, with the
//! reason logged and printed to stderr). SIGINT/SIGTERM exit 0 immediately: there is no
//! graceful AOF flush yet (under `appendfsync always` acknowledged writes are already
//! durable; under `everysec` up to the last second may be lost, as after a crash).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::Write;
use std::sync::mpsc;
use std::sync::Arc;

use tidemark::io::uring::{build_runtime, driver_kind, probe_io_uring, reserve_free_port, UringIo};
use tidemark::server::cli::{self, CliError};
use tidemark::server::config::Config;
use tidemark::server::{run_shard, Node};

/// Exclusive-bind attempts before "port in use" is an error, and the pause between them.
const PORT_PROBE_ATTEMPTS_MAX: u32 = 40;
const PORT_PROBE_RETRY_MS: u64 = 50;

/// What the main thread waits for.
enum Event {
    /// SIGINT or SIGTERM arrived (the signal number).
    Signal(i32),
    /// Shard `id` returned `Ok` (its listener stopped).
    ShardStopped(u16),
    /// Shard `id` refused to start, failed, or panicked.
    ShardFailed(u16, String),
}

fn main() {
    // `tidemark check-aof DIR [--fix]` (src/persist/check.rs), before the server's flags.
    let raw: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if raw.get(1).map(String::as_str) == Some("check-aof") {
        std::process::exit(check_aof_command(&raw[2..]));
    }
    // Before any thread exists (compio's blocking pool included), so that every thread
    // inherits the mask and only the signal thread's sigwait sees SIGINT/SIGTERM.
    let signals = block_exit_signals();
    let args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let mut config = match cli::parse_args(args, |path| std::fs::read_to_string(path)) {
        Ok(config) => config,
        Err(CliError::Info(text)) => {
            print!("{text}");
            let _ = std::io::stdout().flush();
            std::process::exit(0);
        }
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(err.exit_code());
        }
    };
    if let Err(msg) = init_logging(&config) {
        eprintln!("tidemark: {msg}");
        std::process::exit(1);
    }
    // `port 0`: pick the free port once, so that every shard binds the same one.
    let port_reservation = if config.port == 0 {
        match reserve_free_port(&config.bind) {
            Ok(reservation) => {
                config.port = reservation.port;
                Some(reservation)
            }
            Err(e) => fail(&format!("cannot pick a free port on {}: {e}", config.bind)),
        }
    } else {
        None
    };
    log_banner(&config);
    match probe_io_uring() {
        Ok("io_uring") => tracing::info!("io driver check: io_uring is working"),
        Ok(other) => tracing::warn!(
            driver = other,
            "io driver check: NOT io_uring; running on a fallback driver"
        ),
        Err(reason) => fail(&format!("io driver check failed: {reason}")),
    }
    if let Err(e) = std::fs::create_dir_all(&config.dir) {
        fail(&format!(
            "cannot create dir '{}': {e}",
            config.dir.display()
        ));
    }
    if port_reservation.is_none() {
        // Every shard binds with SO_REUSEPORT, which would silently share a port another
        // process (also using SO_REUSEPORT) already listens on. An exclusive bind first
        // makes "port in use" an error, as with redis-server.
        // A previous instance killed a moment ago may still hold the port while the kernel
        // tears down its io_uring (pending accepts keep the socket open), so retry briefly.
        let mut attempts = 0;
        while let Err(e) = std::net::TcpListener::bind(config.listen_addr()) {
            attempts += 1;
            if attempts >= PORT_PROBE_ATTEMPTS_MAX {
                fail(&format!(
                    "Could not create server TCP listening socket {}: {e}",
                    config.listen_addr()
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(PORT_PROBE_RETRY_MS));
        }
    }
    let code = serve(config, signals);
    std::process::exit(code);
}

/// Logs `msg` as an error, prints it to stderr, and exits 1.
/// `check-aof DIR [--fix]`: prints one line per file, returns the exit code (0 all OK or
/// fixed, 1 otherwise, 2 usage).
fn check_aof_command(args: &[String]) -> i32 {
    let fix = args.iter().any(|a| a == "--fix");
    let dirs: Vec<&String> = args.iter().filter(|a| *a != "--fix").collect();
    let [dir] = dirs.as_slice() else {
        eprintln!("usage: tidemark check-aof DIR [--fix]   (DIR is the AOF directory, e.g. ./appendonlydir)");
        return 2;
    };
    let runtime = match build_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tidemark check-aof: cannot create an io_uring runtime: {e}");
            return 1;
        }
    };
    let io = UringIo::new(0);
    let path = std::path::PathBuf::from(dir.as_str());
    let report = runtime.block_on(tidemark::persist::check::check_aof(&io, &path, fix));
    for line in &report.lines {
        println!("{line}");
    }
    println!(
        "{}",
        if report.ok {
            "AOF is valid"
        } else {
            "AOF is NOT valid"
        }
    );
    i32::from(!report.ok)
}

fn fail(msg: &str) -> ! {
    tracing::error!("{msg}");
    eprintln!("tidemark: {msg}");
    std::process::exit(1);
}

/// Maps Redis `loglevel` names to a tracing filter (`RUST_LOG` overrides it).
fn log_filter(loglevel: &str) -> &'static str {
    match loglevel {
        "debug" => "trace",
        "verbose" => "debug",
        "warning" => "warn",
        _ => "info",
    }
}

fn init_logging(config: &Config) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(log_filter(&config.loglevel)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true);
    let result = if config.logfile.is_empty() {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        builder
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .try_init()
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.logfile)
            .map_err(|e| format!("can't open the log file '{}': {e}", config.logfile))?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init()
    };
    result.map_err(|e| format!("cannot initialise logging: {e}"))
}

fn log_banner(config: &Config) {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        bind = %config.bind,
        port = config.port,
        shards = config.shards,
        appendonly = if config.appendonly { "yes" } else { "no" },
        appendfsync = config.appendfsync.as_str(),
        dir = %config.dir.display(),
        "tidemark starting"
    );
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread spawned after),
/// so that only the signal thread's `sigwait` receives them. A signal that arrives during
/// start-up stays pending and is taken by that `sigwait` (exit 0) once serving begins.
fn block_exit_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the libc calls only read/write this local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        assert_eq!(rc, 0, "pthread_sigmask failed");
        set
    }
}

fn spawn_signal_thread(set: libc::sigset_t, events: mpsc::Sender<Event>) {
    let spawned = std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` is an initialised sigset_t; `signal` is a live out-parameter.
            if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
                let _ = events.send(Event::Signal(signal));
                return;
            }
        });
    if let Err(e) = spawned {
        fail(&format!("cannot start the signal thread: {e}"));
    }
}

fn spawn_shard(node: Arc<Node>, shard_id: u16, events: mpsc::Sender<Event>) {
    let spawned = std::thread::Builder::new()
        .name(format!("shard-{shard_id}"))
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_shard_thread(node, shard_id)
            }));
            let event = match outcome {
                Ok(Ok(())) => Event::ShardStopped(shard_id),
                Ok(Err(msg)) => Event::ShardFailed(shard_id, msg),
                Err(_) => Event::ShardFailed(shard_id, "panicked".to_string()),
            };
            let _ = events.send(event);
        });
    if let Err(e) = spawned {
        fail(&format!("cannot start the thread of shard {shard_id}: {e}"));
    }
}

/// The body of one shard thread: its own io_uring runtime running `run_shard`.
fn run_shard_thread(node: Arc<Node>, shard_id: u16) -> Result<(), String> {
    let runtime =
        build_runtime().map_err(|e| format!("cannot create its io_uring runtime: {e}"))?;
    let driver = driver_kind(&runtime);
    if driver == "io_uring" {
        tracing::debug!(shard_id, driver, "shard runtime ready");
    } else {
        tracing::warn!(shard_id, driver, "shard runtime is NOT on io_uring");
    }
    let io = UringIo::new(shard_id);
    runtime
        .block_on(run_shard(io, node, shard_id))
        .map_err(|e| e.to_string())
}

/// Starts the shards and waits; returns the process exit code.
fn serve(config: Config, signals: libc::sigset_t) -> i32 {
    let shards = config.shards;
    let node = Node::new(config);
    let (events_tx, events) = mpsc::channel();
    spawn_signal_thread(signals, events_tx.clone());
    for shard_id in 0..shards {
        spawn_shard(node.clone(), shard_id, events_tx.clone());
    }
    drop(events_tx);
    let mut stopped = 0u16;
    while let Ok(event) = events.recv() {
        match event {
            Event::Signal(signal) => {
                let name = if signal == libc::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                tracing::info!(
                    signal = name,
                    "received {name}; exiting (no graceful AOF flush yet)"
                );
                return 0;
            }
            Event::ShardFailed(shard_id, msg) => {
                let msg = format!("shard {shard_id} failed: {msg}");
                tracing::error!("{msg}; exiting");
                eprintln!("tidemark: {msg}");
                return 1;
            }
            Event::ShardStopped(shard_id) => {
                tracing::warn!(shard_id, "shard stopped");
                stopped += 1;
                if stopped == shards {
                    tracing::info!("every shard stopped; exiting");
                    return 0;
                }
            }
        }
    }
    1
}
