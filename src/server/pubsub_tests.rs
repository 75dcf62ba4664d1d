//! Unit tests of the Pub/Sub commands through the conn.rs hook (`handle`): replies and
//! counts as redis-server 7.0.15 gives them, subscribed-mode refusals, cleanup on drop.

use bytes::Bytes;

use super::*;
use crate::io::mem::MemIo;
use crate::server::config::Config;

fn args(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn b(text: &str) -> Frame {
    Frame::bulk(text.to_string())
}

fn push(items: &[Frame]) -> Frame {
    Frame::Push(items.to_vec())
}

fn arr(items: &[Frame]) -> Frame {
    Frame::Array(items.to_vec())
}

struct World {
    io: MemIo,
    node: Arc<Node>,
}

impl World {
    fn new() -> World {
        World {
            io: MemIo::new(),
            node: Node::new(Config::default()),
        }
    }

    fn client(&self, id: u64) -> ClientPubSub {
        ClientPubSub::new(self.node.pubsub.clone(), id)
    }

    /// Runs `line` for `client`; `None` when the hook lets it through.
    fn run(&self, client: &mut ClientPubSub, line: &str) -> Option<Vec<Frame>> {
        let args = args(line);
        let spec = crate::cmd::lookup(&args[0]).expect("known command");
        handle(&self.io, &self.node, client, spec, &args)
    }

    fn one(&self, client: &mut ClientPubSub, line: &str) -> Frame {
        let mut frames = self.run(client, line).expect("handled");
        assert_eq!(frames.len(), 1, "{line}");
        frames.remove(0)
    }
}

#[test]
fn subscribe_confirmations_count_channels_and_patterns() {
    let w = World::new();
    let mut a = w.client(1);
    assert_eq!(
        w.run(&mut a, "SUBSCRIBE c1 c2 c1").unwrap(),
        vec![
            push(&[b("subscribe"), b("c1"), Frame::Integer(1)]),
            push(&[b("subscribe"), b("c2"), Frame::Integer(2)]),
            push(&[b("subscribe"), b("c1"), Frame::Integer(2)]),
        ]
    );
    assert_eq!(
        w.run(&mut a, "PSUBSCRIBE c* d?").unwrap(),
        vec![
            push(&[b("psubscribe"), b("c*"), Frame::Integer(3)]),
            push(&[b("psubscribe"), b("d?"), Frame::Integer(4)]),
        ]
    );
    let mut publisher = w.client(2);
    assert_eq!(w.one(&mut publisher, "PUBLISH c1 hello"), Frame::Integer(2));
    // The messages wait in the outbox; an UNSUBSCRIBE sends them before its confirmation.
    assert_eq!(
        w.run(&mut a, "UNSUBSCRIBE").unwrap(),
        vec![
            push(&[b("message"), b("c1"), b("hello")]),
            push(&[b("pmessage"), b("c*"), b("c1"), b("hello")]),
            push(&[b("unsubscribe"), b("c1"), Frame::Integer(3)]),
            push(&[b("unsubscribe"), b("c2"), Frame::Integer(2)]),
        ]
    );
    assert_eq!(
        w.run(&mut a, "PUNSUBSCRIBE d?").unwrap(),
        vec![push(&[b("punsubscribe"), b("d?"), Frame::Integer(1)])]
    );
    assert_eq!(
        w.run(&mut a, "PUNSUBSCRIBE").unwrap(),
        vec![push(&[b("punsubscribe"), b("c*"), Frame::Integer(0)])]
    );
    assert!(!a.is_subscribed());
    assert!(w.run(&mut a, "PING").is_none(), "out of subscribed mode");
}

#[test]
fn unsubscribe_without_subscriptions_replies_nil_and_zero() {
    let w = World::new();
    let mut a = w.client(1);
    assert_eq!(
        w.one(&mut a, "UNSUBSCRIBE"),
        push(&[b("unsubscribe"), Frame::Null, Frame::Integer(0)])
    );
    assert_eq!(
        w.one(&mut a, "PUNSUBSCRIBE"),
        push(&[b("punsubscribe"), Frame::Null, Frame::Integer(0)])
    );
    assert_eq!(
        w.run(&mut a, "UNSUBSCRIBE x y").unwrap(),
        vec![
            push(&[b("unsubscribe"), b("x"), Frame::Integer(0)]),
            push(&[b("unsubscribe"), b("y"), Frame::Integer(0)]),
        ]
    );
}

#[test]
fn subscribed_mode_refuses_other_commands_and_pings_as_arrays() {
    let w = World::new();
    let mut a = w.client(1);
    assert!(
        w.run(&mut a, "GET x").is_none(),
        "not subscribed: runs normally"
    );
    w.run(&mut a, "SUBSCRIBE c");
    let refused = |name: &str| {
        Frame::error(format!("ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"))
    };
    assert_eq!(w.one(&mut a, "GET x"), refused("get"));
    assert_eq!(
        w.one(&mut a, "CONFIG GET maxclients"),
        refused("config|get")
    );
    assert_eq!(w.one(&mut a, "ECHO x"), refused("echo"));
    assert_eq!(w.one(&mut a, "PUBLISH c x"), refused("publish"));
    assert_eq!(w.one(&mut a, "PING"), push(&[b("pong"), b("")]));
    assert_eq!(w.one(&mut a, "PING hi"), push(&[b("pong"), b("hi")]));
    assert!(w.run(&mut a, "QUIT").is_none(), "QUIT runs as usual");
}

#[test]
fn pubsub_introspection_matches_redis() {
    let w = World::new();
    let (mut a, mut c) = (w.client(1), w.client(3));
    w.run(&mut a, "SUBSCRIBE c1 c2");
    w.run(&mut a, "PSUBSCRIBE c* d?");
    w.run(&mut c, "PSUBSCRIBE c*");
    let mut p = w.client(2);
    assert_eq!(
        w.one(&mut p, "PUBSUB NUMSUB c1 c2 zz"),
        arr(&[
            b("c1"),
            Frame::Integer(1),
            b("c2"),
            Frame::Integer(1),
            b("zz"),
            Frame::Integer(0)
        ])
    );
    assert_eq!(w.one(&mut p, "PUBSUB numsub"), arr(&[]));
    assert_eq!(w.one(&mut p, "PUBSUB NUMPAT"), Frame::Integer(2));
    assert_eq!(w.one(&mut p, "PUBSUB CHANNELS"), arr(&[b("c1"), b("c2")]));
    assert_eq!(w.one(&mut p, "PUBSUB CHANNELS c1*"), arr(&[b("c1")]));
    assert_eq!(w.one(&mut p, "PUBSUB SHARDCHANNELS"), arr(&[]));
    assert_eq!(
        w.one(&mut p, "PUBSUB SHARDNUMSUB a"),
        arr(&[b("a"), Frame::Integer(0)])
    );
    assert_eq!(
        w.one(&mut p, "PUBSUB CHANNELS a b"),
        Frame::error(
            "ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP."
        )
    );
    assert_eq!(
        w.one(&mut p, "PUBSUB NUMPAT x"),
        Frame::error("ERR wrong number of arguments for 'pubsub|numpat' command")
    );
    assert_eq!(
        w.one(&mut p, "PUBSUB FOO"),
        Frame::error("ERR unknown subcommand 'FOO'. Try PUBSUB HELP.")
    );
    let Frame::Array(help) = w.one(&mut p, "PUBSUB HELP") else {
        panic!("help is an array");
    };
    assert_eq!(help.len(), 14);
    assert_eq!(w.one(&mut p, "PUBLISH c1 x"), Frame::Integer(3));
    assert_eq!(w.node.pubsub.counts(), (2, 2));
    // A client's subscriptions go away with it.
    drop(a);
    assert_eq!(w.one(&mut p, "PUBLISH c1 x"), Frame::Integer(1));
    assert_eq!(w.one(&mut p, "PUBSUB NUMPAT"), Frame::Integer(1));
    assert_eq!(w.one(&mut p, "PUBSUB CHANNELS"), arr(&[]));
}

#[test]
fn publish_uses_the_configured_pubsub_limit() {
    let w = World::new();
    w.node
        .config
        .write()
        .unwrap()
        .client_output_buffer_limit
        .pubsub
        .hard_bytes = 1000;
    let mut a = w.client(1);
    w.run(&mut a, "SUBSCRIBE c");
    let mut p = w.client(2);
    let big = format!("PUBLISH c {}", "x".repeat(600));
    assert_eq!(w.one(&mut p, &big), Frame::Integer(1));
    assert_eq!(
        w.one(&mut p, &big),
        Frame::Integer(1),
        "this push closes it"
    );
    assert_eq!(w.one(&mut p, &big), Frame::Integer(0));
    assert!(a.outbox.as_ref().unwrap().is_closed());
    assert_eq!(
        w.one(&mut p, "PUBSUB NUMSUB c"),
        arr(&[b("c"), Frame::Integer(0)])
    );
}

#[test]
fn client_output_buffer_limit_parses_like_redis() {
    use crate::server::config::ClientOutputBufferLimits;
    let mut limits = ClientOutputBufferLimits::default();
    assert_eq!(
        limits.to_string(),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    limits.apply(&["pubsub", "1mb", "512kb", "30"]).unwrap();
    limits
        .apply(&["replica", "1", "1", "1", "normal", "5", "6", "7"])
        .unwrap();
    assert_eq!(
        limits.to_string(),
        "normal 5 6 7 slave 1 1 1 pubsub 1048576 524288 30"
    );
    let before = limits;
    for (words, error) in [
        (
            &["pubsub", "1mb", "512kb"][..],
            "Wrong number of arguments in buffer limit configuration.",
        ),
        (
            &["foo", "1", "1", "1"][..],
            "Invalid client class specified in buffer limit configuration.",
        ),
        (
            &["pubsub", "x", "1", "1"][..],
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
        (
            &["pubsub", "1", "1", "-1"][..],
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
        (
            &["normal", "9", "9", "9", "pubsub", "x", "1", "1"][..],
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
    ] {
        assert_eq!(limits.apply(words), Err(error.to_string()));
        assert_eq!(limits, before, "all or nothing");
    }
}

#[test]
fn client_output_buffer_limit_lines_in_a_config_file_apply_in_order() {
    let mut config = Config::default();
    let text =
        "client-output-buffer-limit pubsub 1mb 1mb 0\nclient-output-buffer-limit normal 1 2 3\n";
    crate::server::cli::parse_config_text("t.conf", text, &mut config).unwrap();
    assert_eq!(
        config.client_output_buffer_limit.to_string(),
        "normal 1 2 3 slave 268435456 67108864 60 pubsub 1048576 1048576 0"
    );
    let bad = "client-output-buffer-limit pubsub 1mb\n";
    let error = crate::server::cli::parse_config_text("t.conf", bad, &mut config).unwrap_err();
    assert!(error.to_string().contains("t.conf:1"), "{error}");
}

/// RESP3 clients (HELLO 3) may run any command while subscribed, and PING replies
/// normally, as in Redis 7; the subscribe confirmations are Push frames.
#[test]
fn resp3_subscribers_run_any_command() {
    let w = World::new();
    let mut a = w.client(1);
    a.resp3 = true;
    w.run(&mut a, "SUBSCRIBE c");
    assert!(a.is_subscribed());
    assert!(w.run(&mut a, "GET x").is_none(), "GET runs as usual");
    assert!(w.run(&mut a, "PING").is_none(), "PING runs as usual");
}
