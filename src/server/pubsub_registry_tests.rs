//! Unit tests of the Pub/Sub registry and outbox: delivery, counts, ordering, and the
//! hard and soft output limits.

use std::time::Duration;

use bytes::Bytes;

use super::*;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn unlimited() -> OutputBufferLimit {
    OutputBufferLimit {
        hard_bytes: 0,
        soft_bytes: 0,
        soft_seconds: 0,
    }
}

fn message(pattern: Option<&str>, channel: &str, payload: &str) -> Message {
    Message {
        pattern: pattern.map(b),
        channel: b(channel),
        payload: b(payload),
    }
}

#[test]
fn publish_reaches_channel_then_pattern_subscribers_and_counts_each_delivery() {
    let registry = Registry::default();
    let (one, two) = (Outbox::new(), Outbox::new());
    assert!(registry.subscribe(Kind::Channel, &b("news"), 1, &one));
    assert!(!registry.subscribe(Kind::Channel, &b("news"), 1, &one));
    assert!(registry.subscribe(Kind::Pattern, &b("n*"), 1, &one));
    assert!(registry.subscribe(Kind::Pattern, &b("n?ws"), 2, &two));
    assert!(registry.subscribe(Kind::Channel, &b("other"), 2, &two));
    let now = Duration::ZERO;
    assert_eq!(registry.publish(&b("news"), &b("hi"), &unlimited(), now), 3);
    assert_eq!(registry.publish(&b("other"), &b("x"), &unlimited(), now), 1);
    assert_eq!(registry.publish(&b("none"), &b("x"), &unlimited(), now), 1);
    assert_eq!(registry.publish(&b("zzz"), &b("x"), &unlimited(), now), 0);
    assert_eq!(
        one.take(u64::MAX),
        vec![
            message(None, "news", "hi"),
            message(Some("n*"), "news", "hi"),
            message(Some("n*"), "none", "x"),
        ]
    );
    assert_eq!(
        two.take(u64::MAX),
        vec![
            message(Some("n?ws"), "news", "hi"),
            message(None, "other", "x")
        ]
    );
    assert_eq!(one.pending_bytes(), 0);
}

#[test]
fn counts_and_listings_follow_subscriptions() {
    let registry = Registry::default();
    let (one, two) = (Outbox::new(), Outbox::new());
    registry.subscribe(Kind::Channel, &b("b"), 1, &one);
    registry.subscribe(Kind::Channel, &b("a"), 1, &one);
    registry.subscribe(Kind::Channel, &b("a"), 2, &two);
    registry.subscribe(Kind::Pattern, &b("*"), 1, &one);
    registry.subscribe(Kind::Pattern, &b("*"), 2, &two);
    assert_eq!(registry.channels(None), vec![b("a"), b("b")]);
    assert_eq!(registry.channels(Some(b"b*")), vec![b("b")]);
    assert_eq!(registry.numsub(b"a"), 2);
    assert_eq!(registry.numsub(b"b"), 1);
    assert_eq!(registry.numsub(b"zz"), 0);
    assert_eq!(registry.numpat(), 1);
    assert_eq!(registry.counts(), (2, 1));
    assert!(registry.unsubscribe(Kind::Channel, b"b", 1));
    assert!(!registry.unsubscribe(Kind::Channel, b"b", 1));
    assert!(registry.unsubscribe(Kind::Pattern, b"*", 1));
    assert_eq!(registry.channels(None), vec![b("a")]);
    assert_eq!(registry.numpat(), 1);
    assert!(registry.unsubscribe(Kind::Pattern, b"*", 2));
    assert_eq!(registry.numpat(), 0);
    assert_eq!(registry.counts(), (1, 0));
}

#[test]
fn hard_limit_closes_the_outbox_frees_it_and_stops_counting_it() {
    let registry = Registry::default();
    let (slow, fast) = (Outbox::new(), Outbox::new());
    registry.subscribe(Kind::Channel, &b("c"), 1, &slow);
    registry.subscribe(Kind::Channel, &b("c"), 2, &fast);
    let limit = OutputBufferLimit {
        hard_bytes: 10_000,
        soft_bytes: 0,
        soft_seconds: 0,
    };
    let payload = Bytes::from(vec![b'x'; 1000]);
    let mut counts = Vec::new();
    for _ in 0..12 {
        counts.push(registry.publish(&b("c"), &payload, &limit, Duration::ZERO));
        fast.take(u64::MAX);
    }
    // 1049 bytes a message: the 10th push reaches 10_490 ≥ 10_000 and closes `slow`.
    assert_eq!(counts, [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1]);
    assert!(slow.is_closed());
    assert!(!fast.is_closed());
    assert_eq!(slow.pending_bytes(), 0);
    assert!(slow.take(u64::MAX).is_empty());
    assert_eq!(registry.numsub(b"c"), 1);
    assert_eq!(registry.channels(None), vec![b("c")]);
}

#[test]
fn soft_limit_closes_only_after_soft_seconds_and_resets_when_drained() {
    let limit = OutputBufferLimit {
        hard_bytes: 0,
        soft_bytes: 100,
        soft_seconds: 60,
    };
    let big = message(None, "c", &"x".repeat(100));
    let outbox = Outbox::new();
    let at = Duration::from_secs;
    assert!(outbox.push(big.clone(), &limit, at(0)));
    assert!(outbox.push(big.clone(), &limit, at(60)));
    assert!(!outbox.is_closed(), "exactly soft_seconds is still allowed");
    // Drained below the soft limit: the clock restarts.
    outbox.take(u64::MAX);
    assert!(outbox.push(big.clone(), &limit, at(100)));
    assert!(outbox.push(big.clone(), &limit, at(159)));
    assert!(!outbox.is_closed());
    assert!(outbox.push(big.clone(), &limit, at(161)));
    assert!(outbox.is_closed());
    assert!(!outbox.push(big, &limit, at(162)), "closed outboxes refuse");
}

#[test]
fn take_is_bounded_but_makes_progress() {
    let outbox = Outbox::new();
    for i in 0..10 {
        outbox.push(
            message(None, "c", &i.to_string()),
            &unlimited(),
            Duration::ZERO,
        );
    }
    let each = message(None, "c", "0").size_bytes();
    assert_eq!(outbox.take(1).len(), 1);
    assert_eq!(outbox.take(each * 3).len(), 3);
    assert_eq!(outbox.pending_bytes(), each * 6);
    assert_eq!(outbox.take(u64::MAX).len(), 6);
    assert!(outbox.take(u64::MAX).is_empty());
}

#[test]
fn waiters_wake_on_push_and_on_close() {
    let outbox = Outbox::new();
    let mut ready = Box::pin(outbox.wait_ready());
    assert!(futures_lite::future::block_on(futures_lite::future::poll_once(&mut ready)).is_none());
    outbox.push(message(None, "c", "p"), &unlimited(), Duration::ZERO);
    assert!(futures_lite::future::block_on(futures_lite::future::poll_once(&mut ready)).is_some());
    let mut closed = Box::pin(outbox.wait_closed());
    assert!(futures_lite::future::block_on(futures_lite::future::poll_once(&mut closed)).is_none());
    let tiny = OutputBufferLimit {
        hard_bytes: 1,
        soft_bytes: 0,
        soft_seconds: 0,
    };
    outbox.push(message(None, "c", "p"), &tiny, Duration::ZERO);
    assert!(futures_lite::future::block_on(futures_lite::future::poll_once(&mut closed)).is_some());
    assert!(outbox.is_closed());
}
