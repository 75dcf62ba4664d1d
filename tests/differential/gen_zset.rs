//! Sorted-set commands for the differential generator (split from gen.rs): ZADD flags,
//! ZRANGE variants, lexicographic ranges on the score-0 key, ZUNION/ZINTER/ZDIFF(STORE)
//! with WEIGHTS/AGGREGATE, pops and random members.
//!
//! What can fail here: nothing (pure generation from a seed).

use super::{b, Gen, Norm, LEX_KEY};

impl Gen {
    pub(super) fn zset_cmd(&mut self) -> (Vec<Vec<u8>>, Norm) {
        let k = self.key();
        let e = Norm::Exact;
        match self.rng.below(28) {
            0..=3 => {
                let mut c = vec![b("ZADD"), k];
                for _ in 0..self.rng.below(3) {
                    c.push(b(self.rng.pick(&["NX", "XX", "GT", "LT", "CH", "INCR"])));
                }
                for _ in 0..1 + self.rng.below(3) {
                    c.extend([self.score(), self.member()]);
                }
                (c, e)
            }
            4 => {
                let mut c = vec![b("ZREM"), k];
                c.extend(self.members(3));
                (c, e)
            }
            5 => (vec![b("ZSCORE"), k, self.member()], e),
            6 => {
                let mut c = vec![b("ZMSCORE"), k];
                c.extend(self.members(3));
                (c, e)
            }
            7 => (vec![b("ZINCRBY"), k, self.float(), self.member()], e),
            8 => (vec![b("ZCARD"), k], e),
            9 => (
                vec![b("ZCOUNT"), k, self.range_score(), self.range_score()],
                e,
            ),
            10 => {
                let lex = LEX_KEY.to_vec();
                (
                    vec![b("ZLEXCOUNT"), lex, self.range_lex(), self.range_lex()],
                    e,
                )
            }
            11..=13 => (self.zrange(k), e),
            14 => {
                let name = self.rng.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]);
                let mut c = vec![b(name), k, self.range_score(), self.range_score()];
                if self.rng.chance(40) {
                    c.push(b("WITHSCORES"));
                }
                if self.rng.chance(30) {
                    c.extend([b("LIMIT"), self.idx(), self.idx()]);
                }
                (c, e)
            }
            15 => {
                let name = self.rng.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]);
                let lex = LEX_KEY.to_vec();
                let mut c = vec![b(name), lex, self.range_lex(), self.range_lex()];
                if self.rng.chance(30) {
                    c.extend([b("LIMIT"), self.idx(), self.idx()]);
                }
                (c, e)
            }
            16 => {
                let name = self.rng.pick(&["ZRANK", "ZREVRANK"]);
                (vec![b(name), k, self.member()], e)
            }
            17 => {
                let name = self.rng.pick(&["ZPOPMIN", "ZPOPMAX"]);
                let mut c = vec![b(name), k];
                if self.rng.chance(50) {
                    c.push(self.count());
                }
                (c, e)
            }
            18 => {
                let name =
                    self.rng
                        .pick(&["ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREMRANGEBYLEX"]);
                let (k, a, z) = match name.as_bytes()[10] {
                    b'R' => (k, self.idx(), self.idx()),
                    b'S' => (k, self.range_score(), self.range_score()),
                    _ => (LEX_KEY.to_vec(), self.range_lex(), self.range_lex()),
                };
                (vec![b(name), k, a, z], e)
            }
            19 | 20 => {
                let name = self.rng.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]);
                let keys = self.keys(3);
                let mut c = vec![b(name), self.key(), format!("{}", keys.len()).into_bytes()];
                c.extend(keys.iter().cloned());
                self.zcombine_opts(&mut c, keys.len(), name != "ZDIFFSTORE");
                (c, Norm::Exact)
            }
            21 => {
                let name = self.rng.pick(&["ZUNION", "ZINTER", "ZDIFF"]);
                let keys = self.keys(3);
                let mut c = vec![b(name), format!("{}", keys.len()).into_bytes()];
                c.extend(keys.iter().cloned());
                self.zcombine_opts(&mut c, keys.len(), name != "ZDIFF");
                if self.rng.chance(50) {
                    c.push(b("WITHSCORES"));
                }
                (c, Norm::Exact)
            }
            22 => {
                let keys = self.keys(3);
                let n = keys.len();
                let mut c = vec![b("ZINTERCARD"), format!("{n}").into_bytes()];
                c.extend(keys);
                if self.rng.chance(50) {
                    c.extend([b("LIMIT"), self.count()]);
                }
                (c, Norm::Exact)
            }
            23 => {
                let keys = self.keys(3);
                let mut c = vec![b("ZMPOP"), format!("{}", keys.len()).into_bytes()];
                c.extend(keys);
                c.push(b(self.rng.pick(&["MIN", "MAX", "BOTH"])));
                if self.rng.chance(50) {
                    c.extend([b("COUNT"), self.count()]);
                }
                (c, e)
            }
            24 => {
                let mut c = vec![b("ZRANDMEMBER"), k];
                if self.rng.chance(70) {
                    c.push(self.count());
                    if self.rng.chance(50) {
                        c.push(b("WITHSCORES"));
                    }
                }
                (c, Norm::Shape)
            }
            25 => {
                let mut c = vec![b("ZRANGESTORE"), self.key()];
                c.extend(self.zrange(k).into_iter().skip(1));
                c.retain(|a| a != b"WITHSCORES");
                (c, e)
            }
            26 => {
                let mut c = vec![b("ZADD"), LEX_KEY.to_vec()];
                if self.rng.chance(20) {
                    c.push(b(self.rng.pick(&["NX", "XX", "CH"])));
                }
                for m in self.members(4) {
                    c.extend([b("0"), m]);
                }
                (c, e)
            }
            _ => (
                vec![b("ZREVRANGE"), k, self.idx(), self.idx(), b("WITHSCORES")],
                e,
            ),
        }
    }

    fn zrange(&mut self, k: Vec<u8>) -> Vec<Vec<u8>> {
        let mut c = vec![b("ZRANGE"), k];
        match self.rng.below(3) {
            0 => {
                c.extend([self.idx(), self.idx()]);
            }
            1 => {
                c.extend([self.range_score(), self.range_score(), b("BYSCORE")]);
            }
            _ => {
                c[1] = LEX_KEY.to_vec();
                c.extend([self.range_lex(), self.range_lex(), b("BYLEX")]);
            }
        }
        if self.rng.chance(30) {
            c.push(b("REV"));
        }
        if self.rng.chance(25) {
            c.extend([b("LIMIT"), self.idx(), self.idx()]);
        }
        if self.rng.chance(40) {
            c.push(b("WITHSCORES"));
        }
        c
    }

    fn zcombine_opts(&mut self, c: &mut Vec<Vec<u8>>, nkeys: usize, weights: bool) {
        if weights && self.rng.chance(40) {
            c.push(b("WEIGHTS"));
            let n = if self.rng.chance(90) {
                nkeys
            } else {
                nkeys + 1
            };
            for _ in 0..n {
                c.push(self.score());
            }
        }
        if weights && self.rng.chance(40) {
            c.extend([
                b("AGGREGATE"),
                b(self.rng.pick(&["SUM", "MIN", "MAX", "AVG"])),
            ]);
        }
    }
}
