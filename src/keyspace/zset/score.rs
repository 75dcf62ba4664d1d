//! Score text: parsing like C `strtod` as Redis filters it, and printing like Redis 7.0's
//! `addReplyDouble` (`"%.17g"`, with "inf" / "-inf").
//!
//! Sources: Redis 7.0 `getDoubleFromObject` (ZADD/ZINCRBY scores: no leading space, no
//! overflow to ±inf or underflow to 0, no NaN) and `zslParseRange` (ZRANGEBYSCORE bounds:
//! plain `strtod`, leading whitespace and overflow allowed, NaN rejected). Checked against
//! redis-server 7.0.15. What can fail: parsing returns None.

/// Longest score text accepted (Redis `MAX_LONG_DOUBLE_CHARS`-style bound).
pub const SCORE_TEXT_LEN_MAX_BYTES: usize = 5 * 1024;
/// Hex mantissa digits kept when parsing hex floats (the rest only shift the exponent).
const HEX_DIGITS_MAX: usize = 15;

/// Formats a score exactly as Redis 7.0 replies it (`%.17g`): 1.1 → "1.1000000000000001",
/// 1e300 → "1.0000000000000001e+300", 100 → "100", ±inf → "inf"/"-inf".
pub fn format_score(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Fast path: integers below 1e17 print all their digits exactly under %.17g.
    if x.fract() == 0.0 && x.abs() < 1e17 {
        return (x as i64).to_string();
    }
    let sci = format!("{:.16e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("exponent present");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let mut digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    let text = |d: &[u8]| String::from_utf8(d.to_vec()).expect("ASCII digits");
    if !(-4..17).contains(&exp) {
        out.push(digits[0] as char);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&text(&digits[1..]));
        }
        let sign = if exp < 0 { '-' } else { '+' };
        out.push_str(&format!("e{sign}{:02}", exp.abs()));
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        while digits.len() < int_len {
            digits.push(b'0');
        }
        out.push_str(&text(&digits[..int_len]));
        if digits.len() > int_len {
            out.push('.');
            out.push_str(&text(&digits[int_len..]));
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&text(&digits));
    }
    out
}

/// What `strtod` would consume from `s` as a whole: Some(value, overflowed_or_underflowed)
/// when all of `s` is one number, else None. No leading whitespace handling here.
fn strtod_whole(s: &[u8]) -> Option<(f64, bool)> {
    if s.is_empty() || s.len() > SCORE_TEXT_LEN_MAX_BYTES {
        return None;
    }
    let (neg, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == b"inf" || lower == b"infinity" {
        return Some((
            if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            false,
        ));
    }
    let (value, digits) = if let Some(hex) = lower.strip_prefix(b"0x") {
        (parse_hex(hex)?, hex)
    } else {
        (parse_decimal(body)?, body)
    };
    let is_exponent = |b: &u8| matches!(b, b'e' | b'p') && !lower.starts_with(b"0x") || *b == b'p';
    let has_nonzero_digit = digits
        .iter()
        .take_while(|b| !is_exponent(&b.to_ascii_lowercase()))
        .any(|b| b.is_ascii_hexdigit() && *b != b'0');
    let range_error = value.is_infinite() || (value == 0.0 && has_nonzero_digit);
    Some((if neg { -value } else { value }, range_error))
}

fn parse_decimal(body: &[u8]) -> Option<f64> {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < body.len() && body[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa_digits = digits(&mut i);
    if i < body.len() && body[i] == b'.' {
        i += 1;
        mantissa_digits += digits(&mut i);
    }
    if mantissa_digits == 0 {
        return None;
    }
    if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
        i += 1;
        if i < body.len() && (body[i] == b'+' || body[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != body.len() {
        return None;
    }
    std::str::from_utf8(body).ok()?.parse::<f64>().ok()
}

/// Hex float body after "0x": hex digits, optional '.', hex digits, optional p[+-]exp.
fn parse_hex(body: &[u8]) -> Option<f64> {
    let mut mantissa: u64 = 0;
    let mut kept = 0usize;
    let mut exp2: i64 = 0;
    let mut seen = 0usize;
    let mut i = 0;
    let mut after_point = false;
    while i < body.len() {
        let c = body[i];
        if c == b'.' && !after_point {
            after_point = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            seen += 1;
            if kept < HEX_DIGITS_MAX && (mantissa != 0 || d != 0) {
                mantissa = mantissa * 16 + d as u64;
                kept += 1;
                if after_point {
                    exp2 -= 4;
                }
            } else if kept >= HEX_DIGITS_MAX && !after_point {
                exp2 += 4;
            } else if mantissa == 0 && after_point {
                exp2 -= 4;
            }
        } else {
            break;
        }
        i += 1;
    }
    if seen == 0 {
        return None;
    }
    if i < body.len() {
        if body[i] != b'p' {
            return None;
        }
        let e = std::str::from_utf8(&body[i + 1..]).ok()?;
        if e.is_empty()
            || e.len() > 12
            || !e
                .trim_start_matches(['+', '-'])
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        exp2 += e.parse::<i64>().ok()?;
    }
    Some(mantissa as f64 * 2f64.powi(exp2.clamp(-2000, 2000) as i32))
}

/// A ZADD / ZINCRBY score (Redis `getDoubleFromObject`): None for empty text, leading
/// whitespace, trailing garbage, NaN, or a value that overflows / underflows to 0.
pub fn parse_score(s: &[u8]) -> Option<f64> {
    if s.first()
        .is_some_and(|c| c.is_ascii_whitespace() || *c == 0x0b)
    {
        return None;
    }
    match strtod_whole(s)? {
        (_, true) => None,
        (v, false) => Some(v),
    }
}

/// A score-range bound value (Redis `zslParseRange` after the optional '('): plain strtod,
/// so leading whitespace, overflow to ±inf and the empty string (0) are accepted.
pub fn parse_range_value(s: &[u8]) -> Option<f64> {
    // Redis hands the argument to strtod as a C string and checks for the NUL terminator,
    // so the text ends at the first NUL byte (`"1\0zz"` is the bound 1).
    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
    let start = s
        .iter()
        .position(|c| !(c.is_ascii_whitespace() || *c == 0x0b))
        .unwrap_or(s.len());
    let s = &s[start..];
    if s.is_empty() {
        return Some(0.0);
    }
    strtod_whole(s).map(|(v, _)| v)
}
