//! Unit tests for the command line and config-file parser (`cli.rs`).

use std::io;
use std::path::Path;

use super::*;

fn args(list: &[&str]) -> Vec<String> {
    std::iter::once("tidemark")
        .chain(list.iter().copied())
        .map(String::from)
        .collect()
}

fn no_file(path: &Path) -> io::Result<String> {
    panic!("no config file expected, asked for {}", path.display())
}

fn parse(list: &[&str]) -> Result<Config, CliError> {
    parse_args(args(list), no_file)
}

fn with_file(list: &[&str], text: &str) -> Result<Config, CliError> {
    let text = text.to_string();
    parse_args(args(list), move |path: &Path| {
        assert_eq!(path, Path::new("tidemark.conf"));
        Ok(text)
    })
}

fn usage_error(list: &[&str]) -> String {
    match parse(list) {
        Err(CliError::Usage(msg)) => msg,
        other => panic!("expected a usage error for {list:?}, got {other:?}"),
    }
}

fn file_error(text: &str) -> String {
    match with_file(&["tidemark.conf"], text) {
        Err(CliError::ConfigFile(msg)) => msg,
        other => panic!("expected a config-file error for {text:?}, got {other:?}"),
    }
}

#[test]
fn no_arguments_gives_defaults() {
    assert_eq!(parse(&[]).unwrap(), Config::default());
}

#[test]
fn every_flag_is_applied() {
    let c = parse(&[
        "--port",
        "7000",
        "--bind",
        "0.0.0.0",
        "--dir",
        "data",
        "--dbfilename",
        "x.rdb",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--appenddirname",
        "aof",
        "--aof-fsync-timeout-ms",
        "250",
        "--requirepass",
        "pw",
        "--maxclients",
        "50",
        "--proto-max-bulk-len",
        "2mb",
        "--proto-max-multibulk-len",
        "100",
        "--hz",
        "20",
        "--loglevel",
        "WARNING",
        "--logfile",
        "t.log",
        "--save",
        "60 5",
        "--shards",
        "4",
        "--cross-shard-timeout-ms",
        "100",
        "--cross-shard-queue-len",
        "8",
    ])
    .unwrap();
    assert_eq!(c.port, 7000);
    assert_eq!(c.bind, "0.0.0.0");
    assert_eq!(c.dir, Path::new("data"));
    assert_eq!(c.dbfilename, "x.rdb");
    assert!(c.appendonly);
    assert_eq!(c.appendfsync, FsyncPolicy::Always);
    assert_eq!(c.appenddirname, "aof");
    assert_eq!(c.aof_fsync_timeout_ms, 250);
    assert_eq!(c.requirepass.as_deref(), Some("pw"));
    assert_eq!(c.maxclients, 50);
    assert_eq!(c.proto_max_bulk_len, 2 * 1024 * 1024);
    assert_eq!(c.proto_max_multibulk_len, 100);
    assert_eq!(c.hz, 20);
    assert_eq!(c.loglevel, "warning");
    assert_eq!(c.logfile, "t.log");
    assert_eq!(c.save, [(60, 5)]);
    assert_eq!(c.shards, 4);
    assert_eq!(c.cross_shard_timeout_ms, 100);
    assert_eq!(c.cross_shard_queue_len, 8);
}

#[test]
fn help_and_version_are_info() {
    let Err(CliError::Info(help)) = parse(&["--help"]) else {
        panic!("--help must be Info");
    };
    for setting in SETTINGS {
        assert!(
            help.contains(&format!("--{}", setting.name)),
            "help lacks --{}",
            setting.name
        );
    }
    assert_eq!(CliError::Info(help).exit_code(), 0);
    let Err(CliError::Info(version)) = parse(&["--version"]) else {
        panic!("--version must be Info");
    };
    assert!(version.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_values_name_the_flag_and_accepted_values() {
    let msg = usage_error(&["--port", "abc"]);
    assert!(
        msg.contains("--port") && msg.contains("0 and 65535"),
        "{msg}"
    );
    let msg = usage_error(&["--port", "70000"]);
    assert!(msg.contains("--port"), "{msg}");
    let msg = usage_error(&["--appendfsync", "sometimes"]);
    assert!(
        msg.contains("--appendfsync") && msg.contains("always, everysec, no"),
        "{msg}"
    );
    let msg = usage_error(&["--appendonly", "maybe"]);
    assert!(
        msg.contains("--appendonly") && msg.contains("yes, no"),
        "{msg}"
    );
    let msg = usage_error(&["--shards", "0"]);
    assert!(
        msg.contains("--shards") && msg.contains("1 and 256"),
        "{msg}"
    );
    assert!(usage_error(&["--shards", "257"]).contains("--shards"));
    let msg = usage_error(&["--loglevel", "loud"]);
    assert!(msg.contains("debug, verbose, notice, warning"), "{msg}");
    let msg = usage_error(&["--proto-max-bulk-len", "1kb"]);
    assert!(
        msg.contains("--proto-max-bulk-len") && msg.contains("1mb"),
        "{msg}"
    );
    assert!(usage_error(&["--bind", "localhost"]).contains("--bind"));
    assert!(usage_error(&["--dbfilename", "a/b.rdb"]).contains("plain file name"));
    assert!(usage_error(&["--save", "60"]).contains("--save"));
    assert!(usage_error(&["--maxclients", "0"]).contains("--maxclients"));
    assert!(usage_error(&["--cross-shard-queue-len", "0"]).contains("--cross-shard-queue-len"));
    assert!(usage_error(&["--aof-fsync-timeout-ms", "-5"]).contains("--aof-fsync-timeout-ms"));
    assert_eq!(CliError::Usage(msg).exit_code(), 2);
}

#[test]
fn unknown_flags_and_missing_values_are_refused() {
    assert!(usage_error(&["--nonsense", "1"]).contains("--nonsense"));
    assert!(usage_error(&["--port"]).contains("--port"));
    assert!(usage_error(&["a.conf", "b.conf"]).contains("b.conf"));
}

#[test]
fn last_flag_wins_and_units_parse() {
    assert_eq!(parse(&["--port", "1", "--port", "2"]).unwrap().port, 2);
    assert_eq!(parse_memory("512mb"), Some(512 * 1024 * 1024));
    assert_eq!(parse_memory("1G"), Some(1_000_000_000));
    assert_eq!(parse_memory("3k"), Some(3000));
    assert_eq!(parse_memory("3KB"), Some(3072));
    assert_eq!(parse_memory("7b"), Some(7));
    assert_eq!(parse_memory("12"), Some(12));
    assert_eq!(parse_memory("mb"), None);
    assert_eq!(parse_memory("1tb"), None);
    assert_eq!(parse_memory("99999999999999999999gb"), None);
    assert_eq!(
        parse(&["--proto-max-bulk-len", "1048576"])
            .unwrap()
            .proto_max_bulk_len,
        1 << 20
    );
}

#[test]
fn redis_style_values() {
    assert_eq!(parse(&["--hz", "0"]).unwrap().hz, 1, "clamped like Redis");
    assert_eq!(parse(&["--hz", "9999"]).unwrap().hz, 500);
    assert_eq!(parse(&["--bind", "*"]).unwrap().bind, "0.0.0.0");
    assert_eq!(parse(&["--bind", "::1"]).unwrap().bind, "::1");
    assert!(parse(&["--save", ""]).unwrap().save.is_empty());
    assert_eq!(
        parse(&["--save", "900", "1", "300", "10"]).unwrap().save,
        [(900, 1), (300, 10)]
    );
    assert_eq!(parse(&["--requirepass", ""]).unwrap().requirepass, None);
    assert_eq!(
        parse(&["--appendfsync", "EVERYSEC"]).unwrap().appendfsync,
        FsyncPolicy::Everysec
    );
}

#[test]
fn config_file_then_flags_override() {
    let text = "# a comment\n\n  port 7001\nappendonly yes\nrequirepass \"p w\\x21\"\n\
                dir '/tmp/it''s'\nSAVE \"\"\nbind 127.0.0.1\nshards 3\n";
    let c = with_file(&["tidemark.conf", "--port", "7002"], text);
    let c = match c {
        Err(CliError::ConfigFile(msg)) => {
            assert!(msg.contains("tidemark.conf:6"), "{msg}");
            with_file(
                &["tidemark.conf", "--port", "7002"],
                &text.replace("'/tmp/it''s'", "'/tmp/it\\'s'"),
            )
            .unwrap()
        }
        other => panic!("adjacent quotes must be refused, got {other:?}"),
    };
    assert_eq!(c.port, 7002, "flags override the file");
    assert!(c.appendonly);
    assert_eq!(c.requirepass.as_deref(), Some("p w!"));
    assert_eq!(c.dir, Path::new("/tmp/it's"));
    assert!(c.save.is_empty());
    assert_eq!(c.shards, 3);
}

#[test]
fn config_file_errors_say_file_and_line() {
    let msg = file_error("port 1\nappendfsync sometimes\n");
    assert!(
        msg.contains("tidemark.conf:2") && msg.contains("always, everysec, no"),
        "{msg}"
    );
    let msg = file_error("\n\nnonsense-directive 5\n");
    assert!(
        msg.contains("tidemark.conf:3") && msg.contains("nonsense-directive"),
        "{msg}"
    );
    let msg = file_error("requirepass \"unterminated\n");
    assert!(
        msg.contains("tidemark.conf:1") && msg.contains("unbalanced quotes"),
        "{msg}"
    );
    let msg = file_error("port 1 2\n");
    assert!(msg.contains("exactly one value"), "{msg}");
    let unreadable = parse_args(args(&["missing.conf"]), |_: &Path| {
        Err(io::Error::new(io::ErrorKind::NotFound, "No such file"))
    });
    let Err(CliError::ConfigFile(msg)) = unreadable else {
        panic!("unreadable file must be a ConfigFile error");
    };
    assert!(
        msg.contains("missing.conf") && msg.contains("No such file"),
        "{msg}"
    );
}

#[test]
fn split_config_line_handles_quotes_and_escapes() {
    let split = |l: &str| split_config_line(l).unwrap();
    assert_eq!(split("a  b\tc"), ["a", "b", "c"]);
    assert_eq!(split(r#"x "a b" 'c d'"#), ["x", "a b", "c d"]);
    assert_eq!(split(r#""\n\t\\\"\x41""#), ["\n\t\\\"A"]);
    assert_eq!(split(r#"'\'x\n'"#), ["'x\\n"]);
    assert_eq!(split(r#""""#), [""]);
    assert!(split_config_line(r#""abc"def"#).is_err());
    assert!(split_config_line("'abc").is_err());
}

#[test]
fn repeated_save_accumulates_like_redis() {
    let c = parse(&["--save", "900", "1", "--save", "300 10"]).unwrap();
    assert_eq!(c.save, [(900, 1), (300, 10)]);
    let c = with_file(&["tidemark.conf"], "save 900 1\nsave 300 10\n").unwrap();
    assert_eq!(c.save, [(900, 1), (300, 10)]);
    let c = with_file(&["tidemark.conf"], "save 900 1\nsave \"\"\nsave 60 5\n").unwrap();
    assert_eq!(c.save, [(60, 5)]);
    let c = with_file(&["tidemark.conf", "--save", "1 1"], "save 900 1\n").unwrap();
    assert_eq!(c.save, [(1, 1)], "flags override the file");
}
