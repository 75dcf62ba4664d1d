//! Helpers shared by the linearizability test files: build a history from rows, check it
//! with the default budget.
#![allow(dead_code)]

use tidemark_sim::linearizability::{
    check_history, Budget, Completion, History, Model, Operation, Verdict,
};

/// Builds a history from `(client, call, ret or None, input, output or None)`.
/// `(client, call, ret or None, input, output or None)`.
pub type Row<M> = (
    u64,
    u64,
    Option<u64>,
    <M as Model>::Input,
    Option<<M as Model>::Output>,
);

pub fn history<M: Model>(ops: Vec<Row<M>>) -> History<M> {
    let mut history = History::new();
    for (client, call, ret, input, output) in ops {
        let completion = ret.map(|ret| Completion {
            ret,
            output: output.expect("a completed op needs an output"),
        });
        history
            .push(Operation {
                client,
                call,
                input,
                completion,
            })
            .unwrap();
    }
    history
}

pub fn check<M: Model>(h: &History<M>) -> Verdict {
    check_history(h, Budget::DEFAULT)
}
