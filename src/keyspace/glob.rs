//! Glob-style pattern matching for KEYS and SCAN MATCH, with the semantics of Redis's
//! `stringmatchlen` (util.c): `*` any run of bytes, `?` any one byte, `[abc]` `[^a]`
//! `[a-z]` classes (reversed ranges are swapped, `\` escapes inside a class, an
//! unterminated class runs to the end of the pattern), `\x` escapes `x`.
//!
//! Iterative (backtracks only to the last `*`), so its cost is bounded by
//! O(pattern × string) and it cannot overflow the stack. Nothing here can fail.

/// True when `string` matches the glob `pattern` exactly as Redis's `stringmatchlen`
/// would (case-sensitive). Quirk kept from Redis: an empty string matches only an empty
/// pattern (KEYS/SCAN special-case a lone `*` before calling this).
pub fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    if string.is_empty() {
        return pattern.is_empty();
    }
    let (mut p, mut s) = (0usize, 0usize);
    // Position just after the last `*` seen, and the string position it resumes from.
    let mut star: Option<(usize, usize)> = None;
    while s < string.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            if p == pattern.len() {
                return true;
            }
            star = Some((p, s));
            continue;
        }
        if p < pattern.len() {
            if let Some(next) = match_one(pattern, p, string[s]) {
                p = next;
                s += 1;
                continue;
            }
        }
        match star.as_mut() {
            Some((sp, ss)) => {
                *ss += 1;
                p = *sp;
                s = *ss;
            }
            None => return false,
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// Matches the single-byte token starting at `pattern[p]` (not `*`) against `c`.
/// Returns the position after the token on a match.
fn match_one(pattern: &[u8], mut p: usize, c: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => {
            p += 1;
            let negate = p < pattern.len() && pattern[p] == b'^';
            if negate {
                p += 1;
            }
            let mut matched = false;
            loop {
                if p >= pattern.len() {
                    // Unterminated class: it ends with the pattern.
                    break;
                }
                let rest = pattern.len() - p;
                if pattern[p] == b'\\' && rest >= 2 {
                    p += 1;
                    matched |= pattern[p] == c;
                } else if pattern[p] == b']' {
                    p += 1;
                    break;
                } else if rest >= 3 && pattern[p + 1] == b'-' {
                    let (mut lo, mut hi) = (pattern[p], pattern[p + 2]);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    matched |= lo <= c && c <= hi;
                    p += 2;
                } else {
                    matched |= pattern[p] == c;
                }
                p += 1;
            }
            (matched != negate).then_some(p)
        }
        b'\\' if pattern.len() - p >= 2 => (pattern[p + 1] == c).then_some(p + 2),
        lit => (lit == c).then_some(p + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn stars_and_questions() {
        assert!(m("*", "abc"));
        assert!(m("a*", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbb"));
        assert!(m("*b*", "abc"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("**a**", "xa"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn empty_string_quirk() {
        assert!(m("", ""));
        assert!(!m("*", ""));
        assert!(!m("a", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed range is swapped");
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[\\]]", "]"));
        // Like Redis: `a-]` is a range from ']' to 'a' and the class is then unterminated.
        assert!(m("[a-]", "a"));
        assert!(m("[a-]", "]"));
        assert!(!m("[a-]", "-"));
        assert!(m("[abc", "b"), "unterminated class runs to the end");
        assert!(!m("[abc", "bx"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\?", "a?"));
        assert!(!m("a\\?", "ab"));
        assert!(m("a\\", "a\\"), "trailing backslash is a literal");
    }

    /// Every pattern in `testdata/glob_redis.txt` selects exactly the keys redis-server
    /// 7.0.15's KEYS selected (recorded by `testdata/record_glob.py`).
    #[test]
    fn matches_recorded_redis_keys_output() {
        let keys: Vec<&str> = include_str!("testdata/glob_keys.txt").lines().collect();
        let mut checked = 0;
        for line in include_str!("testdata/glob_redis.txt").lines() {
            let mut fields = line.split('\t');
            let pattern = fields.next().unwrap();
            let mut want: Vec<&str> = fields.collect();
            want.sort();
            let mut got: Vec<&str> = keys.iter().copied().filter(|k| m(pattern, k)).collect();
            got.sort();
            assert_eq!(got, want, "pattern {pattern:?}");
            checked += 1;
        }
        assert!(checked > 50);
    }

    #[test]
    fn pathological_is_fast() {
        let s = "a".repeat(2000);
        let p = "*a".repeat(50) + "b";
        assert!(!m(&p, &s));
    }
}
