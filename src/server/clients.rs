//! The node-wide client registry and the CLIENT command (SETNAME, GETNAME, ID, INFO, LIST,
//! KILL, NO-EVICT, GETREDIR, REPLY ON, HELP), with Redis 7.0 replies and errors
//! (redis.io/commands/client-list, checked against redis-server 7.0.15).
//!
//! Every connection registers a [`ClientShared`] in [`Registry`] (one per node, behind a
//! mutex taken only on connect, disconnect, CLIENT LIST and CLIENT KILL). The connection
//! updates its own entry's small per-client mutex once per command. CLIENT KILL on any
//! shard thread sets the victim's kill flag and wakes it through an `event_listener::Event`;
//! the victim's connection task sees the flag before its next command or while waiting to
//! read, and closes. Times come from the seam's `Clock` (the caller passes `now_ms`).
//!
//! What can fail: bad arguments (the Redis error replies); a poisoned lock is treated as
//! an empty registry / default state, never a panic.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::resp::{Frame, Protocol};
use crate::server::conn::Client;

/// Longest client name accepted by CLIENT SETNAME / HELLO SETNAME, in bytes.
pub const CLIENT_NAME_LEN_MAX_BYTES: usize = 1024;
/// Longest last-command text kept per client (`cmd=` in CLIENT LIST), in bytes.
const LAST_COMMAND_LEN_MAX_BYTES: usize = 64;
/// Read buffer size reported as `rbs=` (the connection's read chunk).
const READ_BUFFER_BYTES: usize = crate::server::conn::READ_CHUNK_BYTES;

/// The mutable, per-command part of a client's registry entry.
#[derive(Clone, Debug)]
pub struct ClientState {
    /// CLIENT SETNAME / HELLO SETNAME; empty when unset.
    pub name: String,
    /// Last command, lowercase, `container|sub` for container commands (`cmd=`).
    pub last_command: String,
    /// Wall-clock ms of the last command (for `idle=`).
    pub last_interaction_ms: u64,
    /// Selected database (`db=`).
    pub db: u32,
    /// Protocol spoken (`resp=`).
    pub protocol: Protocol,
    /// `flags=` letters, `N` when none (other modules may set e.g. `x` for MULTI, `P`).
    pub flags: String,
    /// Channel subscriptions (`sub=`), pattern subscriptions (`psub=`).
    pub sub: usize,
    /// Pattern subscriptions (`psub=`).
    pub psub: usize,
    /// Commands queued in MULTI (`multi=`), -1 outside MULTI.
    pub multi: i64,
}

/// One client's registry entry, shared between its connection task and CLIENT commands
/// run by any shard thread.
#[derive(Debug)]
pub struct ClientShared {
    /// CLIENT ID.
    pub id: u64,
    /// Peer `ip:port` (`addr=`).
    pub addr: String,
    /// Local `ip:port` the client connected to (`laddr=`).
    pub laddr: String,
    /// Wall-clock ms at connect (for `age=`).
    pub created_ms: u64,
    state: Mutex<ClientState>,
    killed: AtomicBool,
    kill_event: event_listener::Event,
}

impl ClientShared {
    /// A new entry; `now_ms` is the wall clock at connect.
    pub fn new(id: u64, addr: String, laddr: String, now_ms: u64) -> ClientShared {
        ClientShared {
            id,
            addr,
            laddr,
            created_ms: now_ms,
            state: Mutex::new(ClientState {
                name: String::new(),
                last_command: "NULL".to_string(),
                last_interaction_ms: now_ms,
                db: 0,
                protocol: Protocol::Resp2,
                flags: "N".to_string(),
                sub: 0,
                psub: 0,
                multi: -1,
            }),
            killed: AtomicBool::new(false),
            kill_event: event_listener::Event::new(),
        }
    }

    /// The mutable state (a poisoned lock is recovered: the state is plain data).
    pub fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client's name (`None` when unset).
    pub fn name(&self) -> Option<String> {
        let state = self.state();
        (!state.name.is_empty()).then(|| state.name.clone())
    }

    /// Records the start of a command: its name (`container|sub` for CLIENT, CONFIG …)
    /// and the time.
    pub fn begin_command(&self, now_ms: u64, args: &[Bytes]) {
        let mut state = self.state();
        state.last_interaction_ms = now_ms;
        state.last_command.clear();
        let Some(name) = args.first() else { return };
        push_lower(&mut state.last_command, name);
        let container = crate::cmd::lookup(name).is_some_and(|s| {
            matches!(
                s.name,
                "client" | "config" | "command" | "debug" | "slowlog" | "function" | "script"
            )
        });
        if let (true, Some(sub)) = (container, args.get(1)) {
            state.last_command.push('|');
            push_lower(&mut state.last_command, sub);
        }
    }

    /// Records what a command changed in the connection (database, protocol).
    pub fn end_command(&self, client: &Client) {
        let mut state = self.state();
        state.db = client.db_index;
        state.protocol = client.protocol;
    }

    /// Marks the client killed and wakes its connection task (any thread).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.kill_event.notify(usize::MAX);
    }

    /// True once CLIENT KILL chose this client: its connection must close.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Runs `work` (e.g. a socket read) unless the client is killed first: `None` when
    /// killed (then `work` is dropped, cancelling it).
    pub async fn until_killed<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        futures_lite::future::or(async { Some(work.await) }, async {
            loop {
                if self.is_killed() {
                    return None;
                }
                let listener = self.kill_event.listen();
                if self.is_killed() {
                    return None;
                }
                listener.await;
            }
        })
        .await
    }

    /// The CLIENT LIST line of this client (ending in `\n`), Redis 7.0 field order.
    /// Memory and buffer fields tidemark does not track are reported as 0; `fd=-1`
    /// because the IO seam does not expose descriptors.
    pub fn info_line(&self, now_ms: u64) -> String {
        let state = self.state().clone();
        let age_s = now_ms.saturating_sub(self.created_ms) / 1000;
        let idle_s = now_ms.saturating_sub(state.last_interaction_ms) / 1000;
        format!(
            "id={} addr={} laddr={} fd=-1 name={} age={age_s} idle={idle_s} flags={} db={} \
             sub={} psub={} ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 \
             rbs={READ_BUFFER_BYTES} rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} \
             user=default redir=-1 resp={}\n",
            self.id,
            self.addr,
            self.laddr,
            state.name,
            state.flags,
            state.db,
            state.sub,
            state.psub,
            state.multi,
            state.last_command,
            state.protocol.number(),
        )
    }
}

fn push_lower(out: &mut String, bytes: &[u8]) {
    let room = LAST_COMMAND_LEN_MAX_BYTES.saturating_sub(out.len());
    out.extend(
        bytes
            .iter()
            .take(room)
            .map(|b| char::from(b.to_ascii_lowercase()))
            .filter(|c| c.is_ascii_graphic()),
    );
}

/// Every connected client of a node, by id.
#[derive(Default)]
pub struct Registry {
    clients: Mutex<BTreeMap<u64, Arc<ClientShared>>>,
}

/// Removes its client from the registry when dropped (the connection task ended).
pub struct Registration<'a> {
    registry: &'a Registry,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<ClientShared>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `client`; it stays listed until the returned guard drops.
    pub fn register(&self, client: Arc<ClientShared>) -> Registration<'_> {
        let id = client.id;
        self.lock().insert(id, client);
        Registration { registry: self, id }
    }

    /// Every registered client, by ascending id.
    pub fn snapshot(&self) -> Vec<Arc<ClientShared>> {
        self.lock().values().cloned().collect()
    }

    /// Number of registered clients.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no client is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn wrong_sub_args(sub: &[u8]) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for 'client|{}' command",
        String::from_utf8_lossy(sub)
    ))
}

/// Checks a client name as Redis does (no spaces, newlines or special characters).
pub fn valid_name(name: &[u8]) -> Result<(), Frame> {
    if name.len() > CLIENT_NAME_LEN_MAX_BYTES || name.iter().any(|&b| b <= b' ' || b > b'~') {
        return Err(Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// Sets (or with an empty `name`, clears) the client's name after [`valid_name`].
pub fn set_name(client: &Client, name: &[u8]) -> Result<(), Frame> {
    valid_name(name)?;
    client.shared.state().name = String::from_utf8_lossy(name).into_owned();
    Ok(())
}

/// Runs `CLIENT <sub> ...` for `client`; `now_ms` is the wall clock (seam `Clock`).
pub fn command(registry: &Registry, client: &Client, args: &[Bytes], now_ms: u64) -> Frame {
    let sub = args[1].to_ascii_lowercase();
    let n = args.len();
    let arity_ok = match sub.as_slice() {
        b"id" | b"info" | b"getname" | b"getredir" | b"help" | b"unpause" | b"trackinginfo" => {
            n == 2
        }
        b"setname" | b"no-evict" | b"reply" | b"caching" => n == 3,
        b"kill" | b"pause" | b"tracking" | b"unblock" => n >= 3,
        b"list" => n >= 2,
        b"setinfo" => n == 4,
        _ => {
            return Frame::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            ))
        }
    };
    if !arity_ok {
        return wrong_sub_args(&sub);
    }
    match sub.as_slice() {
        b"id" => Frame::Integer(client.id as i64),
        b"getname" => client.shared.name().map_or(Frame::Null, Frame::bulk),
        b"setname" => match set_name(client, &args[2]) {
            Ok(()) => Frame::ok(),
            Err(error) => error,
        },
        b"info" => Frame::Verbatim(Bytes::from(client.shared.info_line(now_ms))),
        b"list" => list(registry, &args[2..], now_ms),
        b"kill" => kill(registry, client, &args[2..], now_ms),
        b"no-evict" | b"caching" if on_off(&args[2]).is_some() => Frame::ok(),
        b"reply" if args[2].eq_ignore_ascii_case(b"on") => Frame::ok(),
        b"getredir" => Frame::Integer(-1),
        b"setinfo" => Frame::ok(),
        b"help" => help(),
        b"no-evict" | b"reply" | b"caching" => Frame::error("ERR syntax error"),
        _ => Frame::error(format!(
            "ERR CLIENT {} is not supported by tidemark",
            String::from_utf8_lossy(&args[1]).to_ascii_uppercase()
        )),
    }
}

fn on_off(word: &[u8]) -> Option<bool> {
    if word.eq_ignore_ascii_case(b"on") || word.eq_ignore_ascii_case(b"yes") {
        Some(true)
    } else if word.eq_ignore_ascii_case(b"off") || word.eq_ignore_ascii_case(b"no") {
        Some(false)
    } else {
        None
    }
}

fn is_client_type(kind: &[u8]) -> bool {
    matches!(
        kind.to_ascii_lowercase().as_slice(),
        b"normal" | b"pubsub" | b"master" | b"replica" | b"slave"
    )
}

/// Client types of `TYPE` filters; every tidemark client is `normal` (or `pubsub`).
fn type_matches(client: &ClientShared, kind: &[u8]) -> Result<bool, Frame> {
    let state = client.state();
    let pubsub = state.sub + state.psub > 0;
    match kind.to_ascii_lowercase().as_slice() {
        b"normal" => Ok(!pubsub),
        b"pubsub" => Ok(pubsub),
        b"master" | b"replica" | b"slave" => Ok(false),
        _ => Err(Frame::error(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(kind)
        ))),
    }
}

fn parse_id(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.parse::<u64>().ok()
}

/// CLIENT LIST [TYPE type] [ID id ...]: a bulk (verbatim on RESP3) of lines.
fn list(registry: &Registry, options: &[Bytes], now_ms: u64) -> Frame {
    let mut kind: Option<&Bytes> = None;
    let mut ids: Option<Vec<u64>> = None;
    match options {
        [] => {}
        [word, value] if word.eq_ignore_ascii_case(b"type") => {
            if !is_client_type(value) {
                return Frame::error(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(value)
                ));
            }
            kind = Some(value);
        }
        [word, rest @ ..] if word.eq_ignore_ascii_case(b"id") && !rest.is_empty() => {
            let mut wanted = Vec::with_capacity(rest.len());
            for text in rest {
                match parse_id(text) {
                    Some(id) => wanted.push(id),
                    None => return Frame::error("ERR Invalid client ID"),
                }
            }
            ids = Some(wanted);
        }
        _ => return Frame::error("ERR syntax error"),
    }
    let mut out = String::new();
    for entry in registry.snapshot() {
        if let Some(kind) = kind {
            match type_matches(&entry, kind) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => return error,
            }
        }
        if ids.as_ref().is_some_and(|ids| !ids.contains(&entry.id)) {
            continue;
        }
        out.push_str(&entry.info_line(now_ms));
    }
    Frame::Verbatim(Bytes::from(out))
}

/// The filters of CLIENT KILL's new form.
#[derive(Default)]
struct KillFilter<'a> {
    id: Option<u64>,
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
    max_age_s: Option<u64>,
    skip_me: bool,
}

/// CLIENT KILL ip:port (old form: `+OK` or `ERR No such client`), or
/// CLIENT KILL <ID id|ADDR a|LADDR a|TYPE t|USER u|SKIPME yes/no|MAXAGE s> ... (the number
/// of clients killed; MAXAGE kills clients connected at least `s` seconds).
fn kill(registry: &Registry, me: &Client, options: &[Bytes], now_ms: u64) -> Frame {
    if let [addr] = options {
        let victim = registry
            .snapshot()
            .into_iter()
            .find(|c| c.addr.as_bytes() == addr.as_ref());
        return match victim {
            Some(victim) => {
                victim.kill();
                Frame::ok()
            }
            None => Frame::error("ERR No such client"),
        };
    }
    if options.len() % 2 != 0 {
        return Frame::error("ERR syntax error");
    }
    let mut filter = KillFilter {
        skip_me: true,
        ..KillFilter::default()
    };
    for pair in options.chunks(2) {
        let (word, value) = (pair[0].to_ascii_lowercase(), &pair[1][..]);
        match word.as_slice() {
            b"id" => match parse_id(value).filter(|id| *id > 0) {
                Some(id) => filter.id = Some(id),
                None => return Frame::error("ERR client-id should be greater than 0"),
            },
            b"addr" => filter.addr = Some(value),
            b"laddr" => filter.laddr = Some(value),
            b"type" if is_client_type(value) => filter.kind = Some(value),
            b"type" => {
                return Frame::error(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(value)
                ))
            }
            b"user" if value == b"default" => {}
            b"user" => {
                return Frame::error(format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(value)
                ))
            }
            b"skipme" => match on_off(value) {
                Some(skip) => filter.skip_me = skip,
                None => return Frame::error("ERR syntax error"),
            },
            b"maxage" => match parse_id(value) {
                Some(age) => filter.max_age_s = Some(age),
                None => return Frame::error("ERR syntax error"),
            },
            _ => return Frame::error("ERR syntax error"),
        }
    }
    let mut killed = 0;
    for entry in registry.snapshot() {
        if filter.skip_me && entry.id == me.id {
            continue;
        }
        let matches = filter.id.is_none_or(|id| id == entry.id)
            && filter.addr.is_none_or(|a| a == entry.addr.as_bytes())
            && filter.laddr.is_none_or(|a| a == entry.laddr.as_bytes())
            && filter
                .max_age_s
                .is_none_or(|max| now_ms.saturating_sub(entry.created_ms) / 1000 >= max);
        if !matches {
            continue;
        }
        if let Some(kind) = filter.kind {
            match type_matches(&entry, kind) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => return error,
            }
        }
        entry.kill();
        killed += 1;
    }
    Frame::Integer(killed)
}

fn help() -> Frame {
    const LINES: &[&str] = &[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "HELP",
        "    Prints this help.",
    ];
    Frame::Array(LINES.iter().map(|l| Frame::Simple(l.to_string())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(registry: &Registry, id: u64) -> (Client, Registration<'_>) {
        let shared = Arc::new(ClientShared::new(
            id,
            format!("127.0.0.1:{}", 5000 + id),
            "127.0.0.1:6379".into(),
            1_000,
        ));
        let registration = registry.register(shared.clone());
        let client = Client {
            id,
            protocol: Protocol::Resp2,
            shared,
            authenticated: true,
            peer: format!("127.0.0.1:{}", 5000 + id),
            db_index: 0,
            pubsub: crate::server::pubsub::ClientPubSub::new(Arc::default(), id),
            tx: crate::server::multi::TxState::default(),
        };
        (client, registration)
    }

    fn words(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn list_line_has_redis_7_fields_in_order() {
        let registry = Registry::default();
        let (me, _guard) = client(&registry, 7);
        me.shared.begin_command(4_500, &words("CLIENT SETNAME x"));
        assert_eq!(
            command(&registry, &me, &words("client setname app"), 4_500),
            Frame::ok()
        );
        assert_eq!(
            me.shared.info_line(9_000),
            "id=7 addr=127.0.0.1:5007 laddr=127.0.0.1:6379 fd=-1 name=app age=8 idle=4 flags=N \
             db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 \
             rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|setname \
             user=default redir=-1 resp=2\n"
        );
        assert_eq!(
            command(&registry, &me, &words("client setname a\nb"), 0),
            Frame::error("ERR Client names cannot contain spaces, newlines or special characters.")
        );
        assert_eq!(
            command(&registry, &me, &words("client getname"), 0),
            Frame::bulk("app")
        );
    }

    #[test]
    fn kill_filters_and_registration_lifetime() {
        let registry = Registry::default();
        let (me, _g1) = client(&registry, 1);
        let (other, g2) = client(&registry, 2);
        let (old, _g3) = client(&registry, 3);
        assert_eq!(registry.len(), 3);
        // SKIPME yes (the default) spares the caller.
        assert_eq!(
            command(&registry, &me, &words("client kill id 1"), 0),
            Frame::Integer(0)
        );
        assert_eq!(
            command(&registry, &me, &words("client kill addr 127.0.0.1:5002"), 0),
            Frame::Integer(1)
        );
        assert!(other.shared.is_killed() && !me.shared.is_killed() && !old.shared.is_killed());
        drop(g2);
        assert_eq!(registry.len(), 2);
        // MAXAGE: connected at 1 s; at 5 s everyone is 4 s old.
        assert_eq!(
            command(&registry, &me, &words("client kill maxage 5"), 5_000),
            Frame::Integer(0)
        );
        assert_eq!(
            command(
                &registry,
                &me,
                &words("client kill maxage 4 skipme no"),
                5_000
            ),
            Frame::Integer(2)
        );
        assert!(me.shared.is_killed() && old.shared.is_killed());
        let woken = futures_lite::future::block_on(
            old.shared
                .until_killed(futures_lite::future::pending::<()>()),
        );
        assert_eq!(woken, None);
    }

    #[test]
    fn subcommand_errors_match_redis() {
        let registry = Registry::default();
        let (me, _guard) = client(&registry, 1);
        let cases = [
            (
                "client foo",
                "ERR unknown subcommand 'foo'. Try CLIENT HELP.",
            ),
            (
                "client setname",
                "ERR wrong number of arguments for 'client|setname' command",
            ),
            (
                "client kill id abc",
                "ERR client-id should be greater than 0",
            ),
            ("client kill type foo", "ERR Unknown client type 'foo'"),
            ("client kill user nobody", "ERR No such user 'nobody'"),
            ("client kill id", "ERR No such client"),
            ("client list id abc", "ERR Invalid client ID"),
            ("client no-evict maybe", "ERR syntax error"),
        ];
        for (line, error) in cases {
            assert_eq!(
                command(&registry, &me, &words(line), 0),
                Frame::error(error),
                "{line}"
            );
        }
    }
}
