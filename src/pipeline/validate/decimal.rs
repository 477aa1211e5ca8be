//! Decimal numbers as written — `-12.50`, `.5`, `1.2E+3` — read without allocating, measured
//! (digits before and after the point) and compared exactly, for `numeric` precision and scale
//! and for `min`/`max` bounds.

use std::cmp::Ordering;

/// Exponent digits read at most; longer exponents saturate, far beyond any limit checked.
const MAX_EXPONENT_DIGITS: usize = 9;

/// A decimal number as written: `[+-] digits [. digits] [e [+-] digits]`, at least one digit
/// before the exponent. Borrows its digits from the text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decimal<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    exp: i64,
}

impl<'a> Decimal<'a> {
    /// Reads `text`, or `None` when it is not a decimal number (`NaN`, `inf`, `0x1F`, `1,5`).
    pub(super) fn parse(text: &'a str) -> Option<Self> {
        let mut rest = text.as_bytes();
        let negative = sign(&mut rest);
        let int = digits(&mut rest);
        let frac = match rest.split_first() {
            Some((b'.', tail)) => {
                rest = tail;
                digits(&mut rest)
            }
            _ => &[][..],
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let exp = match rest.split_first() {
            Some((b'e' | b'E', tail)) => {
                rest = tail;
                exponent(&mut rest)?
            }
            _ => 0,
        };
        rest.is_empty().then_some(Self {
            negative,
            int,
            frac,
            exp,
        })
    }

    /// The exponent as written (`1e3` → 3).
    pub(super) fn exponent(&self) -> i64 {
        self.exp
    }

    /// Whether the value is zero (`-0.00e5` is).
    pub(super) fn is_zero(&self) -> bool {
        self.significant().is_empty()
    }

    /// Digits before the point the value needs: 123.4 → 3, 0.05 → -1 (one zero after the
    /// point before the first significant digit), 0 → 0.
    pub(super) fn magnitude(&self) -> i64 {
        let (lead, significant) = self.split_significant();
        if significant.is_empty() {
            return 0;
        }
        self.point() - lead
    }

    /// Digits after the point the value needs: 1.50 → 1, 1.5e3 → 0.
    pub(super) fn scale(&self) -> i64 {
        let (lead, significant) = self.split_significant();
        if significant.is_empty() {
            return 0;
        }
        (lead + len_usize(significant.len()) - self.point()).max(0)
    }

    /// Digits after the point as written, trailing zeros included: 1.50 → 2, 1.5e3 → 0.
    pub(super) fn written_scale(&self) -> i64 {
        (len(self.frac) - self.exp).max(0)
    }

    /// Where the point falls in `int ++ frac`, counted in digits from the left.
    fn point(&self) -> i64 {
        len(self.int) + self.exp
    }

    /// The digits from the first to the last non-zero one; empty for zero.
    fn significant(&self) -> DigitRun<'a> {
        self.split_significant().1
    }

    /// How many leading zeros `int ++ frac` has, and the significant run after them.
    fn split_significant(&self) -> (i64, DigitRun<'a>) {
        let all = DigitRun {
            int: self.int,
            frac: self.frac,
        };
        let lead = all.leading_zeros();
        let run = all.trimmed(lead);
        (len_usize(lead), run)
    }

    /// Compares by value: `1.50` equals `15e-1`, `-0` equals `0`.
    pub(super) fn compare(&self, other: &Decimal<'_>) -> Ordering {
        let (a, b) = (self.signum(), other.signum());
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        let magnitude = self
            .magnitude()
            .cmp(&other.magnitude())
            .then_with(|| self.significant().compare(&other.significant()));
        if a < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }

    fn signum(&self) -> i8 {
        match (self.is_zero(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

/// A run of digits spread over the integer and fraction parts, read as one sequence.
#[derive(Debug, Clone, Copy)]
struct DigitRun<'a> {
    int: &'a [u8],
    frac: &'a [u8],
}

impl DigitRun<'_> {
    fn len(&self) -> usize {
        self.int.len() + self.frac.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn digit(&self, i: usize) -> u8 {
        let found = match i.checked_sub(self.int.len()) {
            None => self.int.get(i),
            Some(j) => self.frac.get(j),
        };
        found.copied().unwrap_or(b'0')
    }

    fn leading_zeros(&self) -> usize {
        (0..self.len())
            .take_while(|&i| self.digit(i) == b'0')
            .count()
    }

    /// The run without its first `lead` digits and without trailing zeros.
    fn trimmed(&self, lead: usize) -> Self {
        let end = (lead..self.len())
            .rev()
            .find(|&i| self.digit(i) != b'0')
            .map_or(lead, |i| i + 1);
        let (int_len, from, to) = (self.int.len(), lead, end);
        DigitRun {
            int: self
                .int
                .get(from.min(int_len)..to.min(int_len))
                .unwrap_or_default(),
            frac: (self.frac)
                .get(from.saturating_sub(int_len)..to.saturating_sub(int_len))
                .unwrap_or_default(),
        }
    }

    /// Compares two significant runs as digit sequences, the shorter padded with zeros.
    fn compare(&self, other: &DigitRun<'_>) -> Ordering {
        (0..self.len().max(other.len()))
            .map(|i| self.digit(i).cmp(&other.digit(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

fn len(digits: &[u8]) -> i64 {
    len_usize(digits.len())
}

fn len_usize(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Consumes an optional sign; true for `-`.
fn sign(rest: &mut &[u8]) -> bool {
    match rest.split_first() {
        Some((b'-', tail)) => {
            *rest = tail;
            true
        }
        Some((b'+', tail)) => {
            *rest = tail;
            false
        }
        _ => false,
    }
}

/// Consumes ASCII digits, possibly none.
fn digits<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (taken, tail) = rest.split_at(n);
    *rest = tail;
    taken
}

/// Consumes a signed exponent with at least one digit, saturating far beyond any real limit.
fn exponent(rest: &mut &[u8]) -> Option<i64> {
    let negative = sign(rest);
    let written = digits(rest);
    if written.is_empty() {
        return None;
    }
    let zeros = written.iter().take_while(|&&b| b == b'0').count();
    let significant = written.get(zeros..).unwrap_or_default();
    let value = if significant.len() > MAX_EXPONENT_DIGITS {
        10_i64.pow(MAX_EXPONENT_DIGITS as u32)
    } else {
        significant
            .iter()
            .fold(0, |n, d| n * 10 + i64::from(d - b'0'))
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::Decimal;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn dec(text: &str) -> Decimal<'_> {
        Decimal::parse(text).unwrap_or_else(|| panic!("{text:?} should parse"))
    }

    #[test]
    fn parse_accepts_decimal_syntax_only() {
        for good in ["0", "-12.50", "+.5", "5.", "1e3", "1.2E+3", "-4e-2", "007"] {
            assert!(Decimal::parse(good).is_some(), "{good:?}");
        }
        for bad in [
            "", "-", ".", "e3", "1e", "1e+", "NaN", "inf", "0x1F", "1,5", "1.2.3", " 1", "1_000",
        ] {
            assert!(Decimal::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn magnitude_and_scale_measure_the_digits_a_value_needs() {
        let cases = [
            ("123.4", 3, 1, 1),
            ("0.05", -1, 2, 2),
            ("1.50", 1, 1, 2),
            ("1.5e3", 4, 0, 0),
            ("1500", 4, 0, 0),
            ("-0.00", 0, 0, 2),
            ("12e-4", -2, 4, 4),
            ("007.10", 1, 1, 2),
        ];
        for (text, magnitude, scale, written) in cases {
            let d = dec(text);
            assert_eq!(d.magnitude(), magnitude, "magnitude of {text}");
            assert_eq!(d.scale(), scale, "scale of {text}");
            assert_eq!(d.written_scale(), written, "written scale of {text}");
        }
    }

    #[test]
    fn compare_orders_by_value_not_by_spelling() {
        let cases = [
            ("1.50", "15e-1", Ordering::Equal),
            ("-0", "0.0", Ordering::Equal),
            ("10", "9.99", Ordering::Greater),
            ("-10", "-9.99", Ordering::Less),
            ("0.001", "0.01", Ordering::Less),
            ("100", "1e2", Ordering::Equal),
            ("10.0000000000000001", "10", Ordering::Greater),
            ("-1", "0", Ordering::Less),
        ];
        for (a, b, expected) in cases {
            assert_eq!(dec(a).compare(&dec(b)), expected, "{a} vs {b}");
        }
    }

    #[test]
    fn huge_exponents_saturate() {
        assert!(dec("1e99999999999999999999").exponent() >= 1_000_000_000);
        assert!(dec("1e-99999999999999999999").exponent() <= -1_000_000_000);
    }

    proptest! {
        #[test]
        fn compare_agrees_with_integer_order(a in any::<i64>(), b in any::<i64>()) {
            let (ta, tb) = (a.to_string(), b.to_string());
            prop_assert_eq!(dec(&ta).compare(&dec(&tb)), a.cmp(&b));
        }

        #[test]
        fn compare_agrees_with_float_order(a in -1e6f64..1e6, b in -1e6f64..1e6) {
            let (ta, tb) = (format!("{a:e}"), format!("{b:?}"));
            prop_assert_eq!(Some(dec(&ta).compare(&dec(&tb))), a.partial_cmp(&b));
        }
    }
}
