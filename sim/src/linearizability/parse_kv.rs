//! Parser for Porcupine's key-value histories (`shared/linearizability-histories/kv/*.txt`):
//! one EDN-like map per line, e.g.
//! `{:process 4, :type :invoke, :f :append, :key "1", :value "x 4 0 y"}`.
//!
//! `:type` is `:invoke` (call), `:ok` (returned; for `:get` the value read, `nil` or `""`
//! when unset), `:fail` (no effect: dropped) or `:info` (outcome unknown: pending forever).
//! An invoke without a return is pending forever. Times are line numbers. The scanner is
//! iterative and understands only flat maps of keywords, strings (with `\"` and `\\`
//! escapes), integers and `nil`.
//!
//! What can fail here: a malformed line, a missing field, a return without an open call or
//! a second call while one is open ([`ParseError`], with the line number).

use std::collections::BTreeMap;

use super::history::{Completion, History, Operation};
use super::models::{KvInput, KvMap, KvOp, KvOutput};
use super::parse_jepsen::{error, ParseError};

/// Most fields in one map (a line has five).
const MAP_FIELDS_MAX: usize = 16;

/// One scalar of the EDN subset.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scalar {
    Keyword(String),
    Str(Vec<u8>),
    Int(i64),
    Nil,
}

fn scan_map(line: usize, raw: &str) -> Result<BTreeMap<String, Scalar>, ParseError> {
    let bytes = raw.trim().as_bytes();
    let inner = bytes
        .strip_prefix(b"{")
        .and_then(|b| b.strip_suffix(b"}"))
        .ok_or_else(|| error(line, "expected {...}"))?;
    let mut fields = BTreeMap::new();
    let mut at = 0;
    let skip = |at: &mut usize| {
        while *at < inner.len() && (inner[*at].is_ascii_whitespace() || inner[*at] == b',') {
            *at += 1;
        }
    };
    let token = |at: &mut usize| {
        let start = *at;
        while *at < inner.len() && !inner[*at].is_ascii_whitespace() && inner[*at] != b',' {
            *at += 1;
        }
        String::from_utf8_lossy(&inner[start..*at]).into_owned()
    };
    loop {
        skip(&mut at);
        if at == inner.len() {
            return Ok(fields);
        }
        if fields.len() >= MAP_FIELDS_MAX {
            return Err(error(line, format!("more than {MAP_FIELDS_MAX} fields")));
        }
        let name = token(&mut at);
        let name = name
            .strip_prefix(':')
            .ok_or_else(|| error(line, format!("field name {name:?} is not a keyword")))?
            .to_string();
        skip(&mut at);
        let value = if inner.get(at) == Some(&b'"') {
            at += 1;
            let mut text = Vec::new();
            loop {
                match inner.get(at) {
                    None => return Err(error(line, "unterminated string")),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        let escaped =
                            *inner.get(at + 1).ok_or_else(|| error(line, "bad escape"))?;
                        text.push(escaped);
                        at += 2;
                    }
                    Some(&c) => {
                        text.push(c);
                        at += 1;
                    }
                }
            }
            at += 1;
            Scalar::Str(text)
        } else {
            let word = token(&mut at);
            if let Some(keyword) = word.strip_prefix(':') {
                Scalar::Keyword(keyword.to_string())
            } else if word == "nil" {
                Scalar::Nil
            } else {
                Scalar::Int(
                    word.parse()
                        .map_err(|_| error(line, format!("bad value {word:?} for :{name}")))?,
                )
            }
        };
        fields.insert(name, value);
    }
}

fn field<'a>(
    line: usize,
    fields: &'a BTreeMap<String, Scalar>,
    name: &str,
) -> Result<&'a Scalar, ParseError> {
    fields
        .get(name)
        .ok_or_else(|| error(line, format!("missing :{name}")))
}

fn keyword<'a>(
    line: usize,
    fields: &'a BTreeMap<String, Scalar>,
    name: &str,
) -> Result<&'a str, ParseError> {
    match field(line, fields, name)? {
        Scalar::Keyword(k) => Ok(k),
        other => Err(error(
            line,
            format!(":{name} should be a keyword, got {other:?}"),
        )),
    }
}

fn string(
    line: usize,
    fields: &BTreeMap<String, Scalar>,
    name: &str,
) -> Result<Vec<u8>, ParseError> {
    match field(line, fields, name)? {
        Scalar::Str(s) => Ok(s.clone()),
        Scalar::Nil => Ok(Vec::new()),
        other => Err(error(
            line,
            format!(":{name} should be a string, got {other:?}"),
        )),
    }
}

/// Parses one kv history.
pub fn parse_kv(text: &str) -> Result<History<KvMap>, ParseError> {
    let mut ops: Vec<Option<Operation<KvInput, KvOutput>>> = Vec::new();
    let mut open: BTreeMap<i64, usize> = BTreeMap::new();
    for (line, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let fields = scan_map(line, raw)?;
        let Scalar::Int(process) = *field(line, &fields, "process")? else {
            return Err(error(line, ":process should be an integer"));
        };
        let kind = keyword(line, &fields, "type")?;
        let f = keyword(line, &fields, "f")?;
        let time = line as u64;
        if kind == "invoke" {
            if open.contains_key(&process) {
                return Err(error(line, format!("process {process} called twice")));
            }
            let key = string(line, &fields, "key")?;
            let op = match f {
                "get" => KvOp::Get,
                "put" => KvOp::Put(string(line, &fields, "value")?),
                "append" => KvOp::Append(string(line, &fields, "value")?),
                _ => return Err(error(line, format!("unknown operation :{f}"))),
            };
            open.insert(process, ops.len());
            ops.push(Some(Operation {
                client: process as u64,
                call: time,
                input: KvInput { key, op },
                completion: None,
            }));
            continue;
        }
        let index = open
            .remove(&process)
            .ok_or_else(|| error(line, format!("process {process} returned without a call")))?;
        let output = match (kind, f) {
            ("ok", "get") => KvOutput::Value(string(line, &fields, "value")?),
            ("ok", "put" | "append") => KvOutput::Ok,
            ("fail", _) => {
                ops[index] = None;
                continue;
            }
            ("info", _) => continue,
            _ => return Err(error(line, format!("unknown event :{kind} :{f}"))),
        };
        if let Some(op) = ops[index].as_mut() {
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
