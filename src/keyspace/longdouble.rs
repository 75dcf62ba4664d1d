//! Placeholder (f64) for the x87 long double emulation used by INCRBYFLOAT.

/// A float value (temporary f64 implementation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LongDouble(f64);

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble(0.0);

    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        let t = std::str::from_utf8(s).ok()?;
        let v: f64 = t.parse().ok()?;
        (!v.is_nan()).then_some(LongDouble(v))
    }

    pub fn add(self, o: LongDouble) -> LongDouble {
        LongDouble(self.0 + o.0)
    }

    pub fn is_finite(self) -> bool {
        self.0.is_finite()
    }

    pub fn to_human_string(self) -> String {
        let mut s = format!("{:.17}", self.0);
        if s.contains('.') {
            while s.ends_with('0') {
                s.pop();
            }
            if s.ends_with('.') {
                s.pop();
            }
        }
        if s == "-0" {
            s = "0".into();
        }
        s
    }
}
