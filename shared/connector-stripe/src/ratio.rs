//! Exact rational arithmetic for money: MRR is computed without floats and rounded once.

use std::cmp::Ordering;
use std::fmt;

/// A reduced fraction `num / den` with `den > 0`. Every operation is checked: `None` means
/// the result does not fit in `i128`, which the MRR computation reports instead of guessing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ratio {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ratio {
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };
    pub const ONE: Ratio = Ratio { num: 1, den: 1 };

    /// `num / den`, reduced; `None` when `den` is zero.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let (num, den) = (num / g, den / g);
        if den < 0 {
            Some(Self {
                num: num.checked_neg()?,
                den: den.checked_neg()?,
            })
        } else {
            Some(Self { num, den })
        }
    }

    pub fn from_int(n: i64) -> Self {
        Self {
            num: i128::from(n),
            den: 1,
        }
    }

    pub fn numer(self) -> i128 {
        self.num
    }

    pub fn denom(self) -> i128 {
        self.den
    }

    /// Parses decimal text as Stripe sends it in `*_decimal` fields (`"12.345"`, `"-0.5"`,
    /// `"2000"`), exactly.
    pub fn parse_decimal(raw: &str) -> Option<Self> {
        let (negative, digits) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if (whole.is_empty() && frac.is_empty())
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 30
        {
            return None;
        }
        let mut num: i128 = 0;
        for b in whole.bytes().chain(frac.bytes()) {
            num = num.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let den = 10i128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        Self::new(if negative { -num } else { num }, den)
    }

    /// The exact value of a JSON number that serde read as `f64` (Stripe's `percent_off`),
    /// taken from its shortest decimal form so `25.5` is exactly 51/2 and `33.33` is
    /// 3333/100, not the nearest binary fraction.
    pub fn from_f64_decimal(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        Self::parse_decimal(&format!("{value}"))
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        let num = self
            .num
            .checked_mul(other.den)?
            .checked_add(other.num.checked_mul(self.den)?)?;
        Self::new(num, self.den.checked_mul(other.den)?)
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.checked_add(Self {
            num: other.num.checked_neg()?,
            den: other.den,
        })
    }

    pub fn checked_mul(self, other: Self) -> Option<Self> {
        // Cross-reduce first so products stay small.
        let g1 = gcd(self.num, other.den).max(1);
        let g2 = gcd(other.num, self.den).max(1);
        let num = (self.num / g1).checked_mul(other.num / g2)?;
        let den = (self.den / g2).checked_mul(other.den / g1)?;
        Self::new(num, den)
    }

    pub fn checked_div(self, other: Self) -> Option<Self> {
        if other.num == 0 {
            return None;
        }
        self.checked_mul(Self::new(other.den, other.num)?)
    }

    pub fn is_negative(self) -> bool {
        self.num < 0
    }

    /// Rounds half away from zero to an integer (9966.5 -> 9967, -0.5 -> -1).
    pub fn round_half_away_from_zero(self) -> i128 {
        let q = self.num / self.den;
        let r = self.num % self.den;
        if 2 * r.abs() >= self.den {
            q + self.num.signum()
        } else {
            q
        }
    }

    /// Rounds towards positive infinity (for `transform_quantity.round = up`).
    pub fn ceil(self) -> i128 {
        let q = self.num.div_euclid(self.den);
        if self.num.rem_euclid(self.den) == 0 {
            q
        } else {
            q + 1
        }
    }

    /// Rounds towards negative infinity.
    pub fn floor(self) -> i128 {
        self.num.div_euclid(self.den)
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ratio {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_fractions(self.num, self.den, other.num, other.den)
    }
}

/// Compares `an/ad` with `bn/bd` (positive denominators) without multiplying, so it never
/// overflows: compare the integer parts, then the reciprocals of the remainders.
fn compare_fractions(an: i128, ad: i128, bn: i128, bd: i128) -> Ordering {
    let (qa, qb) = (an.div_euclid(ad), bn.div_euclid(bd));
    if qa != qb {
        return qa.cmp(&qb);
    }
    let (ra, rb) = (an.rem_euclid(ad), bn.rem_euclid(bd));
    match (ra == 0, rb == 0) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        // ra/ad < rb/bd  <=>  bd/rb < ad/ra
        (false, false) => compare_fractions(bd, rb, ad, ra),
    }
}

impl fmt::Debug for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Ratio {
        Ratio::new(n, d).expect("non-zero denominator")
    }

    #[test]
    fn fractions_are_kept_reduced_with_a_positive_denominator() {
        assert_eq!(r(6, -4), r(-3, 2));
        assert_eq!(r(-3, 2).denom(), 2);
        assert!(Ratio::new(1, 0).is_none());
    }

    #[test]
    fn decimal_text_parses_exactly() {
        assert_eq!(Ratio::parse_decimal("25.5"), Some(r(51, 2)));
        assert_eq!(Ratio::parse_decimal("2000"), Some(r(2000, 1)));
        assert_eq!(Ratio::parse_decimal("-0.125"), Some(r(-1, 8)));
        assert_eq!(Ratio::parse_decimal(".5"), Some(r(1, 2)));
        assert_eq!(Ratio::parse_decimal(""), None);
        assert_eq!(Ratio::parse_decimal("1e3"), None);
        assert_eq!(Ratio::parse_decimal("1.2.3"), None);
    }

    #[test]
    fn floats_are_read_through_their_shortest_decimal_form() {
        assert_eq!(Ratio::from_f64_decimal(25.5), Some(r(51, 2)));
        assert_eq!(Ratio::from_f64_decimal(33.33), Some(r(3333, 100)));
        assert_eq!(Ratio::from_f64_decimal(f64::NAN), None);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(r(29900, 3).round_half_away_from_zero(), 9967);
        assert_eq!(r(52000, 12).round_half_away_from_zero(), 4333);
        assert_eq!(r(1, 2).round_half_away_from_zero(), 1);
        assert_eq!(r(-1, 2).round_half_away_from_zero(), -1);
        assert_eq!(r(-7, 3).round_half_away_from_zero(), -2);
        assert_eq!(r(7, 2).ceil(), 4);
        assert_eq!(r(7, 2).floor(), 3);
        assert_eq!(r(8, 2).ceil(), 4);
    }

    #[test]
    fn arithmetic_is_exact() {
        let third = r(1, 3);
        let sum = third
            .checked_add(third)
            .and_then(|s| s.checked_add(third))
            .expect("fits");
        assert_eq!(sum, Ratio::ONE);
        assert_eq!(r(3, 4).checked_sub(r(1, 4)), Some(r(1, 2)));
        assert_eq!(r(3, 4).checked_div(r(3, 8)), Some(r(2, 1)));
        assert_eq!(r(1, 1).checked_div(Ratio::ZERO), None);
        assert!(r(1, 3) < r(1, 2));
        assert_eq!(
            Ratio::new(i128::MAX, 1).and_then(|m| m.checked_add(Ratio::ONE)),
            None
        );
    }
}
