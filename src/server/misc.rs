//! Small connection-route server commands: TIME, WAIT, DEBUG (SLEEP), SLOWLOG, FUNCTION
//! FLUSH, SCRIPT FLUSH. Replies follow redis-server 7.0 (checked against 7.0.15).
//!
//! tidemark has no replicas (WAIT answers 0 at once), records no slow log (SLOWLOG is
//! always empty) and runs no scripts or functions (the FLUSH subcommands succeed with
//! nothing to flush). Time comes from the IO seam's clock only.
//!
//! What can fail: only the client's arguments, reported as the exact Redis error frame.

use std::time::Duration;

use bytes::Bytes;

use crate::cmd::parse_i64;
use crate::io::Io;
use crate::resp::Frame;
use crate::shard::route::Router;

/// Longest DEBUG SLEEP tidemark honours (a sleep that long is certainly a mistake).
pub const DEBUG_SLEEP_MAX_SECONDS: f64 = 24.0 * 3600.0;

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// A help reply: one status line per entry, as Redis's `addReplyHelp`.
fn help_reply(lines: &[&str]) -> Frame {
    Frame::Array(
        lines
            .iter()
            .map(|l| Frame::Simple((*l).to_string()))
            .collect(),
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Redis's reply to an unknown subcommand of `container` (e.g. "SLOWLOG").
fn unknown_subcommand(sub: &[u8], container: &str) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try {container} HELP.",
        text(sub)
    ))
}

/// Redis's reply when a subcommand's own code rejects the argument count.
fn unknown_or_arity(sub: &[u8], container: &str) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        text(sub)
    ))
}

/// Redis's arity error for a known subcommand (`'slowlog|len'`).
fn sub_arity(container: &str, sub: &[u8]) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for '{container}|{}' command",
        text(&sub.to_ascii_lowercase())
    ))
}

/// TIME → [unix seconds, microseconds] as bulk strings, from the seam's wall clock
/// (millisecond resolution: the microseconds are a multiple of 1000).
pub fn time<I: Io>(router: &Router<'_, I>) -> Frame {
    let now_ms = router.shard.io.wall_clock_ms();
    Frame::Array(vec![
        Frame::bulk((now_ms / 1000).to_string()),
        Frame::bulk(((now_ms % 1000) * 1000).to_string()),
    ])
}

/// WAIT numreplicas timeout → 0 at once (tidemark has no replicas). Redis's argument
/// errors: numreplicas not an integer; timeout not an integer or negative.
pub fn wait(args: &[Bytes]) -> Frame {
    if parse_i64(&args[1]).is_none() {
        return Frame::error(crate::cmd::ERR_NOT_INTEGER);
    }
    match parse_i64(&args[2]) {
        None => Frame::error("ERR timeout is not an integer or out of range"),
        Some(t) if t < 0 => Frame::error("ERR timeout is negative"),
        Some(_) => Frame::Integer(0),
    }
}

/// Parses like C `strtod` on the whole argument, with what does not parse as 0 (Redis's
/// DEBUG SLEEP does not check its argument).
fn loose_seconds(arg: &[u8]) -> f64 {
    let parsed = std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    if parsed.is_finite() {
        parsed.clamp(0.0, DEBUG_SLEEP_MAX_SECONDS)
    } else {
        0.0
    }
}

/// DEBUG SLEEP seconds (fractional) → +OK after sleeping on the seam's clock. Every other
/// DEBUG subcommand is refused with Redis's unknown-subcommand error. Unlike Redis 7
/// (`enable-debug-command no` by default), DEBUG SLEEP is always allowed.
pub async fn debug<I: Io>(router: &Router<'_, I>, args: &[Bytes]) -> Frame {
    if args.len() == 3 && args[1].eq_ignore_ascii_case(b"sleep") {
        let seconds = loose_seconds(&args[2]);
        router
            .shard
            .io
            .sleep(Duration::from_secs_f64(seconds))
            .await;
        return Frame::ok();
    }
    unknown_or_arity(&args[1], "DEBUG")
}

/// SLOWLOG GET [count] → empty array, LEN → 0, RESET → OK, HELP.
pub fn slowlog(args: &[Bytes]) -> Frame {
    let sub = args[1].to_ascii_lowercase();
    match (&sub[..], args.len()) {
        (b"get", 2) => Frame::Array(Vec::new()),
        (b"get", 3) => match parse_i64(&args[2]) {
            Some(n) if n >= -1 => Frame::Array(Vec::new()),
            _ => Frame::error("ERR count should be greater than or equal to -1"),
        },
        (b"get", _) => unknown_or_arity(&args[1], "SLOWLOG"),
        (b"len", 2) => Frame::Integer(0),
        (b"reset", 2) => Frame::ok(),
        (b"help", 2) => help_reply(SLOWLOG_HELP),
        (b"len" | b"reset" | b"help", _) => sub_arity("slowlog", &sub),
        _ => unknown_subcommand(&args[1], "SLOWLOG"),
    }
}

/// True for the optional flush mode argument (ASYNC or SYNC).
fn is_flush_mode(arg: &[u8]) -> bool {
    arg.eq_ignore_ascii_case(b"async") || arg.eq_ignore_ascii_case(b"sync")
}

/// FUNCTION FLUSH [ASYNC|SYNC] → OK (no functions exist). Other subcommands are unknown.
pub fn function(args: &[Bytes]) -> Frame {
    if !args[1].eq_ignore_ascii_case(b"flush") {
        return unknown_subcommand(&args[1], "FUNCTION");
    }
    match args.len() {
        2 => Frame::ok(),
        3 if is_flush_mode(&args[2]) => Frame::ok(),
        3 => Frame::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"),
        _ => unknown_or_arity(&args[1], "FUNCTION"),
    }
}

/// SCRIPT FLUSH [ASYNC|SYNC] → OK (no scripts are cached). Other subcommands are unknown.
pub fn script(args: &[Bytes]) -> Frame {
    if !args[1].eq_ignore_ascii_case(b"flush") {
        return unknown_subcommand(&args[1], "SCRIPT");
    }
    match args.len() {
        2 => Frame::ok(),
        3 if is_flush_mode(&args[2]) => Frame::ok(),
        _ => Frame::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn err(text: &str) -> Frame {
        Frame::error(text)
    }

    #[test]
    fn wait_answers_zero_or_argument_errors() {
        assert_eq!(wait(&args("WAIT 0 0")), Frame::Integer(0));
        assert_eq!(wait(&args("WAIT 3 100")), Frame::Integer(0));
        assert_eq!(
            wait(&args("WAIT x 0")),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            wait(&args("WAIT 0 x")),
            err("ERR timeout is not an integer or out of range")
        );
        assert_eq!(wait(&args("WAIT 0 -1")), err("ERR timeout is negative"));
    }

    #[test]
    fn slowlog_is_empty() {
        assert_eq!(slowlog(&args("SLOWLOG GET")), Frame::Array(vec![]));
        assert_eq!(slowlog(&args("slowlog get -1")), Frame::Array(vec![]));
        assert_eq!(slowlog(&args("SLOWLOG LEN")), Frame::Integer(0));
        assert_eq!(slowlog(&args("SLOWLOG RESET")), Frame::ok());
        let bad_count = err("ERR count should be greater than or equal to -1");
        assert_eq!(slowlog(&args("SLOWLOG GET -2")), bad_count);
        assert_eq!(slowlog(&args("SLOWLOG GET x")), bad_count);
        assert_eq!(
            slowlog(&args("SLOWLOG GET 1 2")),
            err("ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.")
        );
        assert_eq!(
            slowlog(&args("SLOWLOG LEN x")),
            err("ERR wrong number of arguments for 'slowlog|len' command")
        );
        assert_eq!(
            slowlog(&args("SLOWLOG foo")),
            err("ERR unknown subcommand 'foo'. Try SLOWLOG HELP.")
        );
        let Frame::Array(help) = slowlog(&args("SLOWLOG HELP")) else {
            panic!("help is an array");
        };
        assert_eq!(help.len(), 12);
    }

    #[test]
    fn function_and_script_flush() {
        for mode in ["", " ASYNC", " sync"] {
            assert_eq!(
                function(&args(&format!("FUNCTION FLUSH{mode}"))),
                Frame::ok()
            );
            assert_eq!(script(&args(&format!("SCRIPT FLUSH{mode}"))), Frame::ok());
        }
        assert_eq!(
            function(&args("FUNCTION FLUSH x")),
            err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
        );
        assert_eq!(
            function(&args("FUNCTION flush a b")),
            err("ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.")
        );
        assert_eq!(
            function(&args("FUNCTION foo")),
            err("ERR unknown subcommand 'foo'. Try FUNCTION HELP.")
        );
        let only = err("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
        assert_eq!(script(&args("SCRIPT FLUSH x")), only);
        assert_eq!(script(&args("SCRIPT FLUSH a b")), only);
        assert_eq!(
            script(&args("SCRIPT foo")),
            err("ERR unknown subcommand 'foo'. Try SCRIPT HELP.")
        );
    }

    #[test]
    fn debug_sleep_argument_parsing() {
        assert_eq!(loose_seconds(b"0.25"), 0.25);
        assert_eq!(loose_seconds(b"x"), 0.0);
        assert_eq!(loose_seconds(b"-1"), 0.0);
        assert_eq!(loose_seconds(b"inf"), 0.0);
        assert_eq!(loose_seconds(b"1e12"), DEBUG_SLEEP_MAX_SECONDS);
    }
}
