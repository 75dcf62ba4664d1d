//! The simulated clients' workload: which commands they send and what each reply means
//! for the reference model.
//!
//! Every client owns its keys, so the model of a key sees exactly one writer and stays
//! exact: string keys `c{i}:s{j}` (SET, SET EX, GET, APPEND, DEL, STRLEN, EXISTS), counter
//! keys `c{i}:n{j}` (INCRBY and GET only) and tagged keys `{c{i}}:t{j}` (one hash slot per
//! client: MSET across them must run on one shard). MGET mixes string and tagged keys so
//! it spans shards. Values are short; some are binary (any byte, `\r\n` included).
//! `SET … EX 1000` uses a TTL far beyond any run, so the model treats it as SET.
//!
//! Replies: a well-formed reply is *acknowledged* and goes through `Model::acked` (a model
//! violation = a wrong reply). An error reply is an *uncertain* outcome (AOF latched,
//! fsync timeout, cross-shard timeout …) unless it is one that a correct server never
//! sends for this workload (`WRONGTYPE`, `CROSSSLOT`, arity, syntax, not-an-integer):
//! those are violations too.
//!
//! What can fail here: `Violation`s naming the command, the key, and expected vs seen.

use bytes::Bytes;
use rand::Rng;
use tidemark::resp::Frame;

use crate::model::{Model, Op, Reply, Violation};

/// String keys per client.
pub const STRING_KEYS_PER_CLIENT: u32 = 6;
/// Counter keys per client.
pub const COUNTER_KEYS_PER_CLIENT: u32 = 3;
/// Tagged keys per client.
pub const TAGGED_KEYS_PER_CLIENT: u32 = 4;
/// Longest value a SET or APPEND writes, in bytes.
pub const VALUE_LEN_MAX_BYTES: usize = 40;
/// TTL of `SET … EX`, in seconds: far longer than any run, so it never expires.
pub const SET_EX_TTL_SECS: u64 = 1000;
/// Largest pipeline a client sends in one write, in commands.
pub const PIPELINE_COMMANDS_MAX: usize = 8;
/// Shared string keys `shared:s{j}` (every client writes them; checked for
/// linearizability, not by the possible-values model).
pub const SHARED_STRING_KEYS: u32 = 3;
/// Shared counter keys `shared:n{j}` (INCRBY, GET, SET of an integer, DEL, EXISTS).
pub const SHARED_COUNTER_KEYS: u32 = 2;
/// Percent of commands that go to a shared key.
pub const SHARED_PERCENT: u32 = 12;
/// Longest value a SET or APPEND writes to a shared string key, in bytes.
pub const SHARED_VALUE_LEN_MAX_BYTES: usize = 6;
/// Prefix of every shared key.
pub const SHARED_KEY_PREFIX: &[u8] = b"shared:";

/// True for a key every client reads and writes (`shared:…`).
pub fn is_shared_key(key: &[u8]) -> bool {
    key.starts_with(SHARED_KEY_PREFIX)
}

/// One workload command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A single-key command; `ex_secs` adds `EX n` to a SET.
    Single {
        /// The key.
        key: Vec<u8>,
        /// What it does to the key.
        op: Op,
        /// `SET key value EX n`.
        ex_secs: Option<u64>,
    },
    /// `MSET k1 v1 k2 v2 …` over one client's tagged keys (one shard).
    Mset(Vec<(Vec<u8>, Vec<u8>)>),
    /// `MGET k1 k2 …` over keys that may live on different shards.
    Mget(Vec<Vec<u8>>),
}

/// What a reply meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The reply was well-formed and possible; the model was updated.
    Acked,
    /// An error reply: the command may or may not have taken effect. Holds the text.
    Uncertain(String),
}

fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

fn value_text(value: &[u8]) -> String {
    if value.len() <= 24 && value.iter().all(|b| b.is_ascii_graphic()) {
        format!("{:?}", String::from_utf8_lossy(value))
    } else {
        format!("<{} bytes>", value.len())
    }
}

impl Command {
    /// The command as RESP arguments.
    pub fn args(&self) -> Vec<Bytes> {
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        match self {
            Command::Single { key, op, ex_secs } => {
                let key = b(key);
                match op {
                    Op::Set(v) => {
                        let mut args = vec![Bytes::from_static(b"SET"), key, b(v)];
                        if let Some(secs) = ex_secs {
                            args.push(Bytes::from_static(b"EX"));
                            args.push(Bytes::from(secs.to_string()));
                        }
                        args
                    }
                    Op::Get => vec![Bytes::from_static(b"GET"), key],
                    Op::IncrBy(n) => {
                        vec![
                            Bytes::from_static(b"INCRBY"),
                            key,
                            Bytes::from(n.to_string()),
                        ]
                    }
                    Op::Append(v) => vec![Bytes::from_static(b"APPEND"), key, b(v)],
                    Op::Del => vec![Bytes::from_static(b"DEL"), key],
                    Op::Strlen => vec![Bytes::from_static(b"STRLEN"), key],
                    Op::Exists => vec![Bytes::from_static(b"EXISTS"), key],
                }
            }
            Command::Mset(pairs) => {
                let mut args = vec![Bytes::from_static(b"MSET")];
                for (k, v) in pairs {
                    args.push(b(k));
                    args.push(b(v));
                }
                args
            }
            Command::Mget(keys) => {
                let mut args = vec![Bytes::from_static(b"MGET")];
                args.extend(keys.iter().map(|k| b(k)));
                args
            }
        }
    }

    /// A short human description, e.g. `SET c1:s2 "abc"`.
    pub fn describe(&self) -> String {
        match self {
            Command::Single { key, op, ex_secs } => {
                let k = key_text(key);
                match op {
                    Op::Set(v) => match ex_secs {
                        Some(s) => format!("SET {k} {} EX {s}", value_text(v)),
                        None => format!("SET {k} {}", value_text(v)),
                    },
                    Op::Get => format!("GET {k}"),
                    Op::IncrBy(n) => format!("INCRBY {k} {n}"),
                    Op::Append(v) => format!("APPEND {k} {}", value_text(v)),
                    Op::Del => format!("DEL {k}"),
                    Op::Strlen => format!("STRLEN {k}"),
                    Op::Exists => format!("EXISTS {k}"),
                }
            }
            Command::Mset(pairs) => {
                let parts: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{} {}", key_text(k), value_text(v)))
                    .collect();
                format!("MSET {}", parts.join(" "))
            }
            Command::Mget(keys) => {
                let parts: Vec<String> = keys.iter().map(|k| key_text(k)).collect();
                format!("MGET {}", parts.join(" "))
            }
        }
    }

    /// The keys this command changes (empty for reads).
    pub fn written_keys(&self) -> Vec<Vec<u8>> {
        match self {
            Command::Single { key, op, .. } if !crate::model::is_read(op) => vec![key.clone()],
            Command::Single { .. } | Command::Mget(_) => Vec::new(),
            Command::Mset(pairs) => pairs.iter().map(|(k, _)| k.clone()).collect(),
        }
    }

    /// Records that the command's outcome is unknown (no reply, or an error reply).
    pub fn uncertain(&self, model: &mut Model) {
        match self {
            Command::Single { key, .. } if is_shared_key(key) => {}
            Command::Single { key, op, .. } => model.uncertain(key, op),
            Command::Mset(pairs) => {
                for (k, v) in pairs {
                    model.uncertain(k, &Op::Set(v.clone()));
                }
            }
            Command::Mget(_) => {}
        }
    }

    /// Interprets `reply` and updates `model`. A violation means the server's reply was
    /// impossible for a correct server.
    pub fn apply_reply(&self, model: &mut Model, reply: &Frame) -> Result<Outcome, Violation> {
        if let Frame::Error(text) = reply {
            if is_impossible_error(text) {
                return Err(Violation(format!(
                    "{}: error reply {text:?}, which a correct server never gives here",
                    self.describe()
                )));
            }
            self.uncertain(model);
            return Ok(Outcome::Uncertain(text.clone()));
        }
        let wrong = || {
            Violation(format!(
                "{}: reply of the wrong shape: {reply:?}",
                self.describe()
            ))
        };
        match self {
            Command::Single { key, op, .. } => {
                let seen = single_reply(op, reply).ok_or_else(wrong)?;
                if is_shared_key(key) {
                    // Checked for linearizability at the end of the run (see `world`).
                    return Ok(Outcome::Acked);
                }
                model
                    .acked(key, op, &seen)
                    .map_err(|v| Violation(format!("{}: {}", self.describe(), v.0)))?;
            }
            Command::Mset(pairs) => {
                if !matches!(reply, Frame::Simple(s) if s == "OK") {
                    return Err(wrong());
                }
                for (k, v) in pairs {
                    model
                        .acked(k, &Op::Set(v.clone()), &Reply::Ok)
                        .map_err(|e| Violation(format!("{}: {}", self.describe(), e.0)))?;
                }
            }
            Command::Mget(keys) => {
                let Frame::Array(items) = reply else {
                    return Err(wrong());
                };
                if items.len() != keys.len() {
                    return Err(wrong());
                }
                for (k, item) in keys.iter().zip(items) {
                    let value = match item {
                        Frame::Bulk(v) => Some(v.to_vec()),
                        Frame::Null => None,
                        _ => return Err(wrong()),
                    };
                    model
                        .acked(k, &Op::Get, &Reply::Value(value))
                        .map_err(|e| Violation(format!("{}: {}", self.describe(), e.0)))?;
                }
            }
        }
        Ok(Outcome::Acked)
    }
}

/// The model's form of a well-formed reply to single-key command `op`, or `None` when the
/// reply has the wrong shape (error replies included).
pub fn single_reply(op: &Op, reply: &Frame) -> Option<Reply> {
    Some(match (op, reply) {
        (Op::Set(_), Frame::Simple(s)) if s == "OK" => Reply::Ok,
        (Op::Get, Frame::Bulk(v)) => Reply::Value(Some(v.to_vec())),
        (Op::Get, Frame::Null) => Reply::Value(None),
        (Op::IncrBy(_) | Op::Append(_) | Op::Del | Op::Strlen | Op::Exists, Frame::Integer(n)) => {
            Reply::Integer(*n)
        }
        _ => return None,
    })
}

/// Errors a correct server never returns for this workload.
fn is_impossible_error(text: &str) -> bool {
    const IMPOSSIBLE: [&str; 7] = [
        "WRONGTYPE",
        "CROSSSLOT",
        "ERR wrong number of arguments",
        "ERR syntax error",
        "ERR value is not an integer",
        "ERR unknown command",
        "ERR Protocol error",
    ];
    IMPOSSIBLE.iter().any(|p| text.starts_with(p))
}

/// Generates one client's commands from its own RNG stream.
pub struct Workload {
    client: u32,
}

impl Workload {
    /// The workload of client `client`.
    pub fn new(client: u32) -> Workload {
        Workload { client }
    }

    /// String key `j` of this client.
    pub fn string_key(&self, j: u32) -> Vec<u8> {
        format!("c{}:s{j}", self.client).into_bytes()
    }

    /// Counter key `j` of this client.
    pub fn counter_key(&self, j: u32) -> Vec<u8> {
        format!("c{}:n{j}", self.client).into_bytes()
    }

    /// Tagged key `j` of this client (all in one hash slot).
    pub fn tagged_key(&self, j: u32) -> Vec<u8> {
        format!("{{c{}}}:t{j}", self.client).into_bytes()
    }

    /// The next pipeline: one command, or (30%) 2..=8 commands sent in one write.
    pub fn next_batch(&self, rng: &mut impl Rng) -> Vec<Command> {
        let n = if rng.gen_bool(0.3) {
            rng.gen_range(2..=PIPELINE_COMMANDS_MAX)
        } else {
            1
        };
        (0..n).map(|_| self.next_command(rng)).collect()
    }

    /// One random command.
    pub fn next_command(&self, rng: &mut impl Rng) -> Command {
        let single = |key: Vec<u8>, op: Op| Command::Single {
            key,
            op,
            ex_secs: None,
        };
        if rng.gen_range(0..100) < SHARED_PERCENT {
            return shared_command(rng);
        }
        match rng.gen_range(0..100) {
            0..=19 => {
                let key = self.string_key(rng.gen_range(0..STRING_KEYS_PER_CLIENT));
                let ex_secs = rng.gen_bool(0.1).then_some(SET_EX_TTL_SECS);
                Command::Single {
                    key,
                    op: Op::Set(random_value(rng)),
                    ex_secs,
                }
            }
            20..=34 => single(self.any_key(rng), Op::Get),
            35..=49 => single(
                self.counter_key(rng.gen_range(0..COUNTER_KEYS_PER_CLIENT)),
                Op::IncrBy(rng.gen_range(-1000..=1000)),
            ),
            50..=59 => single(
                self.string_key(rng.gen_range(0..STRING_KEYS_PER_CLIENT)),
                Op::Append(random_value(rng)),
            ),
            60..=64 => single(
                self.string_key(rng.gen_range(0..STRING_KEYS_PER_CLIENT)),
                Op::Del,
            ),
            65..=69 => single(
                self.string_key(rng.gen_range(0..STRING_KEYS_PER_CLIENT)),
                Op::Strlen,
            ),
            70..=74 => single(self.any_key(rng), Op::Exists),
            75..=87 => {
                let count = rng.gen_range(1..=TAGGED_KEYS_PER_CLIENT);
                let first = rng.gen_range(0..TAGGED_KEYS_PER_CLIENT);
                let pairs = (0..count)
                    .map(|i| {
                        let j = (first + i) % TAGGED_KEYS_PER_CLIENT;
                        (self.tagged_key(j), random_value(rng))
                    })
                    .collect();
                Command::Mset(pairs)
            }
            _ => {
                let count = rng.gen_range(2..=5);
                let keys = (0..count)
                    .map(|_| {
                        if rng.gen_bool(0.5) {
                            self.string_key(rng.gen_range(0..STRING_KEYS_PER_CLIENT))
                        } else {
                            self.tagged_key(rng.gen_range(0..TAGGED_KEYS_PER_CLIENT))
                        }
                    })
                    .collect();
                Command::Mget(keys)
            }
        }
    }

    fn any_key(&self, rng: &mut impl Rng) -> Vec<u8> {
        match rng.gen_range(0..3) {
            0 => self.string_key(rng.gen_range(0..STRING_KEYS_PER_CLIENT)),
            1 => self.counter_key(rng.gen_range(0..COUNTER_KEYS_PER_CLIENT)),
            _ => self.tagged_key(rng.gen_range(0..TAGGED_KEYS_PER_CLIENT)),
        }
    }
}

/// One random command on a shared key: strings get SET, GET, APPEND, DEL, STRLEN and
/// EXISTS; counters get INCRBY, GET, SET of an integer, DEL and EXISTS (never a
/// non-integer, so INCRBY never replies `ERR value is not an integer`).
pub fn shared_command(rng: &mut impl Rng) -> Command {
    let single = |key: Vec<u8>, op: Op| Command::Single {
        key,
        op,
        ex_secs: None,
    };
    let total = SHARED_STRING_KEYS + SHARED_COUNTER_KEYS;
    let j = rng.gen_range(0..total);
    if j < SHARED_STRING_KEYS {
        let key = format!("shared:s{j}").into_bytes();
        let op = match rng.gen_range(0..100) {
            0..=29 => Op::Set(short_value(rng)),
            30..=59 => Op::Get,
            60..=69 => Op::Append(short_value(rng)),
            70..=79 => Op::Del,
            80..=89 => Op::Strlen,
            _ => Op::Exists,
        };
        single(key, op)
    } else {
        let key = format!("shared:n{}", j - SHARED_STRING_KEYS).into_bytes();
        let op = match rng.gen_range(0..100) {
            0..=44 => Op::IncrBy(rng.gen_range(-100..=100)),
            45..=84 => Op::Get,
            85..=91 => Op::Set(rng.gen_range(-100..=100i64).to_string().into_bytes()),
            92..=95 => Op::Del,
            _ => Op::Exists,
        };
        single(key, op)
    }
}

/// A value of 0..=`SHARED_VALUE_LEN_MAX_BYTES` letters `a`..=`h`.
fn short_value(rng: &mut impl Rng) -> Vec<u8> {
    let len = rng.gen_range(0..=SHARED_VALUE_LEN_MAX_BYTES);
    (0..len).map(|_| b"abcdefgh"[rng.gen_range(0..8)]).collect()
}

/// A value of 0..=40 bytes: 30% arbitrary bytes, otherwise lowercase letters and digits.
pub fn random_value(rng: &mut impl Rng) -> Vec<u8> {
    let len = rng.gen_range(0..=VALUE_LEN_MAX_BYTES);
    if rng.gen_bool(0.3) {
        (0..len).map(|_| rng.gen::<u8>()).collect()
    } else {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn replies_update_the_model_and_wrong_ones_are_violations() {
        let mut model = Model::new();
        let set = Command::Single {
            key: b"c0:s0".to_vec(),
            op: Op::Set(b"v".to_vec()),
            ex_secs: Some(SET_EX_TTL_SECS),
        };
        assert_eq!(set.args().len(), 5);
        assert_eq!(
            set.apply_reply(&mut model, &Frame::ok()),
            Ok(Outcome::Acked)
        );
        let get = Command::Mget(vec![b"c0:s0".to_vec(), b"c0:s1".to_vec()]);
        let good = Frame::Array(vec![Frame::bulk(&b"v"[..]), Frame::Null]);
        assert_eq!(get.apply_reply(&mut model, &good), Ok(Outcome::Acked));
        let bad = Frame::Array(vec![Frame::Null, Frame::Null]);
        assert!(get.apply_reply(&mut model, &bad).is_err(), "lost write");
        assert!(
            set.apply_reply(&mut model, &Frame::Integer(1)).is_err(),
            "shape"
        );
        let wrongtype =
            Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert!(set.apply_reply(&mut model, &wrongtype).is_err());
        let misconf = Frame::error("MISCONF Errors writing to the AOF file: EIO");
        assert!(matches!(
            set.apply_reply(&mut model, &misconf),
            Ok(Outcome::Uncertain(_))
        ));
    }

    #[test]
    fn clients_only_touch_their_own_keys() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let w = Workload::new(3);
        for _ in 0..500 {
            for cmd in w.next_batch(&mut rng) {
                for arg in cmd.args().iter().skip(1) {
                    let text = String::from_utf8_lossy(arg);
                    if text.contains(':') && (text.starts_with('c') || text.starts_with('{')) {
                        assert!(
                            text.starts_with("c3:") || text.starts_with("{c3}:"),
                            "{text}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn shared_keys_bypass_the_model_and_counters_stay_integers() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut model = Model::new();
        let mut shared = 0;
        for _ in 0..2000 {
            let cmd = Workload::new(1).next_command(&mut rng);
            let Command::Single { key, op, .. } = &cmd else {
                continue;
            };
            if !is_shared_key(key) {
                continue;
            }
            shared += 1;
            if key.starts_with(b"shared:n") {
                if let Op::Set(v) = op {
                    let text = String::from_utf8_lossy(v);
                    assert!(text.parse::<i64>().is_ok(), "{text}");
                }
                assert!(!matches!(op, Op::Append(_) | Op::Strlen), "{op:?}");
            } else {
                assert!(!matches!(op, Op::IncrBy(_)), "{op:?}");
            }
            // Any well-formed reply is accepted: shared keys are checked for
            // linearizability, not by the model.
            let reply = match op {
                Op::Set(_) => Frame::ok(),
                Op::Get => Frame::bulk(&b"x"[..]),
                _ => Frame::Integer(7),
            };
            assert_eq!(cmd.apply_reply(&mut model, &reply), Ok(Outcome::Acked));
            assert!(cmd.apply_reply(&mut model, &Frame::Array(vec![])).is_err());
        }
        assert!(shared > 100, "too few shared commands: {shared}");
        assert!(model.keys().iter().all(|k| !is_shared_key(k)));
    }
}
