//! Plumbing: the server's real entry point runs on SimIo inside the executor.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tidemark::server::config::Config;
use tidemark::server::{run_shard, Node};
use tidemark_sim::disk::SimDisk;
use tidemark_sim::executor::{Executor, Owner, RunLimits, RunOutcome};
use tidemark_sim::faults::FaultConfig;
use tidemark_sim::io::SimIo;
use tidemark_sim::net::SimNet;

#[test]
fn run_shard_runs_on_sim_io() {
    let exec = Executor::new(1);
    let faults = FaultConfig::default();
    let disk = SimDisk::new(&exec, 1, faults.disk.clone());
    let net = SimNet::new(&exec, faults.net.clone());
    let config = Config {
        shards: 2,
        ..Config::default()
    };
    let port = config.port;
    let node = Node::new(config);
    let results: Rc<RefCell<Vec<Result<(), String>>>> = Rc::default();
    for shard in 0..2u16 {
        let io = SimIo::new(&exec, 1, 0, shard, &disk, &net);
        assert_eq!(tidemark::io::Io::driver_name(&io), "sim");
        let node = node.clone();
        let results = results.clone();
        exec.spawn(Owner::Node(1), async move {
            let result = run_shard(io, node, shard).await.map_err(|e| e.to_string());
            results.borrow_mut().push(result);
        });
    }
    let limits = RunLimits {
        max_steps: 1_000_000,
        max_time: Duration::from_secs(5),
    };
    let outcome = exec.run_until(limits, || false);
    // The stub returns an error at once; the real server keeps serving on its port.
    match outcome {
        RunOutcome::AllTasksFinished => {
            let results = results.borrow();
            assert_eq!(results.len(), 2);
            assert!(results.iter().all(Result::is_err), "{results:?}");
        }
        RunOutcome::TimeBudget | RunOutcome::Deadlock { .. } => {
            assert!(
                net.is_listening(1, port),
                "a running server must be listening"
            );
        }
        other => panic!("unexpected outcome {other:?}"),
    }
}
