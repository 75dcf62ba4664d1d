//! Tests of the io_uring seam implementation against the contract in `src/io/mod.rs`:
//! append-into-spare-capacity reads, positional writes, sorted listings, directory fsync,
//! SO_REUSEPORT binds, TCP round trips, timers, and cross-thread wake-ups of a runtime
//! by an `async-channel` send from another thread.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

fn run<T>(fut: impl Future<Output = T>) -> T {
    build_runtime().expect("io_uring runtime").block_on(fut)
}

#[test]
fn runtime_really_uses_io_uring() {
    let rt = build_runtime().expect("io_uring runtime");
    assert_eq!(driver_kind(&rt), "io_uring");
    let inside = rt.block_on(async { UringIo::new(0).driver_name() });
    assert_eq!(inside, "io_uring");
    assert_eq!(current_driver_kind(), "none");
    assert_eq!(probe_io_uring(), Ok("io_uring"));
    // The kernel agrees: this process holds an io_uring instance while `rt` lives.
    let uring_fds = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("io_uring"))
        .count();
    assert!(uring_fds >= 1, "no anon_inode:[io_uring] fd open");
    drop(rt);
}

#[test]
fn file_read_at_appends_into_spare_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    run(async {
        let io = UringIo::with_seed(0, 1);
        let f = io.open(&path, OpenMode::CreateTruncate).await.unwrap();
        let (n, _) = f.write_at(b"hello world".to_vec(), 0).await;
        assert_eq!(n.unwrap(), 11);
        let (n, _) = f.write_at(b"W".to_vec(), 6).await;
        assert_eq!(n.unwrap(), 1);
        assert_eq!(f.len().await.unwrap(), 11);

        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(b"ab");
        let (n, buf) = f.read_at(buf, 4).await;
        assert_eq!(n.unwrap(), 6, "reads only the spare capacity");
        assert_eq!(buf, b"abo Worl");

        let (n, buf) = f.read_at(Vec::with_capacity(10), 11).await;
        assert_eq!(n.unwrap(), 0, "end of file");
        assert!(buf.is_empty());

        f.sync_data().await.unwrap();
        f.set_len(5).await.unwrap();
        f.sync_all().await.unwrap();
        assert_eq!(f.len().await.unwrap(), 5);
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
}

#[test]
fn open_modes_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m");
    run(async {
        let io = UringIo::with_seed(0, 1);
        let missing = io.open(&path, OpenMode::Read).await;
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(io.open(&path, OpenMode::ReadWrite).await.is_err());

        let f = io.open(&path, OpenMode::CreateReadWrite).await.unwrap();
        f.write_at(b"keep".to_vec(), 0).await.0.unwrap();
        drop(f);
        let f = io.open(&path, OpenMode::CreateReadWrite).await.unwrap();
        assert_eq!(f.len().await.unwrap(), 4, "CreateReadWrite keeps contents");
        drop(f);
        let f = io.open(&path, OpenMode::Read).await.unwrap();
        let (res, _) = f.write_at(b"x".to_vec(), 0).await;
        assert!(res.is_err(), "Read mode must refuse writes");
        drop(f);
        let f = io.open(&path, OpenMode::CreateTruncate).await.unwrap();
        assert_eq!(f.len().await.unwrap(), 0, "CreateTruncate empties");
    });
}

#[test]
fn directory_operations() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b");
    run(async {
        let io = UringIo::with_seed(0, 1);
        io.create_dir_all(&root).await.unwrap();
        io.create_dir_all(&root).await.unwrap();
        for name in ["zeta", "alpha", "mid"] {
            io.open(&root.join(name), OpenMode::CreateTruncate)
                .await
                .unwrap();
        }
        assert_eq!(io.list_dir(&root).await.unwrap(), ["alpha", "mid", "zeta"]);
        io.rename(&root.join("zeta"), &root.join("alpha"))
            .await
            .unwrap();
        io.remove_file(&root.join("mid")).await.unwrap();
        io.sync_dir(&root).await.unwrap();
        assert_eq!(io.list_dir(&root).await.unwrap(), ["alpha"]);
        let err = io.sync_dir(&root.join("alpha")).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
        assert!(io.list_dir(&root.join("nope")).await.is_err());
        io.sync_dir(Path::new("")).await.unwrap();
    });
}

#[test]
fn tcp_reuseport_round_trip() {
    run(async {
        let io = UringIo::with_seed(0, 1);
        let first = io.bind("127.0.0.1:0").await.unwrap();
        let addr = first.local_addr();
        let second = io
            .bind(&addr)
            .await
            .expect("SO_REUSEPORT lets a second bind share");
        assert_eq!(second.local_addr(), addr);
        assert!(io.bind("localhost:1").await.is_err(), "no DNS");

        // Both listeners share the port; a connection lands on one of them.
        let client = compio::net::TcpStream::connect(addr.as_str())
            .await
            .unwrap();
        let client_addr = client.local_addr().unwrap().to_string();
        let (mut server, peer) = futures_lite::future::or(first.accept(), second.accept())
            .await
            .unwrap();
        assert_eq!(peer, client_addr);
        assert!(
            server.inner.nodelay().unwrap(),
            "TCP_NODELAY on accepted streams"
        );

        let mut client = UringStream::new(client);
        client.write_all(b"PING\r\n".to_vec()).await.0.unwrap();
        let mut got = Vec::with_capacity(64);
        got.extend_from_slice(b">");
        while got.len() < 7 {
            let (n, buf) = server.read(got).await;
            assert!(n.unwrap() > 0);
            got = buf;
        }
        assert_eq!(got, b">PING\r\n");
        client.shutdown().await.unwrap();
        let (n, _) = server.read(Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap(), 0, "peer closed its write side");
    });
}

#[test]
fn clock_and_entropy() {
    run(async {
        let io = UringIo::new(3);
        assert_eq!(io.shard_id(), 3);
        let before = io.monotonic();
        let wall = Instant::now();
        io.sleep(Duration::from_millis(30)).await;
        assert!(wall.elapsed() >= Duration::from_millis(30));
        assert!(io.monotonic() - before >= Duration::from_millis(30));
        let now_ms = io.wall_clock_ms();
        assert!(
            now_ms > 1_600_000_000_000,
            "wall clock is ms since the epoch"
        );

        let clone = io.clone();
        let draws: Vec<u64> = (0..4)
            .map(|i| {
                if i % 2 == 0 {
                    io.random_u64()
                } else {
                    clone.random_u64()
                }
            })
            .collect();
        let mut unique = draws.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 4, "clones share one advancing stream");

        let a = UringIo::with_seed(0, 42).random_u64();
        assert_eq!(a, UringIo::with_seed(0, 42).random_u64());
        assert_ne!(UringIo::new(0).random_u64(), UringIo::new(0).random_u64());
    });
}

#[test]
fn spawn_local_runs_tasks_and_with_timeout_fires() {
    run(async {
        let io = UringIo::with_seed(0, 1);
        let (tx, rx) = async_channel::bounded::<u32>(1);
        io.spawn_local(async move {
            tx.send(7).await.unwrap();
        });
        assert_eq!(rx.recv().await.unwrap(), 7);
        let never = std::future::pending::<()>();
        let out = crate::io::with_timeout(&io, Duration::from_millis(20), never).await;
        assert!(out.is_none());
    });
}

#[test]
fn cross_thread_send_wakes_a_parked_runtime() {
    let (tx, rx) = async_channel::bounded::<u64>(4);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let receiver = std::thread::spawn(move || {
        run(async move {
            let io = UringIo::with_seed(1, 1);
            let mut got = Vec::new();
            for _ in 0..3 {
                let _ = ready_tx.send(());
                let recv = crate::io::with_timeout(&io, Duration::from_secs(10), rx.recv());
                got.push(recv.await.expect("woken before the 10 s timeout").unwrap());
            }
            got
        })
    });
    // Sender thread runs its own runtime (shard B); the receiver is parked in io_uring.
    let sender = std::thread::spawn(move || {
        run(async move {
            for value in [10, 20, 30] {
                ready_rx.recv().unwrap();
                compio::time::sleep(Duration::from_millis(50)).await;
                tx.send(value).await.unwrap();
            }
        })
    });
    sender.join().unwrap();
    let started = Instant::now();
    assert_eq!(receiver.join().unwrap(), [10, 20, 30]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn cross_thread_send_wakes_a_spawned_task() {
    let (tx, rx) = async_channel::bounded::<&'static str>(1);
    let receiver = std::thread::spawn(move || {
        run(async move {
            let io = UringIo::with_seed(2, 1);
            let (done_tx, done_rx) = async_channel::bounded::<&'static str>(1);
            // The waiting future is a detached task, not the block_on future itself.
            io.spawn_local(async move {
                let got = rx.recv().await.unwrap();
                done_tx.send(got).await.unwrap();
            });
            crate::io::with_timeout(&io, Duration::from_secs(10), done_rx.recv()).await
        })
    });
    std::thread::sleep(Duration::from_millis(100));
    tx.send_blocking("from thread B").unwrap();
    let got = receiver.join().unwrap();
    assert_eq!(
        got.expect("woken before the 10 s timeout").unwrap(),
        "from thread B"
    );
}

#[test]
fn reserved_port_is_shared_by_every_shard_bind() {
    let reservation = reserve_free_port("127.0.0.1").unwrap();
    assert_ne!(reservation.port, 0);
    let addr = format!("127.0.0.1:{}", reservation.port);
    run(async {
        let io = UringIo::with_seed(0, 1);
        let a = io
            .bind(&addr)
            .await
            .expect("shard 0 binds the reserved port");
        let b = io
            .bind(&addr)
            .await
            .expect("shard 1 binds the reserved port");
        assert_eq!(a.local_addr(), addr);
        assert_eq!(b.local_addr(), addr);
        // The reservation itself does not listen, so connections reach the shards.
        for _ in 0..4 {
            let _client = compio::net::TcpStream::connect(addr.as_str())
                .await
                .unwrap();
            let accepted = crate::io::with_timeout(
                &io,
                Duration::from_secs(5),
                futures_lite::future::or(a.accept(), b.accept()),
            )
            .await;
            assert!(accepted.expect("a shard accepted").is_ok());
        }
    });
    assert!(reserve_free_port("not-an-ip").is_err());
}

/// The `Stream::read` cancel-safety contract: a read future dropped after io_uring took
/// the bytes (it lost a race, as a subscriber's read does against a delivery) loses
/// nothing; the next read returns them. Before `UringStream::pending_read`, dropping the
/// future cancelled the op and the bytes it had already received were gone.
#[test]
fn a_dropped_read_loses_no_bytes() {
    run(async {
        let io = UringIo::with_seed(0, 1);
        let listener = io.bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr();
        let client = compio::net::TcpStream::connect(addr.as_str())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut client = UringStream::new(client);
        for round in 0..20u8 {
            // The bytes are in the socket before the read is submitted, so the kernel
            // completes the read at once; the future is dropped right after its first poll.
            client.write_all(vec![b'a' + round; 3]).await.0.unwrap();
            compio::runtime::time::sleep(Duration::from_millis(2)).await;
            let dropped = futures_lite::future::poll_once(server.read(Vec::with_capacity(64)));
            assert!(
                dropped.await.is_none(),
                "the read completes only after a poll"
            );
            compio::runtime::time::sleep(Duration::from_millis(2)).await;
            let read = async { Some(server.read(Vec::with_capacity(64)).await) };
            let give_up = async {
                compio::runtime::time::sleep(Duration::from_secs(2)).await;
                None
            };
            let Some((n, got)) = futures_lite::future::or(read, give_up).await else {
                panic!("round {round}: the dropped read's bytes were lost");
            };
            assert_eq!(n.unwrap(), 3, "round {round}");
            assert_eq!(got, vec![b'a' + round; 3], "round {round}");
        }
    });
}
