//! SimNet: in-order delivery across random read splits, connection spreading across the
//! shards of one node, refusal, resets on node kill, EOF on drop.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;

use tidemark::io::{Listener, Net, Stream};
use tidemark_sim::executor::{Executor, Owner, RunOutcome};
use tidemark_sim::faults::NetFaults;
use tidemark_sim::net::SimNet;

use crate::limits;

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Echo server on node 1 (reads to EOF, then writes it all back), one client writing
/// `data` in chunks; returns what the client read back and how many reads the server
/// needed.
fn echo(seed: u64, data: Vec<u8>, faults: NetFaults) -> (Vec<u8>, usize) {
    let exec = Executor::new(seed);
    let net = SimNet::new(&exec, faults);
    let server_reads = Rc::new(Cell::new(0usize));
    let node_net = net.for_node(1);
    let reads = server_reads.clone();
    exec.spawn(Owner::Node(1), async move {
        let listener = node_net.bind("0.0.0.0:6379").await.expect("bind");
        let (mut stream, _peer) = listener.accept().await.expect("accept");
        // Read everything first: echoing while the client is still writing would deadlock
        // through the small pipes (the simulator reports that as a deadlock).
        let mut all = Vec::new();
        loop {
            let (res, buf) = stream.read(Vec::with_capacity(4096)).await;
            let n = res.expect("server read");
            if n == 0 {
                break;
            }
            reads.set(reads.get() + 1);
            all.extend_from_slice(&buf);
        }
        let (res, _) = stream.write_all(all).await;
        res.expect("server write");
        stream.shutdown().await.expect("shutdown");
    });
    let net2 = net.clone();
    let exec2 = exec.clone();
    let echoed = exec.block_on(Owner::Client(0), limits(), async move {
        let mut stream = loop {
            match net2
                .connect(Owner::Client(0), &SimNet::node_addr(1, 6379))
                .await
            {
                Ok(s) => break s,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
                    exec2.sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        };
        let mut sent = 0;
        let mut got = Vec::new();
        while sent < data.len() {
            let end = (sent + 1000).min(data.len());
            let (res, _) = stream.write_all(data[sent..end].to_vec()).await;
            res.expect("client write");
            sent = end;
        }
        stream.shutdown().await.expect("client shutdown");
        loop {
            let (res, buf) = stream.read(Vec::with_capacity(4096)).await;
            match res.expect("client read") {
                0 => break,
                _ => got.extend_from_slice(&buf),
            }
        }
        got
    });
    (echoed.expect("client finishes"), server_reads.get())
}

#[test]
fn all_bytes_arrive_in_order_across_random_splits() {
    let data = payload(20_000);
    let mut split_seen = false;
    for seed in 0..5 {
        let faults = NetFaults {
            split_read_rate: 1.0,
            pipe_capacity_bytes: 700,
            ..NetFaults::default()
        };
        let (got, reads) = echo(seed, data.clone(), faults);
        assert_eq!(got, data, "seed {seed}: echo differs");
        // 20 writes of 1000 bytes through a 700-byte pipe with random splits.
        split_seen |= reads > 40;
    }
    assert!(split_seen, "reads must split at arbitrary boundaries");
}

#[test]
fn one_byte_pipes_still_deliver_everything() {
    let data = payload(3_000);
    let faults = NetFaults {
        pipe_capacity_bytes: 1,
        ..NetFaults::default()
    };
    let (got, reads) = echo(77, data.clone(), faults);
    assert_eq!(got, data);
    assert_eq!(reads, 3_000);
}

#[test]
fn shards_of_one_node_share_an_address() {
    let exec = Executor::new(21);
    let net = SimNet::new(&exec, NetFaults::default());
    let accepted = Rc::new(RefCell::new([0usize; 2]));
    for shard in 0..2 {
        let node_net = net.for_node(1);
        let accepted = accepted.clone();
        exec.spawn(Owner::Node(1), async move {
            let listener = node_net.bind("127.0.0.1:6379").await.expect("bind");
            assert_eq!(listener.local_addr(), "10.0.0.1:6379");
            let mut held = Vec::new();
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                accepted.borrow_mut()[shard] += 1;
                held.push(stream);
            }
        });
    }
    let net2 = net.clone();
    let exec2 = exec.clone();
    let connected = exec.block_on(Owner::Client(0), limits(), async move {
        while !net2.is_listening(1, 6379) {
            exec2.yield_now().await;
        }
        exec2.sleep(std::time::Duration::from_millis(1)).await; // both shards bound
        let mut streams = Vec::new();
        for _ in 0..20 {
            streams.push(
                net2.connect(Owner::Client(0), "10.0.0.1:6379")
                    .await
                    .expect("connect"),
            );
        }
        exec2.sleep(std::time::Duration::from_millis(5)).await;
        streams.len()
    });
    assert_eq!(connected.expect("clients finish"), 20);
    let counts = *accepted.borrow();
    assert_eq!(counts[0] + counts[1], 20);
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "connections spread over both shards: {counts:?}"
    );
}

#[test]
fn connect_without_listener_is_refused() {
    let exec = Executor::new(1);
    let net = SimNet::new(&exec, NetFaults::default());
    let err = exec
        .block_on(Owner::Client(0), limits(), async move {
            net.connect(Owner::Client(0), "10.0.0.9:6379").await.err()
        })
        .expect("finishes")
        .expect("refused");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn killed_node_resets_streams_and_stops_listening() {
    let exec = Executor::new(31);
    let net = SimNet::new(&exec, NetFaults::default());
    let node_net = net.for_node(2);
    exec.spawn(Owner::Node(2), async move {
        let listener = node_net.bind("0.0.0.0:7000").await.expect("bind");
        let (mut stream, _) = listener.accept().await.expect("accept");
        let _ = stream.read(Vec::with_capacity(16)).await; // blocks until killed
    });
    let net2 = net.clone();
    let exec2 = exec.clone();
    let client = exec.spawn(Owner::Client(0), async move {
        while !net2.is_listening(2, 7000) {
            exec2.yield_now().await;
        }
        let mut stream = net2
            .connect(Owner::Client(0), "10.0.0.2:7000")
            .await
            .expect("connect");
        let (res, _) = stream.read(Vec::with_capacity(16)).await;
        assert_eq!(
            res.expect_err("reset").kind(),
            io::ErrorKind::ConnectionReset
        );
        let (res, _) = stream.write_all(b"x".to_vec()).await;
        assert_eq!(
            res.expect_err("reset").kind(),
            io::ErrorKind::ConnectionReset
        );
        let again = net2.connect(Owner::Client(0), "10.0.0.2:7000").await;
        assert_eq!(
            again.err().expect("refused").kind(),
            io::ErrorKind::ConnectionRefused
        );
    });
    let net3 = net.clone();
    let exec3 = exec.clone();
    exec.spawn(Owner::World, async move {
        exec3.sleep(std::time::Duration::from_millis(10)).await;
        exec3.kill_owner(Owner::Node(2));
        assert_eq!(net3.kill_node(2), 1);
    });
    assert_eq!(
        exec.run_until(limits(), || false),
        RunOutcome::AllTasksFinished
    );
    assert_eq!(
        exec.task_count(Owner::Client(0)),
        0,
        "client task {client} finished"
    );
    assert!(!net.is_listening(2, 7000));
}

#[test]
fn dropped_stream_reads_as_eof_and_writes_fail() {
    let exec = Executor::new(41);
    let net = SimNet::new(&exec, NetFaults::default());
    let node_net = net.for_node(1);
    exec.spawn(Owner::Node(1), async move {
        let listener = node_net.bind("0.0.0.0:1").await.expect("bind");
        let (mut stream, _) = listener.accept().await.expect("accept");
        let (res, _) = stream.write_all(b"bye".to_vec()).await;
        res.expect("write");
        drop(stream);
    });
    let net2 = net.clone();
    let exec2 = exec.clone();
    let out = exec.block_on(Owner::Client(0), limits(), async move {
        while !net2.is_listening(1, 1) {
            exec2.yield_now().await;
        }
        let mut stream = net2
            .connect(Owner::Client(0), "10.0.0.1:1")
            .await
            .expect("connect");
        let mut got = Vec::new();
        loop {
            let (res, buf) = stream.read(Vec::with_capacity(16)).await;
            if res.expect("read") == 0 {
                break;
            }
            got.extend_from_slice(&buf);
        }
        let (res, _) = stream.write_all(b"late".to_vec()).await;
        (got, res.err().map(|e| e.kind()))
    });
    let (got, write_err) = out.expect("client finishes");
    assert_eq!(got, b"bye");
    assert_eq!(write_err, Some(io::ErrorKind::BrokenPipe));
}

#[test]
fn reset_hits_both_ends() {
    let exec = Executor::new(51);
    let net = SimNet::new(&exec, NetFaults::default());
    let node_net = net.for_node(1);
    let server_err = Rc::new(Cell::new(None));
    let err_slot = server_err.clone();
    exec.spawn(Owner::Node(1), async move {
        let listener = node_net.bind("0.0.0.0:5").await.expect("bind");
        let (mut stream, _) = listener.accept().await.expect("accept");
        let (res, _) = stream.read(Vec::with_capacity(8)).await;
        err_slot.set(res.err().map(|e| e.kind()));
    });
    let net2 = net.clone();
    let exec2 = exec.clone();
    let client_err = exec.block_on(Owner::Client(0), limits(), async move {
        while !net2.is_listening(1, 5) {
            exec2.yield_now().await;
        }
        let mut stream = net2
            .connect(Owner::Client(0), "10.0.0.1:5")
            .await
            .expect("connect");
        exec2.sleep(std::time::Duration::from_millis(1)).await;
        assert!(net2.reset(stream.conn_id()));
        let (res, _) = stream.read(Vec::with_capacity(8)).await;
        res.err().map(|e| e.kind())
    });
    assert_eq!(
        exec.run_until(limits(), || false),
        RunOutcome::AllTasksFinished
    );
    assert_eq!(
        client_err.expect("client finishes"),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(server_err.get(), Some(io::ErrorKind::ConnectionReset));
}

#[test]
fn partition_delays_delivery_until_healed() {
    let exec = Executor::new(61);
    let net = SimNet::new(&exec, NetFaults::default());
    let node_net = net.for_node(1);
    let exec1 = exec.clone();
    let received_at = Rc::new(Cell::new(None));
    let slot = received_at.clone();
    exec.spawn(Owner::Node(1), async move {
        let listener = node_net.bind("0.0.0.0:9").await.expect("bind");
        let (mut stream, _) = listener.accept().await.expect("accept");
        let (res, buf) = stream.read(Vec::with_capacity(8)).await;
        assert!(res.expect("read") > 0);
        assert!(b"ping".starts_with(&buf));
        slot.set(Some(exec1.now()));
    });
    let net2 = net.clone();
    let exec2 = exec.clone();
    exec.spawn(Owner::Client(0), async move {
        while !net2.is_listening(1, 9) {
            exec2.yield_now().await;
        }
        let mut stream = net2
            .connect(Owner::Client(0), "10.0.0.1:9")
            .await
            .expect("connect");
        net2.set_partitioned(1, true);
        let (res, _) = stream.write_all(b"ping".to_vec()).await;
        res.expect("writes still buffer");
        exec2.sleep(std::time::Duration::from_millis(50)).await;
        net2.set_partitioned(1, false);
        let _keep_open = stream;
        exec2.sleep(std::time::Duration::from_millis(5)).await;
    });
    assert_eq!(
        exec.run_until(limits(), || false),
        RunOutcome::AllTasksFinished
    );
    let at = received_at.get().expect("delivered after healing");
    assert!(at >= std::time::Duration::from_millis(50), "{at:?}");
}
