//! Software emulation of the x87 80-bit `long double` that Redis uses for INCRBYFLOAT on
//! x86-64: `strtold` parsing (as filtered by Redis's `string2ld`), round-to-nearest-even
//! addition, and `%.17Lf` output with trailing zeros trimmed (Redis `ld2string`,
//! `LD_STR_HUMAN`). Exact, so replies match redis-server byte for byte (0.1 + 0.2 → "0.3").
//!
//! Arithmetic is done exactly on small big integers and rounded once. Sizes are bounded:
//! inputs are at most [`FLOAT_TEXT_LEN_MAX_BYTES`] long and exponents are clamped before any
//! big number is built. What can fail: parsing (returns None, like `string2ld`).

/// Longest accepted float text (Redis `MAX_LONG_DOUBLE_CHARS` = 5 KiB, exclusive).
pub const FLOAT_TEXT_LEN_MAX_BYTES: usize = 5 * 1024 - 1;
/// Mantissa bits of the x87 extended format (explicit integer bit).
const MANT_BITS: i64 = 64;
/// Exponent of the least significant mantissa bit for the smallest (denormal) values.
const LSB_EXP_MIN: i64 = -16445;
/// Exponent of the least significant mantissa bit for the largest finite values.
const LSB_EXP_MAX: i64 = 16320;
/// Digits after the point in Redis's human format (`%.17Lf`).
const HUMAN_FRACTION_DIGITS: usize = 17;

/// Magnitude of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Zero,
    /// `mant * 2^exp`, `mant` normalized to 64 bits unless denormal (`exp == LSB_EXP_MIN`).
    Finite {
        mant: u64,
        exp: i64,
    },
    Inf,
    NaN,
}

/// An x87 extended-precision value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble {
    neg: bool,
    kind: Kind,
}

/// Little-endian base-2^64 unsigned big integer (just what this file needs).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u64>);

impl Big {
    fn from_u128(v: u128) -> Big {
        let mut b = Big(vec![v as u64, (v >> 64) as u64]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bit_len(&self) -> i64 {
        match self.0.last() {
            None => 0,
            Some(top) => (self.0.len() as i64 - 1) * 64 + (64 - top.leading_zeros() as i64),
        }
    }

    fn bit(&self, i: i64) -> bool {
        let (limb, off) = ((i / 64) as usize, i % 64);
        i >= 0 && self.0.get(limb).is_some_and(|l| (l >> off) & 1 == 1)
    }

    /// True if any bit below position `i` is set.
    fn any_below(&self, i: i64) -> bool {
        if i <= 0 {
            return false;
        }
        let (limb, off) = ((i / 64) as usize, i % 64);
        self.0.iter().take(limb).any(|&l| l != 0)
            || (off > 0
                && self
                    .0
                    .get(limb)
                    .is_some_and(|l| l & ((1u64 << off) - 1) != 0))
    }

    /// Bits `[i, i + 128)` as a u128.
    fn bits_from(&self, i: i64) -> u128 {
        let mut out = 0u128;
        for k in 0..128 {
            if self.bit(i + k) {
                out |= 1 << k;
            }
        }
        out
    }

    fn mul_small(&mut self, m: u64) {
        let mut carry = 0u128;
        for l in self.0.iter_mut() {
            let v = (*l as u128) * (m as u128) + carry;
            *l = v as u64;
            carry = v >> 64;
        }
        if carry > 0 {
            self.0.push(carry as u64);
        }
    }

    fn add_small(&mut self, a: u64) {
        let mut carry = a;
        for l in self.0.iter_mut() {
            let (v, c) = l.overflowing_add(carry);
            *l = v;
            carry = c as u64;
            if carry == 0 {
                return;
            }
        }
        if carry > 0 {
            self.0.push(carry);
        }
    }

    fn mul_pow10(&mut self, mut n: u64) {
        while n >= 19 {
            self.mul_small(10_000_000_000_000_000_000);
            n -= 19;
        }
        self.mul_small(10u64.pow(n as u32));
    }

    fn pow10(n: u64) -> Big {
        let mut b = Big(vec![1]);
        b.mul_pow10(n);
        b
    }

    fn shl(&self, n: i64) -> Big {
        let (limbs, off) = ((n / 64) as usize, (n % 64) as u32);
        let mut out = vec![0u64; limbs];
        let mut carry = 0u64;
        for &l in &self.0 {
            out.push((l << off) | carry);
            carry = if off == 0 { 0 } else { l >> (64 - off) };
        }
        out.push(carry);
        let mut b = Big(out);
        b.trim();
        b
    }

    fn cmp(&self, o: &Big) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    /// `self -= o`; requires `self >= o`.
    fn sub(&mut self, o: &Big) {
        let mut borrow = 0u64;
        for (i, l) in self.0.iter_mut().enumerate() {
            let r = o.0.get(i).copied().unwrap_or(0);
            let (v1, b1) = l.overflowing_sub(r);
            let (v2, b2) = v1.overflowing_sub(borrow);
            *l = v2;
            borrow = (b1 || b2) as u64;
        }
        assert!(borrow == 0, "Big::sub underflow");
        self.trim();
    }

    fn add(&self, o: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(o.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(o.0.len()) {
            let (a, b) = (
                self.0.get(i).copied().unwrap_or(0),
                o.0.get(i).copied().unwrap_or(0),
            );
            let (v1, c1) = a.overflowing_add(b);
            let (v2, c2) = v1.overflowing_add(carry);
            out.push(v2);
            carry = (c1 || c2) as u64;
        }
        out.push(carry);
        let mut b = Big(out);
        b.trim();
        b
    }

    /// Divides in place by `d`, returning the remainder.
    fn divmod_small(&mut self, d: u64) -> u64 {
        let mut rem = 0u128;
        for l in self.0.iter_mut().rev() {
            let cur = (rem << 64) | *l as u128;
            *l = (cur / d as u128) as u64;
            rem = cur % d as u128;
        }
        self.trim();
        rem as u64
    }

    /// Decimal digits, most significant first ("0" for zero).
    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.divmod_small(10_000_000_000_000_000_000));
        }
        let mut s = chunks.last().map_or("0".to_string(), |c| c.to_string());
        for c in chunks.iter().rev().skip(1) {
            s.push_str(&format!("{c:019}"));
        }
        s
    }
}

/// Rounds the exact value `n * 2^e` (plus a sticky "something non-zero below") to the
/// nearest extended value, ties to even; overflow gives Inf, underflow denormals or zero.
fn round(n: &Big, e: i64, sticky: bool) -> Kind {
    if n.is_zero() {
        return Kind::Zero;
    }
    let top = n.bit_len() - 1 + e;
    let lsb = (top - (MANT_BITS - 1)).max(LSB_EXP_MIN);
    let shift = lsb - e;
    let (mut mant, mut lsb) = if shift <= 0 {
        (n.bits_from(0) << -shift, lsb)
    } else {
        let kept = n.bits_from(shift);
        let half = n.bit(shift - 1);
        let rest = sticky || n.any_below(shift - 1);
        let up = half && (rest || kept & 1 == 1);
        (kept + up as u128, lsb)
    };
    if mant >> MANT_BITS != 0 {
        mant >>= 1;
        lsb += 1;
    }
    if mant == 0 {
        Kind::Zero
    } else if lsb > LSB_EXP_MAX {
        Kind::Inf
    } else {
        Kind::Finite {
            mant: mant as u64,
            exp: lsb,
        }
    }
}

impl LongDouble {
    /// +0.
    pub const ZERO: LongDouble = LongDouble {
        neg: false,
        kind: Kind::Zero,
    };

    /// Parses like Redis `string2ld`: the whole text must be a `strtold` number (decimal,
    /// hex `0x…p…`, `inf`/`infinity`), no leading space, not NaN, and not a finite
    /// number that overflows to ±inf or underflows to 0.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty()
            || text.len() > FLOAT_TEXT_LEN_MAX_BYTES
            || text[0].is_ascii_whitespace()
            || text[0] == 0x0b
        {
            return None;
        }
        // string2ld checks that strtold consumed the whole length: a NUL byte inside the
        // text (e.g. SETRANGE past the end) makes it "not a valid float".
        if text.contains(&0) {
            return None;
        }
        let (neg, body) = match text.first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble {
                neg,
                kind: Kind::Inf,
            });
        }
        let hex = body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x';
        let (kind, nonzero) = if hex {
            parse_hex(&body[2..])?
        } else {
            parse_decimal(body)?
        };
        match kind {
            Kind::Inf => None,
            Kind::Zero if nonzero => None,
            _ => Some(LongDouble { neg, kind }),
        }
    }

    /// `self + other`, correctly rounded (round to nearest, ties to even).
    pub fn plus(self, other: LongDouble) -> LongDouble {
        use Kind::*;
        match (self.kind, other.kind) {
            (NaN, _) | (_, NaN) => LongDouble {
                neg: false,
                kind: NaN,
            },
            (Inf, Inf) if self.neg != other.neg => LongDouble {
                neg: false,
                kind: NaN,
            },
            (Inf, _) => self,
            (_, Inf) => other,
            (Zero, Zero) => LongDouble {
                neg: self.neg && other.neg,
                kind: Zero,
            },
            (Zero, _) => other,
            (_, Zero) => self,
            (Finite { mant: ma, exp: ea }, Finite { mant: mb, exp: eb }) => {
                let e = ea.min(eb);
                let a = Big::from_u128(ma as u128).shl(ea - e);
                let b = Big::from_u128(mb as u128).shl(eb - e);
                let (neg, n) = if self.neg == other.neg {
                    (self.neg, a.add(&b))
                } else if a.cmp(&b) == std::cmp::Ordering::Less {
                    let mut d = b;
                    d.sub(&a);
                    (other.neg, d)
                } else {
                    let mut d = a;
                    d.sub(&b);
                    (self.neg, d)
                };
                let kind = round(&n, e, false);
                LongDouble {
                    neg: neg && kind != Zero,
                    kind,
                }
            }
        }
    }

    /// False for ±inf and NaN.
    pub fn is_finite(self) -> bool {
        matches!(self.kind, Kind::Zero | Kind::Finite { .. })
    }

    /// Redis's human format: `%.17Lf`, trailing zeros (and a bare '.') removed, "-0" → "0".
    /// Only meaningful for finite values ("inf"/"nan" otherwise).
    pub fn to_human_string(self) -> String {
        let (mant, exp) = match self.kind {
            Kind::Zero => return "0".to_string(),
            Kind::Inf => return if self.neg { "-inf" } else { "inf" }.to_string(),
            Kind::NaN => return "nan".to_string(),
            Kind::Finite { mant, exp } => (mant, exp),
        };
        // r = round_half_even(mant * 2^exp * 10^17).
        let mut scaled = Big::from_u128(mant as u128);
        scaled.mul_pow10(HUMAN_FRACTION_DIGITS as u64);
        let r = if exp >= 0 {
            scaled.shl(exp)
        } else {
            let sh = -exp;
            let mut q = Big(Vec::new());
            let bits = scaled.bit_len();
            if sh <= bits {
                // q = scaled >> sh, rebuilt limb by limb.
                let limbs = ((bits - sh) / 64 + 1) as usize;
                q = Big((0..limbs)
                    .map(|i| scaled.bits_from(sh + 64 * i as i64) as u64)
                    .collect());
                q.trim();
            }
            let half = scaled.bit(sh - 1);
            let rest = scaled.any_below(sh - 1);
            if half && (rest || q.bit(0)) {
                q.add_small(1);
            }
            q
        };
        let mut digits = r.to_decimal();
        if digits.len() <= HUMAN_FRACTION_DIGITS {
            digits = format!(
                "{}{}",
                "0".repeat(HUMAN_FRACTION_DIGITS + 1 - digits.len()),
                digits
            );
        }
        let point = digits.len() - HUMAN_FRACTION_DIGITS;
        let mut s = String::with_capacity(digits.len() + 2);
        if self.neg {
            s.push('-');
        }
        s.push_str(&digits[..point]);
        let frac = digits[point..].trim_end_matches('0');
        if !frac.is_empty() {
            s.push('.');
            s.push_str(frac);
        }
        if s == "-0" {
            s = "0".to_string();
        }
        s
    }
}

/// Decimal `digits[.digits][e[+-]digits]` → (rounded kind, input had a non-zero digit).
fn parse_decimal(body: &[u8]) -> Option<(Kind, bool)> {
    const EXP_CLAMP: i64 = 1_000_000;
    let mut n = Big(Vec::new());
    let (mut i, mut any_digit, mut exp10, mut seen_point) = (0usize, false, 0i64, false);
    while i < body.len() {
        match body[i] {
            c @ b'0'..=b'9' => {
                any_digit = true;
                n.mul_small(10);
                n.add_small((c - b'0') as u64);
                exp10 -= seen_point as i64;
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if !any_digit {
        return None;
    }
    if i < body.len() {
        if body[i] | 0x20 != b'e' {
            return None;
        }
        let e = &body[i + 1..];
        let (eneg, edigits) = match e.first() {
            Some(b'-') => (true, &e[1..]),
            Some(b'+') => (false, &e[1..]),
            _ => (false, e),
        };
        if edigits.is_empty() || !edigits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut ev = 0i64;
        for &d in edigits {
            ev = (ev * 10 + (d - b'0') as i64).min(EXP_CLAMP);
        }
        exp10 += if eneg { -ev } else { ev };
    }
    if n.is_zero() {
        return Some((Kind::Zero, false));
    }
    // Decimal order of magnitude: value < 10^(digits + exp10).
    let digits = n.to_decimal().len() as i64;
    if digits + exp10 > 4934 {
        return Some((Kind::Inf, true));
    }
    if digits + exp10 < -4952 {
        return Some((Kind::Zero, true));
    }
    if exp10 >= 0 {
        n.mul_pow10(exp10 as u64);
        return Some((round(&n, 0, false), true));
    }
    let b = Big::pow10((-exp10) as u64);
    // q = floor(n * 2^s / b) with 2^66 <= q < 2^68.
    let s = 67 + b.bit_len() - n.bit_len();
    let (mut a, b) = if s >= 0 {
        (n.shl(s), b)
    } else {
        (n, b.shl(-s))
    };
    let mut q = 0u128;
    for bit in (0..68).rev() {
        let t = b.shl(bit);
        if a.cmp(&t) != std::cmp::Ordering::Less {
            a.sub(&t);
            q |= 1 << bit;
        }
    }
    Some((round(&Big::from_u128(q), -s, !a.is_zero()), true))
}

/// Hex `h[.h][p[+-]d]` (after "0x") → (rounded kind, non-zero input).
fn parse_hex(body: &[u8]) -> Option<(Kind, bool)> {
    const EXP_CLAMP: i64 = 1_000_000;
    let mut n = Big(Vec::new());
    let (mut i, mut any_digit, mut exp2, mut seen_point) = (0usize, false, 0i64, false);
    while i < body.len() {
        let c = body[i];
        if let Some(d) = (c as char).to_digit(16) {
            any_digit = true;
            if n.bit_len() < 20_000 {
                n.mul_small(16);
                n.add_small(d as u64);
                exp2 -= 4 * seen_point as i64;
            } else {
                exp2 += 4 * !seen_point as i64;
            }
        } else if c == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        i += 1;
    }
    if !any_digit {
        return None;
    }
    if i < body.len() {
        if body[i] | 0x20 != b'p' {
            return None;
        }
        let e = &body[i + 1..];
        let (eneg, edigits) = match e.first() {
            Some(b'-') => (true, &e[1..]),
            Some(b'+') => (false, &e[1..]),
            _ => (false, e),
        };
        if edigits.is_empty() || !edigits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut ev = 0i64;
        for &d in edigits {
            ev = (ev * 10 + (d - b'0') as i64).min(EXP_CLAMP);
        }
        exp2 += if eneg { -ev } else { ev };
    }
    Some((round(&n, exp2, false), !n.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::LongDouble;

    fn sum(a: &str, b: &str) -> String {
        let (a, b) = (
            LongDouble::parse(a.as_bytes()).unwrap(),
            LongDouble::parse(b.as_bytes()).unwrap(),
        );
        a.plus(b).to_human_string()
    }

    fn show(a: &str) -> String {
        LongDouble::parse(a.as_bytes()).unwrap().to_human_string()
    }

    /// Expected strings were produced by redis-server 7.0.15 (x86-64) with INCRBYFLOAT.
    #[test]
    fn matches_redis_incrbyfloat() {
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("0", "10.5"), "10.5");
        assert_eq!(sum("0", "3.0e3"), "3000");
        assert_eq!(sum("0", "1e30"), "1000000000000000000024696061952");
        assert_eq!(sum("1", "1e-20"), "1");
        assert_eq!(sum("0", "12345678901.1"), "12345678901.09999999962747097");
    }

    #[test]
    fn formatting() {
        assert_eq!(show("0"), "0");
        assert_eq!(show("-0"), "0");
        assert_eq!(show("-1.5"), "-1.5");
        assert_eq!(show("1e-18"), "0");
        assert_eq!(show("-1e-18"), "0");
        assert_eq!(show("0x1.8p1"), "3");
        assert_eq!(
            show("5e-18"),
            "0",
            "just below the tie, as redis-server says"
        );
        assert_eq!(show("1e-17"), "0.00000000000000001");
    }

    #[test]
    fn parsing_rules() {
        for bad in [
            "", " 1", "1 ", "abc", "1e", "1e+", ".", "-", "nan", "NaN", "1e5000", "1e-5000", "0x",
            "1.2.3", "1\0", "1\0x", // a NUL inside: string2ld rejects (redis-server 7.0.15)
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        for good in [
            "1",
            "+1",
            "-1",
            ".5",
            "5.",
            "1E3",
            "inf",
            "-Infinity",
            "0e-99999",
            "1e-4940",
            "0x10",
        ] {
            assert!(LongDouble::parse(good.as_bytes()).is_some(), "{good:?}");
        }
        assert!(!LongDouble::parse(b"inf").unwrap().is_finite());
        assert!(!sum_is_finite("1.18e4932", "1.18e4932"));
    }

    fn sum_is_finite(a: &str, b: &str) -> bool {
        LongDouble::parse(a.as_bytes())
            .unwrap()
            .plus(LongDouble::parse(b.as_bytes()).unwrap())
            .is_finite()
    }
}
