//! Inline commands: splitting one request line (`SET "a b" 'c'`) into arguments with the
//! quoting rules of Redis's `sdssplitargs` (sds.c), which `processInlineBuffer`
//! (networking.c) applies to every request line that does not start with `*`.
//!
//! Rules (from the Redis source's documented behaviour, re-implemented here):
//! - arguments are separated by C `isspace` bytes (space, `\t`, `\n`, `\v`, `\f`, `\r`);
//!   an unquoted argument ends at space, `\t`, `\n`, `\r` (not `\v` / `\f`);
//! - `"…"` supports the escapes `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a`, and `\c` → `c`;
//! - `'…'` supports only `\'`;
//! - a quote may open in the middle of an argument (`foo"bar"` → `foobar`), and a closing
//!   quote must be followed by whitespace or the end of the line;
//! - the line is a C string to Redis, so a NUL byte ends it.
//!
//! What can fail: an unterminated quote or a closing quote followed by a non-space byte is
//! an [`InlineError`] (Redis: `unbalanced quotes in request`). Nothing here recurses or
//! allocates more than the line's length.

use bytes::Bytes;

/// The line had an unterminated quote or a closing quote not followed by whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineError;

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Double,
    Single,
}

/// Splits one inline request line (without its line terminator) into arguments.
///
/// Returns an empty vector for a blank line (Redis skips those). Errors: [`InlineError`]
/// for unbalanced quotes.
pub fn split_inline_args(line: &[u8]) -> Result<Vec<Bytes>, InlineError> {
    // Redis treats the line as a C string: a NUL ends it.
    let line = match memchr::memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    };
    // `at(k)` mimics reading a NUL-terminated string: 0 past the end.
    let at = |k: usize| -> u8 { line.get(k).copied().unwrap_or(0) };
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_c_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let mut quote = Quote::None;
        loop {
            let c = at(i);
            let mut done = false;
            match quote {
                Quote::Double => {
                    let hex = (hex_value(at(i + 2)), hex_value(at(i + 3)));
                    if let (b'\\', b'x', (Some(hi), Some(lo))) = (c, at(i + 1), hex) {
                        current.push(hi * 16 + lo);
                        i += 3;
                    } else if c == b'\\' && at(i + 1) != 0 {
                        i += 1;
                        current.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    } else if c == b'"' {
                        if at(i + 1) != 0 && !is_c_space(at(i + 1)) {
                            return Err(InlineError);
                        }
                        done = true;
                    } else if c == 0 {
                        return Err(InlineError);
                    } else {
                        current.push(c);
                    }
                }
                Quote::Single => {
                    if c == b'\\' && at(i + 1) == b'\'' {
                        i += 1;
                        current.push(b'\'');
                    } else if c == b'\'' {
                        if at(i + 1) != 0 && !is_c_space(at(i + 1)) {
                            return Err(InlineError);
                        }
                        done = true;
                    } else if c == 0 {
                        return Err(InlineError);
                    } else {
                        current.push(c);
                    }
                }
                Quote::None => match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => quote = Quote::Double,
                    b'\'' => quote = Quote::Single,
                    _ => current.push(c),
                },
            }
            if at(i) != 0 {
                i += 1;
            }
            if done {
                break;
            }
        }
        args.push(Bytes::from(current));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, InlineError> {
        split_inline_args(line).map(|v| v.into_iter().map(|b| b.to_vec()).collect())
    }

    fn owned(args: &[&[u8]]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.to_vec()).collect()
    }

    #[test]
    fn plain_words_split_on_whitespace() {
        assert_eq!(
            split(b"  SET  k\tv  ").unwrap(),
            owned(&[b"SET", b"k", b"v"])
        );
        assert_eq!(split(b"").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(split(b" \t \x0b").unwrap(), Vec::<Vec<u8>>::new());
        // \v separates only as leading blank, not inside an unquoted word.
        assert_eq!(split(b"a\x0bb").unwrap(), owned(&[b"a\x0bb"]));
    }

    #[test]
    fn double_quotes_and_escapes() {
        assert_eq!(
            split(b"ECHO \"a b\\n\\r\\t\\b\\a\\z\\\"\\x41\\xZZ\"").unwrap(),
            owned(&[b"ECHO", b"a b\n\r\t\x08\x07z\"AxZZ"])
        );
        assert_eq!(split(b"\"\"").unwrap(), owned(&[b""]));
        assert_eq!(split(b"foo\"bar\" x").unwrap(), owned(&[b"foobar", b"x"]));
        assert_eq!(split(b"\"\\x00\\xfF\"").unwrap(), owned(&[b"\x00\xff"]));
    }

    #[test]
    fn single_quotes() {
        assert_eq!(split(b"'a \\' \\n b'").unwrap(), owned(&[b"a ' \\n b"]));
        assert_eq!(split(b"''").unwrap(), owned(&[b""]));
    }

    #[test]
    fn unbalanced_quotes_are_errors() {
        assert_eq!(split(b"\"abc"), Err(InlineError));
        assert_eq!(split(b"'abc"), Err(InlineError));
        assert_eq!(split(b"\"a\"b"), Err(InlineError));
        assert_eq!(split(b"'a'b"), Err(InlineError));
        assert_eq!(split(b"\"abc\\"), Err(InlineError));
    }

    #[test]
    fn nul_ends_the_line() {
        assert_eq!(split(b"a\x00 b c").unwrap(), owned(&[b"a"]));
        assert_eq!(split(b"\"a\x00\" b"), Err(InlineError));
    }

    /// Lines sent to a real redis-server 7 as `RPUSH L <line>`, with what LRANGE returned
    /// (`None`: Redis replied `-ERR Protocol error: unbalanced quotes in request`).
    #[test]
    fn matches_redis_server_7() {
        type Case<'a> = (&'a [u8], Option<&'a [&'a [u8]]>);
        let cases: &[Case] = &[
            (b"a\\x41 \"\\x4g\"", Some(&[b"a\\x41", b"x4g"])),
            (b"\"\\x4\"", Some(&[b"x4"])),
            (b"'it''s'", None),
            (b"'a\\\\'", None),
            (b"\"a\\\\\" b", Some(&[b"a\\", b"b"])),
            (b"a'b c'd", None),
            (b"a\"b c\"", Some(&[b"ab c"])),
            (b"\"tab\\there\"", Some(&[b"tab\there"])),
            (b"x\x0cy", Some(&[b"x\x0cy"])),
            (b"\x0c x", Some(&[b"x"])),
            (b"\"a\"\x0bb", Some(&[b"a", b"b"])),
            (b"'a'\x0cb", Some(&[b"a", b"b"])),
            (b"\"\\\"", None),
            (b"\"\\x41\\x4", None),
            (b"a\\nb", Some(&[b"a\\nb"])),
            (b"'\\n'", Some(&[b"\\n"])),
            (b"\"\\X41\"", Some(&[b"X41"])),
            (b"\"\"\"\"", None),
            (b"\"a\" \"b\"", Some(&[b"a", b"b"])),
        ];
        for (line, expected) in cases {
            let got = split(line).ok();
            assert_eq!(
                got,
                expected.map(owned),
                "line {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
