//! The seeded command generator for the differential test: random command sequences over
//! strings, keys/expiry, hashes, lists, sets and sorted sets, with edge cases (empty and
//! binary values, negative indexes, huge counts, wrong types, i64 overflow, float
//! formatting, wrong arity, unknown options). Each command carries how its reply is
//! compared ([`Norm`]). Cases where tidemark knowingly differs are left out, each with a
//! comment naming the difference.
//!
//! What can fail here: nothing (pure generation from a seed).

/// How a reply is compared between the servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Byte-for-byte.
    Exact,
    /// Byte-for-byte, and the generator must not append junk options (see LPOS).
    NoJunk,
    /// The array's order is unspecified in Redis: sort the elements.
    Sort,
    /// HGETALL-style flat field/value array: sort as pairs.
    SortPairs,
    /// Random replies (SRANDMEMBER, RANDOMKEY...): compare only type and length.
    Shape,
    /// TTL-like integers: equal, or both ≥ 0 within the given tolerance.
    Tol(i64),
}

/// A small deterministic PRNG (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

#[path = "gen_zset.rs"]
mod zset;

/// Number of keys in the pool; all share one hash tag so multi-key commands stay valid.
pub const KEY_POOL: usize = 12;

/// The key names of the pool.
pub fn pool_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..KEY_POOL)
        .map(|i| format!("{{t}}k{i}").into_bytes())
        .collect();
    keys.push(LEX_KEY.to_vec());
    keys
}

/// The one sorted set the lexicographic commands (BYLEX, ZLEXCOUNT, ZREMRANGEBYLEX) run
/// on: only ever written with score 0, because Redis leaves lex ranges over members with
/// different scores unspecified.
pub const LEX_KEY: &[u8] = b"{t}lex";

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// The generator state.
pub struct Gen {
    pub rng: Rng,
    keys: Vec<Vec<u8>>,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            keys: pool_keys()[..KEY_POOL].to_vec(),
        }
    }

    fn key(&mut self) -> Vec<u8> {
        // Mostly the first 8 keys so types collide often (wrong-type cases).
        let n = if self.rng.chance(80) { 8 } else { KEY_POOL };
        self.keys[self.rng.below(n as u64) as usize].clone()
    }

    fn keys(&mut self, max: u64) -> Vec<Vec<u8>> {
        let n = 1 + self.rng.below(max);
        (0..n).map(|_| self.key()).collect()
    }

    fn val(&mut self) -> Vec<u8> {
        match self.rng.below(16) {
            0 => b(""),
            1 => vec![0, 255, b'\r', b'\n', 7, b' ', 0],
            2 => b("9223372036854775807"),
            3 => b("-9223372036854775808"),
            4 => b("3.14"),
            5 => "x".repeat(1 + self.rng.below(80) as usize).into_bytes(),
            6 => b("-17"),
            7 => b(" 5"),
            8 => b("1e3"),
            9 => b(self
                .rng
                .pick(&["-0", "+1", "00", "0x1", "1.", ".5", "5e-1", "inf", "-"])),
            _ => format!("{}", self.rng.below(30)).into_bytes(),
        }
    }

    fn member(&mut self) -> Vec<u8> {
        match self.rng.below(18) {
            // Wider pools, so collections sometimes grow past Redis's compact encodings
            // (128 entries) and integer sets past 512.
            14 | 15 => format!("m{}", self.rng.below(300)).into_bytes(),
            16 => format!("{}", self.rng.below(1000)).into_bytes(),
            0 => b(""),
            1 => vec![0, 255, b'z'],
            2 => b("10"),
            3 => b("-1"),
            _ => vec![b'a' + self.rng.below(8) as u8],
        }
    }

    fn members(&mut self, max: u64) -> Vec<Vec<u8>> {
        let n = 1 + self.rng.below(max);
        (0..n).map(|_| self.member()).collect()
    }

    fn int(&mut self) -> Vec<u8> {
        match self.rng.below(20) {
            0 => b("9223372036854775807"),
            1 => b("-9223372036854775808"),
            2 => b("9223372036854775806"),
            3 => b("abc"),
            4 => b("1.5"),
            5 => b("9223372036854775808"),
            6 => b(""),
            7 => b("+3"),
            8 => b("007"),
            _ => format!("{}", self.rng.below(21) as i64 - 10).into_bytes(),
        }
    }

    fn idx(&mut self) -> Vec<u8> {
        match self.rng.below(16) {
            0 => b("1000000"),
            1 => b("-1000000"),
            2 => b("9223372036854775807"),
            3 => b("-9223372036854775808"),
            4 => b("x"),
            _ => format!("{}", self.rng.below(17) as i64 - 8).into_bytes(),
        }
    }

    fn count(&mut self) -> Vec<u8> {
        match self.rng.below(12) {
            0 => b("0"),
            1 => b("-1"),
            2 => b("1000000"),
            3 => b("x"),
            _ => format!("{}", 1 + self.rng.below(5)).into_bytes(),
        }
    }

    /// COUNT/MAXLEN values for LPOS, including a non-integer.
    fn lpos_count(&mut self) -> Vec<u8> {
        match self.rng.below(9) {
            0 => b("0"),
            1 => b("-1"),
            2 => b("1000000"),
            3 => b("x"),
            _ => format!("{}", 1 + self.rng.below(5)).into_bytes(),
        }
    }

    fn float(&mut self) -> Vec<u8> {
        match self.rng.below(22) {
            0 => b("0.1"),
            1 => b("-0.3"),
            2 => b("1e10"),
            3 => b("3.0e-5"),
            4 => b("inf"),
            5 => b("-inf"),
            6 => b("nan"),
            7 => b("1.5e300"),
            8 => b("abc"),
            9 => b(""),
            10 => b("5.0"),
            11 => b("17"),
            12 => b("-0"),
            13 => b("1.7976931348623157e308"),
            14 => b("0x10"),
            15 => b("1."),
            _ => format!("{}.{}", self.rng.below(10), self.rng.below(1000)).into_bytes(),
        }
    }

    fn score(&mut self) -> Vec<u8> {
        match self.rng.below(14) {
            0 => b("inf"),
            1 => b("-inf"),
            2 => b("nan"),
            3 => b("0.5"),
            4 => b("-2.25"),
            5 => b("1e100"),
            6 => b("x"),
            _ => format!("{}", self.rng.below(10) as i64 - 3).into_bytes(),
        }
    }

    fn range_score(&mut self) -> Vec<u8> {
        match self.rng.below(10) {
            0 => b("-inf"),
            1 => b("+inf"),
            2 => b("(1"),
            3 => b("(-1.5"),
            4 => b("x"),
            5 => b("(inf"),
            _ => format!("{}", self.rng.below(10) as i64 - 3).into_bytes(),
        }
    }

    fn range_lex(&mut self) -> Vec<u8> {
        match self.rng.below(8) {
            0 => b("-"),
            1 => b("+"),
            2 => b("x"),
            3 => b("["),
            4 => b("("),
            _ => {
                let pre = if self.rng.chance(50) { b'[' } else { b'(' };
                vec![pre, b'a' + self.rng.below(8) as u8]
            }
        }
    }

    /// A TTL in seconds: large (nothing may expire during a run), or invalid/non-positive.
    fn ttl_s(&mut self) -> Vec<u8> {
        match self.rng.below(12) {
            0 => b("0"),
            1 => b("-5"),
            2 => b("9223372036854775807"),
            3 => b(self.rng.pick(&[
                "x",
                "9223372036854775",
                "9223372036854776",
                "1.5",
                "-9223372036854775808",
            ])),
            _ => format!("{}", 1000 + self.rng.below(100_000)).into_bytes(),
        }
    }

    fn ttl_ms(&mut self) -> Vec<u8> {
        match self.rng.below(10) {
            0 => b("0"),
            1 => b("-5"),
            2 => b("9223372036854775807"),
            _ => format!("{}", 1_000_000 + self.rng.below(100_000_000)).into_bytes(),
        }
    }

    fn at_s_future(&mut self) -> Vec<u8> {
        format!("{}", 4_102_444_800u64 + self.rng.below(1_000_000)).into_bytes()
    }

    /// An absolute unix time in seconds: far future, or in the past.
    fn at_s(&mut self) -> Vec<u8> {
        match self.rng.below(6) {
            0 => b("1"),
            1 => b("-1"),
            _ => format!("{}", 4_102_444_800u64 + self.rng.below(1_000_000)).into_bytes(),
        }
    }

    /// The next command and how to compare its reply.
    pub fn next(&mut self) -> (Vec<Vec<u8>>, Norm) {
        if self.rng.chance(1) {
            return self.bulk_fill();
        }
        let (mut cmd, norm) = match self.rng.below(100) {
            0..=21 => self.string_cmd(),
            22..=35 => self.key_cmd(),
            36..=50 => self.hash_cmd(),
            51..=66 => self.list_cmd(),
            67..=81 => self.set_cmd(),
            _ => self.zset_cmd(),
        };
        // Wrong arity and unknown options, only on commands whose every shortened form
        // is still deterministic.
        if matches!(norm, Norm::Exact | Norm::NoJunk) && cmd.len() > 1 {
            if self.rng.chance(2) {
                let keep = 1 + self.rng.below(cmd.len() as u64 - 1) as usize;
                cmd.truncate(keep);
            } else if norm == Norm::Exact && self.rng.chance(2) {
                let junk = self
                    .rng
                    .pick(&["BOGUS", "NX", "COUNT", "WITHSCORES", "", "-1"]);
                cmd.push(b(junk));
            }
        }
        if self.rng.chance(3) {
            // Command names are case-insensitive.
            cmd[0] = cmd[0].to_ascii_lowercase();
        }
        if self.rng.chance(1) {
            cmd[0] = b("NOSUCHCMD");
            // KNOWN DIFFERENCE: in `ERR unknown command ..., with args beginning with:
            // ...` Redis sends bytes >= 0x80 raw; tidemark's error replies are UTF-8 text
            // (U+FFFD). Arguments are cut at the first NUL, as Redis does; only those
            // whose shown part is ASCII are sent here.
            cmd.retain(|a| {
                let shown = &a[..a.iter().position(|&c| c == 0).unwrap_or(a.len())];
                shown.iter().all(|&c| c < 0x80)
            });
        }
        (cmd, norm)
    }

    /// One write of many elements (past the compact-encoding thresholds).
    fn bulk_fill(&mut self) -> (Vec<Vec<u8>>, Norm) {
        let k = self.key();
        let n = 100 + self.rng.below(100);
        let mut c = match self.rng.below(4) {
            0 => vec![b("RPUSH"), k],
            1 => vec![b("SADD"), k],
            2 => vec![b("HSET"), k],
            _ => vec![b("ZADD"), k],
        };
        let numeric = self.rng.chance(50);
        for i in 0..n {
            let m = if numeric {
                format!("{}", self.rng.below(2000))
            } else {
                format!("bulk{i}")
            };
            match c[0][0] {
                b'H' => c.extend([m.into_bytes(), self.val()]),
                b'Z' => c.extend([
                    format!("{}", self.rng.below(50)).into_bytes(),
                    m.into_bytes(),
                ]),
                _ => c.push(m.into_bytes()),
            }
        }
        (c, Norm::Exact)
    }

    fn string_cmd(&mut self) -> (Vec<Vec<u8>>, Norm) {
        let k = self.key();
        let e = Norm::Exact;
        let cmd = match self.rng.below(24) {
            0..=2 => {
                let mut c = vec![b("SET"), k, self.val()];
                for _ in 0..self.rng.below(3) {
                    match self.rng.below(9) {
                        0 => c.extend([b("EX"), self.ttl_s()]),
                        1 => c.extend([b("PX"), self.ttl_ms()]),
                        // Only future EXAT: `SET k v EXAT 1` leaves a logically expired
                        // key that DBSIZE counts until active expiry reclaims it, at a
                        // moment that differs between the servers (not a bug).
                        2 => c.extend([b("EXAT"), self.at_s_future()]),
                        3 => c.push(b("NX")),
                        4 => c.push(b("XX")),
                        5 => c.push(b("GET")),
                        6 => c.push(b("KEEPTTL")),
                        7 => c.extend([b("PXAT"), b("4102444800000")]),
                        _ => c.push(b("ex")),
                    }
                }
                c
            }
            3 => vec![b("GET"), k],
            4 => vec![b("INCR"), k],
            5 => vec![b("DECR"), k],
            6 => vec![b("INCRBY"), k, self.int()],
            7 => vec![b("DECRBY"), k, self.int()],
            8 => return (vec![b("INCRBYFLOAT"), k, self.float()], Norm::Exact),
            9 => vec![b("APPEND"), k, self.val()],
            10 => vec![b("GETRANGE"), k, self.idx(), self.idx()],
            11 => {
                let off = match self.rng.below(6) {
                    0 => b("-1"),
                    1 => b("536870912"),
                    2 => b("x"),
                    _ => format!("{}", self.rng.below(20)).into_bytes(),
                };
                vec![b("SETRANGE"), k, off, self.val()]
            }
            12 => vec![b("STRLEN"), k],
            13 => {
                let mut c = vec![b("MSET")];
                for _ in 0..1 + self.rng.below(3) {
                    c.extend([self.key(), self.val()]);
                }
                c
            }
            14 => {
                let mut c = vec![b("MGET")];
                c.extend(self.keys(4));
                c
            }
            15 => vec![b("GETDEL"), k],
            16 => {
                let mut c = vec![b("GETEX"), k];
                match self.rng.below(6) {
                    0 => c.extend([b("EX"), self.ttl_s()]),
                    1 => c.extend([b("PX"), self.ttl_ms()]),
                    2 => c.extend([b("EXAT"), self.at_s()]),
                    3 => c.push(b("PERSIST")),
                    4 => c.push(b("BOGUS")),
                    _ => {}
                }
                c
            }
            17 => vec![b("SETNX"), k, self.val()],
            18 => vec![b("SETEX"), k, self.ttl_s(), self.val()],
            19 => vec![b("PSETEX"), k, self.ttl_ms(), self.val()],
            20 => vec![b("GETSET"), k, self.val()],
            21 => {
                let mut c = vec![b("MSETNX")];
                for _ in 0..1 + self.rng.below(2) {
                    c.extend([self.key(), self.val()]);
                }
                c
            }
            22 => vec![b("SUBSTR"), k, self.idx(), self.idx()],
            _ => vec![b("INCRBY"), k, b("9223372036854775800")],
        };
        (cmd, e)
    }

    fn key_cmd(&mut self) -> (Vec<Vec<u8>>, Norm) {
        let k = self.key();
        let e = Norm::Exact;
        match self.rng.below(23) {
            0 | 1 => {
                let mut c = vec![b("DEL")];
                c.extend(self.keys(3));
                (c, e)
            }
            2 => {
                let mut c = vec![b("EXISTS")];
                c.extend(self.keys(4));
                (c, e)
            }
            3 | 4 => (vec![b("TYPE"), k], e),
            5 => (vec![b("RENAME"), k, self.key()], e),
            6 => (vec![b("RENAMENX"), k, self.key()], e),
            7 | 8 => {
                let mut c = vec![b("EXPIRE"), k, self.ttl_s()];
                for _ in 0..self.rng.below(3) {
                    c.push(b(self.rng.pick(&["NX", "XX", "GT", "LT", "FOO", "gt"])));
                }
                (c, e)
            }
            9 => {
                let mut c = vec![b("PEXPIRE"), k, self.ttl_ms()];
                if self.rng.chance(30) {
                    c.push(b(self.rng.pick(&["NX", "XX", "GT", "LT"])));
                }
                (c, e)
            }
            10 => (vec![b("EXPIREAT"), k, self.at_s()], e),
            11 => (vec![b("PEXPIREAT"), k, b("4102444800123")], e),
            12 | 13 => (vec![b("TTL"), k], Norm::Tol(1)),
            14 => (vec![b("PTTL"), k], Norm::Tol(1000)),
            15 => (vec![b("PERSIST"), k], e),
            16 => (vec![b("EXPIRETIME"), k], Norm::Tol(1)),
            17 => (vec![b("PEXPIRETIME"), k], Norm::Tol(1000)),
            18 => {
                let mut c = vec![b("UNLINK")];
                c.extend(self.keys(3));
                (c, e)
            }
            19 => {
                let mut c = vec![b("TOUCH")];
                c.extend(self.keys(3));
                (c, e)
            }
            20 => {
                // Glob patterns, including Redis's odd corners (unclosed classes,
                // reversed ranges, trailing backslash).
                let pat = self.rng.pick(&[
                    "{t}k1*",
                    "*",
                    "{t}k?",
                    "{t}k[0-3]",
                    "{t}k[^0-3]",
                    "{t}k[3-1]",
                    "{t}k[a-",
                    "\\{t\\}k1",
                    "*1\\",
                    "*[",
                    "**k*",
                    "{t}k1[0-",
                    "{t}?[!k]*",
                    "{t}k[\\]1]",
                    "{T}K1",
                    "*lex",
                    "",
                    "?",
                ]);
                (vec![b("KEYS"), b(pat)], Norm::Sort)
            }
            21 => (vec![b("DBSIZE")], e),
            _ => {
                // Was a tidemark bug (`PING a b` replied "a"; Redis replies a wrong-arity
                // error), since fixed in server/admin.rs. PING is still never sent with
                // two or more arguments here (and gets no junk appended).
                let c = match self.rng.below(4) {
                    0 => vec![b("PING")],
                    1 => vec![b("PING"), self.val()],
                    2 => vec![b("ECHO"), self.val()],
                    _ => vec![b("ECHO")],
                };
                (c, Norm::NoJunk)
            }
        }
    }

    fn hash_cmd(&mut self) -> (Vec<Vec<u8>>, Norm) {
        let k = self.key();
        let e = Norm::Exact;
        match self.rng.below(18) {
            0..=2 => {
                let mut c = vec![b("HSET"), k];
                for _ in 0..1 + self.rng.below(3) {
                    c.extend([self.member(), self.val()]);
                }
                (c, e)
            }
            3 => (vec![b("HSETNX"), k, self.member(), self.val()], e),
            4 => (vec![b("HGET"), k, self.member()], e),
            5 => {
                let mut c = vec![b("HMGET"), k];
                c.extend(self.members(3));
                (c, e)
            }
            6 => {
                let mut c = vec![b("HDEL"), k];
                c.extend(self.members(3));
                (c, e)
            }
            7 => (vec![b("HEXISTS"), k, self.member()], e),
            8 => (vec![b("HLEN"), k], e),
            9 => (vec![b("HSTRLEN"), k, self.member()], e),
            10 => (vec![b("HINCRBY"), k, self.member(), self.int()], e),
            11 => (vec![b("HINCRBYFLOAT"), k, self.member(), self.float()], e),
            12 => (vec![b("HKEYS"), k], Norm::Sort),
            13 => (vec![b("HVALS"), k], Norm::Sort),
            14 => (vec![b("HGETALL"), k], Norm::SortPairs),
            15 => (
                vec![
                    b("HMSET"),
                    k,
                    self.member(),
                    self.val(),
                    self.member(),
                    self.val(),
                ],
                e,
            ),
            16 => {
                let mut c = vec![b("HRANDFIELD"), k];
                if self.rng.chance(70) {
                    c.push(self.count());
                    if self.rng.chance(50) {
                        c.push(b("WITHVALUES"));
                    }
                }
                (c, Norm::Shape)
            }
            _ => (
                vec![b("HINCRBY"), k, self.member(), b("9223372036854775807")],
                e,
            ),
        }
    }

    fn list_cmd(&mut self) -> (Vec<Vec<u8>>, Norm) {
        let k = self.key();
        let e = Norm::Exact;
        let side = |g: &mut Gen| b(g.rng.pick(&["LEFT", "RIGHT", "left", "UP"]));
        let cmd = match self.rng.below(24) {
            0..=2 => {
                let mut c = vec![b("RPUSH"), k];
                c.extend(self.members(4));
                c
            }
            3 | 4 => {
                let mut c = vec![b("LPUSH"), k];
                c.extend(self.members(4));
                c
            }
            5 => vec![b("LPUSHX"), k, self.member()],
            6 => vec![b("RPUSHX"), k, self.member()],
            7 => {
                let mut c = vec![b("LPOP"), k];
                if self.rng.chance(50) {
                    c.push(self.count());
                }
                c
            }
            8 => {
                let mut c = vec![b("RPOP"), k];
                if self.rng.chance(50) {
                    c.push(self.count());
                }
                c
            }
            9 | 10 => vec![b("LRANGE"), k, self.idx(), self.idx()],
            11 => vec![b("LINDEX"), k, self.idx()],
            12 => vec![b("LSET"), k, self.idx(), self.member()],
            13 => {
                let w = b(self.rng.pick(&["BEFORE", "AFTER", "after", "MIDDLE"]));
                vec![b("LINSERT"), k, w, self.member(), self.member()]
            }
            14 => vec![b("LREM"), k, self.idx(), self.member()],
            15 => vec![b("LTRIM"), k, self.idx(), self.idx()],
            16 => vec![b("LLEN"), k],
            17 | 18 => {
                let mut c = vec![b("LPOS"), k, self.member()];
                for _ in 0..self.rng.below(3) {
                    match self.rng.below(7) {
                        0 | 1 => c.extend([b("RANK"), self.idx()]),
                        2 | 3 => c.extend([b("COUNT"), self.lpos_count()]),
                        4 | 5 => c.extend([b("MAXLEN"), self.lpos_count()]),
                        _ => c.extend([b("FOO"), self.lpos_count()]),
                    }
                }
                return (c, e);
            }
            19 | 20 => {
                let (a, d) = (side(self), side(self));
                let c = vec![b("LMOVE"), k, self.key(), a, d];
                return (c, Norm::Exact);
            }
            21 => return (vec![b("RPOPLPUSH"), k, self.key()], Norm::Exact),
            _ => {
                let keys = self.keys(3);
                let mut c = vec![b("LMPOP"), format!("{}", keys.len()).into_bytes()];
                c.extend(keys);
                c.push(side(self));
                if self.rng.chance(50) {
                    c.extend([b("COUNT"), self.count()]);
                }
                return (c, e);
            }
        };
        (cmd, e)
    }

    fn set_cmd(&mut self) -> (Vec<Vec<u8>>, Norm) {
        let k = self.key();
        let e = Norm::Exact;
        match self.rng.below(22) {
            0..=3 => {
                let mut c = vec![b("SADD"), k];
                c.extend(self.members(4));
                (c, e)
            }
            4 | 5 => {
                let mut c = vec![b("SREM"), k];
                c.extend(self.members(3));
                (c, e)
            }
            6 => (vec![b("SISMEMBER"), k, self.member()], e),
            7 => {
                let mut c = vec![b("SMISMEMBER"), k];
                c.extend(self.members(3));
                (c, e)
            }
            8 => (vec![b("SCARD"), k], e),
            9 => (vec![b("SMEMBERS"), k], Norm::Sort),
            10 => (vec![b("SMOVE"), k, self.key(), self.member()], e),
            11..=13 => {
                let name = self.rng.pick(&["SINTER", "SUNION", "SDIFF"]);
                let mut c = vec![b(name)];
                c.extend(self.keys(3));
                (c, Norm::Sort)
            }
            14 | 15 => {
                let name = self.rng.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]);
                let mut c = vec![b(name), self.key()];
                c.extend(self.keys(3));
                (c, e)
            }
            16 => {
                let keys = self.keys(3);
                let mut c = vec![b("SINTERCARD"), format!("{}", keys.len()).into_bytes()];
                c.extend(keys);
                if self.rng.chance(50) {
                    c.extend([b("LIMIT"), self.count()]);
                }
                (c, e)
            }
            // SPOP only in its deterministic forms: a count that covers the whole set, or 0.
            // (SPOP without count on a set of more than one member is random by design.)
            17 => {
                let n = self.rng.pick(&["1000", "0", "-1", "x"]);
                (vec![b("SPOP"), k, b(n)], Norm::Sort)
            }
            18 | 19 => {
                let mut c = vec![b("SRANDMEMBER"), k];
                if self.rng.chance(70) {
                    c.push(self.count());
                }
                (c, Norm::Shape)
            }
            20 => (vec![b("RANDOMKEY")], Norm::Shape),
            _ => (vec![b("SADD"), k, b("1"), b("2"), b("3")], e),
        }
    }
}
