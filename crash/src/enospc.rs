//! The ENOSPC check: the real binary with its data dir on a small filesystem (mounted by
//! `scripts/enospc.sh`), the filesystem filled to ENOSPC while a client writes.
//!
//! Steps and what each must show:
//! 1. start the server on `--dir`, SET `enospc:<i>` keys (all acknowledged);
//! 2. fill the filesystem with `--dir/filler` until `write(2)` fails, keep SETting: a write
//!    must get `MISCONF Errors writing to the AOF file: No space left on device`; later
//!    writes keep getting MISCONF, reads (GET, MGET of every acknowledged key) keep working,
//!    `INFO persistence` shows `aof_last_write_status:err` and the cause;
//! 3. delete the filler: within `RECOVERY_TIMEOUT_MS`, without a restart, a SET is accepted
//!    again and `aof_last_write_status:ok`; more SETs are acknowledged;
//!    BGREWRITEAOF on the full disk must fail (refused, or `aof_last_bgrewrite_status:err`),
//!    one after recovery must succeed;
//! 4. every acknowledged SET is present; SETs answered with an error are *uncertain* (may
//!    be present, then with their value); no other `enospc:` key exists;
//! 5. SIGKILL, restart on the same dir, step 4 again.
//!
//! What can fail here: any of the checks above (exit 1), or the setup (exit 2: the binary,
//! the dir, a filesystem that never fills).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use crate::client::{Connection, Reply};
use crate::matrix::info_field;
use crate::{free_port, start, Failure, Options};

/// Longest wait for writes to be accepted again after space is freed, in ms.
const RECOVERY_TIMEOUT_MS: u64 = 15_000;
/// Longest time SETs are tried on the full filesystem before it counts as never failing.
const FAIL_TIMEOUT_MS: u64 = 20_000;
/// Size of each chunk written to the filler file, in bytes.
const FILLER_CHUNK_BYTES: usize = 64 * 1024;
/// Consecutive MISCONF replies that show every shard refuses writes.
const REFUSED_IN_A_ROW: u32 = 20;
/// SETs acknowledged before filling, and after recovery.
const PHASE_SETS: u64 = 2000;

/// `tidemark-crash enospc` options.
#[derive(Args, Debug, Clone)]
pub struct EnospcOptions {
    /// Path of the tidemark binary.
    #[arg(long, default_value = "target/release/tidemark")]
    pub binary: PathBuf,
    /// Data dir, on a small filesystem of its own (it gets filled up!).
    #[arg(long)]
    pub dir: PathBuf,
    /// Shards of the server.
    #[arg(long, default_value_t = 2)]
    pub shards: u16,
    /// appendfsync policy: always or everysec.
    #[arg(long, default_value = "always")]
    pub appendfsync: String,
}

/// What the client saw, per key: `Some(value)` acknowledged, `None` uncertain (error).
struct Writes {
    acked: BTreeMap<String, String>,
    uncertain: BTreeMap<String, String>,
    next: u64,
}

impl Writes {
    /// SETs the next key; `Ok(None)` if acknowledged, `Ok(Some(error))` if refused.
    fn set(&mut self, con: &mut Connection) -> Result<Option<String>, Failure> {
        let key = format!("enospc:{}", self.next);
        let value = format!("v{}", self.next);
        self.next += 1;
        match con.call(&[b"SET", key.as_bytes(), value.as_bytes()]) {
            Ok(Reply::Simple(ok)) if ok == "OK" => {
                self.acked.insert(key, value);
                Ok(None)
            }
            Ok(Reply::Error(error)) => {
                self.uncertain.insert(key, value);
                Ok(Some(error))
            }
            other => Err(Failure::Check(format!("SET {key}: {other:?}"))),
        }
    }

    /// Every acknowledged key present with its value, uncertain ones absent or right, no
    /// other `enospc:` key.
    fn verify(&self, port: u16, when: &str) -> Result<String, Failure> {
        let check = |e: String| Failure::Check(format!("{when}: {e}"));
        let mut con = Connection::open(port).map_err(|e| check(format!("connect: {e}")))?;
        let keys = match con.call(&[b"KEYS", b"enospc:*"]) {
            Ok(Reply::Array(keys)) => keys,
            other => return Err(check(format!("KEYS: {other:?}"))),
        };
        let mut present = 0;
        let mut uncertain_present = 0;
        for key in keys {
            let Reply::Bulk(key) = key else {
                return Err(check(format!("KEYS item {key:?}")));
            };
            let key = String::from_utf8_lossy(&key).into_owned();
            let expected = match (self.acked.get(&key), self.uncertain.get(&key)) {
                (Some(v), _) => {
                    present += 1;
                    v
                }
                (None, Some(v)) => {
                    uncertain_present += 1;
                    v
                }
                (None, None) => return Err(check(format!("{key} was never written"))),
            };
            match con.call(&[b"GET", key.as_bytes()]) {
                Ok(Reply::Bulk(got)) if got == expected.as_bytes() => {}
                other => return Err(check(format!("{key}: expected {expected}, got {other:?}"))),
            }
        }
        if present != self.acked.len() {
            let missing: Vec<&String> = self
                .acked
                .keys()
                .filter(|k| !matches!(con.call(&[b"EXISTS", k.as_bytes()]), Ok(Reply::Integer(1))))
                .take(5)
                .collect();
            return Err(check(format!(
                "{} of {} acknowledged SETs missing, e.g. {missing:?}",
                self.acked.len() - present,
                self.acked.len()
            )));
        }
        Ok(format!(
            "{when}: all {present} acknowledged SETs present; {uncertain_present} of {} uncertain (error-answered) SETs present",
            self.uncertain.len()
        ))
    }
}

/// Runs the check; the process exit code.
pub fn main(options: &EnospcOptions) -> i32 {
    match run(options) {
        Ok(()) => {
            println!(
                "PASS enospc shards={} appendfsync={}",
                options.shards, options.appendfsync
            );
            0
        }
        Err(Failure::Check(message)) => {
            eprintln!("FAIL enospc: {message}");
            1
        }
        Err(Failure::Setup(message)) => {
            eprintln!("setup error: {message}");
            2
        }
    }
}

fn run(options: &EnospcOptions) -> Result<(), Failure> {
    let dir = &options.dir;
    let filler = dir.join("filler");
    let _ = std::fs::remove_file(&filler);
    let server_options = Options {
        binary: options.binary.clone(),
        dir: None,
        shards: options.shards,
        appendfsync: options.appendfsync.clone(),
        cycles: 0,
        clients: 1,
        run_ms_max: 0,
        seed: 1,
        with_benchmark: false,
        server_args: vec!["--loglevel".to_string(), "warning".to_string()],
        mode: None,
    };
    let port = free_port()?;
    let mut server = start(&server_options, dir, port)?;
    let result = exercise(port, dir, &filler);
    let _ = std::fs::remove_file(&filler);
    let _ = server.kill();
    let _ = server.wait();
    let writes = result?;
    let mut server = start(&server_options, dir, port)?;
    let verified = writes.verify(port, "after kill -9 and restart");
    let _ = server.kill();
    let _ = server.wait();
    println!("{}", verified?);
    Ok(())
}

/// Steps 1-4 on the running server; returns what was written for step 5.
fn exercise(port: u16, dir: &std::path::Path, filler: &std::path::Path) -> Result<Writes, Failure> {
    let mut con = Connection::open(port).map_err(|e| Failure::Setup(format!("connect: {e}")))?;
    let mut writes = Writes {
        acked: BTreeMap::new(),
        uncertain: BTreeMap::new(),
        next: 0,
    };
    for _ in 0..PHASE_SETS {
        if let Some(error) = writes.set(&mut con)? {
            return Err(Failure::Check(format!("SET before filling: {error}")));
        }
    }
    let filled = fill(filler)?;
    println!(
        "filled {} with {filled} bytes of filler until ENOSPC",
        dir.display()
    );
    // Step 2: the next writes run into ENOSPC.
    let started = Instant::now();
    let first_error = loop {
        if let Some(error) = writes.set(&mut con)? {
            break error;
        }
        if started.elapsed() > Duration::from_millis(FAIL_TIMEOUT_MS) {
            return Err(Failure::Setup(format!(
                "{} SETs acknowledged on a full filesystem and none failed",
                writes.acked.len()
            )));
        }
    };
    println!(
        "first refused write after {} more acknowledged: -{first_error}",
        writes.acked.len() as u64 - PHASE_SETS
    );
    // Each shard has its own AOF and latches on its own: a shard whose file still has
    // room in its last page keeps acknowledging (durably) until it runs full too. Write
    // until REFUSED_IN_A_ROW writes in a row were refused, each with MISCONF.
    let acked_at_first_error = writes.acked.len();
    let mut in_a_row = 1;
    while in_a_row < REFUSED_IN_A_ROW {
        match writes.set(&mut con)? {
            Some(error) if error.starts_with("MISCONF") => in_a_row += 1,
            Some(error) => return Err(Failure::Check(format!("refused write said: {error}"))),
            None => in_a_row = 0,
        }
        if started.elapsed() > Duration::from_millis(FAIL_TIMEOUT_MS) {
            return Err(Failure::Check(format!(
                "writes still acknowledged {FAIL_TIMEOUT_MS} ms into a full filesystem"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "then {} more acknowledged (shards whose AOF page still had room), then {REFUSED_IN_A_ROW} refused in a row",
        writes.acked.len() - acked_at_first_error
    );
    if !first_error.starts_with("MISCONF") || !first_error.contains("No space left on device") {
        let latched = writes.set(&mut con)?.unwrap_or_default();
        if !latched.starts_with("MISCONF") || !latched.contains("No space left on device") {
            return Err(Failure::Check(format!(
                "expected MISCONF naming ENOSPC, got -{first_error} then -{latched}"
            )));
        }
    }
    println!("{}", writes.verify(port, "reads while the disk is full")?);
    let info = info_persistence(&mut con)?;
    let status = info_field(&info, "aof_last_write_status").unwrap_or_default();
    let error = info_field(&info, "aof_last_write_error").unwrap_or_default();
    println!("INFO while full: aof_last_write_status:{status} aof_last_write_error:{error}");
    if status != "err" || !error.contains("No space left on device") {
        return Err(Failure::Check(format!(
            "INFO persistence while full: aof_last_write_status:{status} aof_last_write_error:{error}"
        )));
    }
    let rewrite = bgrewriteaof(&mut con)?;
    println!("BGREWRITEAOF while full: {rewrite}");
    if rewrite.ends_with(":ok") {
        return Err(Failure::Check(format!(
            "BGREWRITEAOF succeeded on a full filesystem: {rewrite}"
        )));
    }
    // Step 3: free the space; writes come back without a restart.
    std::fs::remove_file(filler)
        .map_err(|e| Failure::Setup(format!("remove {}: {e}", filler.display())))?;
    // Each shard's writer retries on its own (about every second): a write is accepted as
    // soon as its shard cleared; all writes once INFO says ok.
    let freed = Instant::now();
    let mut first_accepted_ms = None;
    loop {
        if writes.set(&mut con)?.is_none() && first_accepted_ms.is_none() {
            first_accepted_ms = Some(freed.elapsed().as_millis());
        }
        let info = info_persistence(&mut con)?;
        if first_accepted_ms.is_some()
            && info_field(&info, "aof_last_write_status").as_deref() == Some("ok")
        {
            break;
        }
        if freed.elapsed() > Duration::from_millis(RECOVERY_TIMEOUT_MS) {
            return Err(Failure::Check(format!(
                "writes still refused {RECOVERY_TIMEOUT_MS} ms after the space was freed"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "writes accepted again {} ms after freeing the space, every shard clear after {} ms (no restart)",
        first_accepted_ms.unwrap_or_default(),
        freed.elapsed().as_millis()
    );
    for _ in 0..PHASE_SETS {
        if let Some(error) = writes.set(&mut con)? {
            return Err(Failure::Check(format!("SET after recovery: {error}")));
        }
    }
    let info = info_persistence(&mut con)?;
    let status = info_field(&info, "aof_last_write_status").unwrap_or_default();
    if status != "ok" {
        return Err(Failure::Check(format!(
            "INFO after recovery: aof_last_write_status:{status}"
        )));
    }
    let rewrite = bgrewriteaof(&mut con)?;
    println!("BGREWRITEAOF after recovery: {rewrite}");
    if !rewrite.ends_with(":ok") {
        return Err(Failure::Check(format!(
            "BGREWRITEAOF after recovery: {rewrite}"
        )));
    }
    println!("{}", writes.verify(port, "after recovery and a rewrite")?);
    Ok(writes)
}

/// Runs BGREWRITEAOF to its end: the error reply, or `aof_last_bgrewrite_status:<ok|err>`.
fn bgrewriteaof(con: &mut Connection) -> Result<String, Failure> {
    match con.call(&[b"BGREWRITEAOF"]) {
        Ok(Reply::Simple(_)) => {}
        Ok(Reply::Error(error)) => return Ok(format!("refused: -{error}")),
        other => return Err(Failure::Check(format!("BGREWRITEAOF: {other:?}"))),
    }
    let started = Instant::now();
    loop {
        let info = info_persistence(con)?;
        if info_field(&info, "aof_rewrite_in_progress").as_deref() == Some("0") {
            let status = info_field(&info, "aof_last_bgrewrite_status").unwrap_or_default();
            return Ok(format!("aof_last_bgrewrite_status:{status}"));
        }
        if started.elapsed() > Duration::from_millis(RECOVERY_TIMEOUT_MS) {
            return Err(Failure::Check("BGREWRITEAOF never finished".to_string()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `filler` until the filesystem is full; returns the bytes written.
fn fill(filler: &std::path::Path) -> Result<u64, Failure> {
    let mut file = std::fs::File::create(filler)
        .map_err(|e| Failure::Setup(format!("create {}: {e}", filler.display())))?;
    let chunk = vec![0x55u8; FILLER_CHUNK_BYTES];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
            Err(e) => return Err(Failure::Setup(format!("fill {}: {e}", filler.display()))),
        }
    }
    // Smaller pieces for the last partial chunk.
    let byte = [0x55u8; 1];
    while let Ok(1) = file.write(&byte) {
        written += 1;
    }
    Ok(written)
}

/// ENOSPC's errno on Linux.
fn libc_enospc() -> i32 {
    28
}

fn info_persistence(con: &mut Connection) -> Result<String, Failure> {
    match con.call(&[b"INFO", b"persistence"]) {
        Ok(Reply::Bulk(text)) => Ok(String::from_utf8_lossy(&text).into_owned()),
        other => Err(Failure::Check(format!("INFO persistence: {other:?}"))),
    }
}
