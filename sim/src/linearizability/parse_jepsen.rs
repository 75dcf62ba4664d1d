//! Parser for Jepsen etcd register logs (`shared/linearizability-histories/jepsen/*.log`,
//! from Porcupine's test data): lines like `INFO  jepsen.util - 3 :invoke :cas [0 3]`
//! (fields separated by tabs or spaces): process id, event type, operation, argument.
//!
//! Event types: `:invoke` (call); `:ok` (returned, effect happened); `:fail :cas` (returned,
//! compare failed: no effect, but it constrains the value); `:fail :read` / `:fail :write`
//! (no effect: dropped); `:info` (outcome unknown: pending forever). A process whose last
//! call has no return is pending forever too. Times are line numbers.
//!
//! What can fail here: a malformed line, an unknown event or operation, a return without
//! an open call, or a second call while one is open ([`ParseError`], with the line number).

use std::collections::BTreeMap;
use std::fmt;

use super::history::{Completion, History, Operation};
use super::models::{Register, RegisterInput, RegisterOutput};

/// A reference-history line that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

pub(crate) fn error(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line: line + 1,
        message: message.into(),
    }
}

fn int(line: usize, token: &str) -> Result<i64, ParseError> {
    token
        .parse()
        .map_err(|_| error(line, format!("expected an integer, got {token:?}")))
}

fn parse_input(line: usize, f: &str, args: &[&str]) -> Result<RegisterInput, ParseError> {
    match (f, args) {
        (":read", _) => Ok(RegisterInput::Read),
        (":write", [v]) => Ok(RegisterInput::Write(int(line, v)?)),
        (":cas", [old, new]) => {
            let old = old
                .strip_prefix('[')
                .ok_or_else(|| error(line, "cas argument needs '['"))?;
            let new = new
                .strip_suffix(']')
                .ok_or_else(|| error(line, "cas argument needs ']'"))?;
            Ok(RegisterInput::Cas(int(line, old)?, int(line, new)?))
        }
        _ => Err(error(line, format!("unknown operation {f} {args:?}"))),
    }
}

/// Parses one etcd log into a register history.
pub fn parse_jepsen(text: &str) -> Result<History<Register>, ParseError> {
    let mut ops: Vec<Option<Operation<RegisterInput, RegisterOutput>>> = Vec::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    for (line, raw) in text.lines().enumerate() {
        let tokens: Vec<&str> = raw.split_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        let [_, _, "-", process, kind, f, args @ ..] = tokens.as_slice() else {
            return Err(error(line, format!("not a jepsen.util line: {raw:?}")));
        };
        let process: u64 = process
            .parse()
            .map_err(|_| error(line, format!("bad process id {process:?}")))?;
        let time = line as u64;
        if *kind == ":invoke" {
            if open.contains_key(&process) {
                return Err(error(line, format!("process {process} called twice")));
            }
            let input = parse_input(line, f, args)?;
            open.insert(process, ops.len());
            ops.push(Some(Operation {
                client: process,
                call: time,
                input,
                completion: None,
            }));
            continue;
        }
        let index = open
            .remove(&process)
            .ok_or_else(|| error(line, format!("process {process} returned without a call")))?;
        let slot = &mut ops[index];
        let output = match (*kind, *f) {
            (":ok", ":read") => match args {
                ["nil"] => RegisterOutput::Read(None),
                [v] => RegisterOutput::Read(Some(int(line, v)?)),
                _ => return Err(error(line, "read needs one value")),
            },
            (":ok", ":write" | ":cas") => RegisterOutput::Ok,
            (":fail", ":cas") => RegisterOutput::CasFailed,
            (":fail", _) => {
                *slot = None; // no effect, nothing observed
                continue;
            }
            (":info", _) => continue, // pending forever
            _ => return Err(error(line, format!("unknown event {kind} {f}"))),
        };
        if let Some(op) = slot.as_mut() {
            op.completion = Some(Completion { ret: time, output });
        }
    }
    let mut history = History::new();
    for op in ops.into_iter().flatten() {
        history
            .push(op)
            .map_err(|e| error(text.lines().count(), e.to_string()))?;
    }
    Ok(history)
}
