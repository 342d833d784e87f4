use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// An ISO 4217 currency code, upper case (`USD`). Stripe sends lower case; `parse` accepts both.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let bytes = raw.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(ParseError::new(
                "currency",
                format!("{raw:?} is not a three-letter ISO 4217 code"),
            ));
        }
        Ok(Self([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters ever get in, so this is always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl Currency {
    /// The currency's exponent: 0 for the zero-decimal currencies Stripe lists, else 2.
    pub fn minor_digits(&self) -> u32 {
        const ZERO_DECIMAL: [&str; 16] = [
            "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
            "VUV", "XAF", "XOF", "XPF",
        ];
        if ZERO_DECIMAL.contains(&self.as_str()) {
            0
        } else {
            2
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = ParseError;
    fn try_from(raw: String) -> Result<Self, ParseError> {
        Self::parse(&raw)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

/// An amount in the currency's minor unit (cents for USD). Never a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    /// Parses a decimal amount in major units as providers send it in text fields
    /// (HubSpot `annualrevenue` = `"1250000.50"`), without going through a float.
    /// `minor_digits` is the currency's exponent (2 for USD, 0 for JPY).
    pub fn parse_major(
        raw: &str,
        currency: Currency,
        minor_digits: u32,
    ) -> Result<Self, ParseError> {
        let bad = |why: &str| ParseError::new("amount", format!("{raw:?} {why}"));
        let trimmed = raw.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad("is not a decimal number"));
        }
        if frac.len() > minor_digits as usize {
            return Err(bad("has more decimals than the currency's minor unit"));
        }
        let scale = 10i64.pow(minor_digits);
        let whole: i64 = whole.parse().map_err(|_| bad("is too large"))?;
        let frac_padded = format!("{frac:0<width$}", width = minor_digits as usize);
        let frac: i64 = if frac_padded.is_empty() {
            0
        } else {
            frac_padded.parse().map_err(|_| bad("is not a number"))?
        };
        let amount = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(frac))
            .ok_or_else(|| bad("is too large"))?;
        Ok(Self::new(if negative { -amount } else { amount }, currency))
    }
}

/// In major units with grouped thousands and the code: `1,299.00 USD`, `1,234,567 JPY`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10i64.pow(self.currency.minor_digits());
        let whole = (self.amount_minor / scale).unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        match self.currency.minor_digits() {
            0 => write!(f, "{sign}{grouped} {}", self.currency),
            digits => write!(
                f,
                "{sign}{grouped}.{:0width$} {}",
                (self.amount_minor % scale).unsigned_abs(),
                self.currency,
                width = digits as usize
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_prints_in_major_units_with_the_currencys_decimals() {
        let jpy = Currency::parse("jpy").expect("valid");
        assert_eq!(Money::new(129_900, usd()).to_string(), "1,299.00 USD");
        assert_eq!(Money::new(5, usd()).to_string(), "0.05 USD");
        assert_eq!(Money::new(1_234_567, jpy).to_string(), "1,234,567 JPY");
        assert_eq!(Money::new(-2_500, usd()).to_string(), "-25.00 USD");
    }

    fn usd() -> Currency {
        Currency::parse("usd").expect("valid")
    }

    #[test]
    fn currency_is_upper_cased_and_checked() {
        assert_eq!(usd().as_str(), "USD");
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("U$D").is_err());
    }

    #[test]
    fn major_amounts_parse_without_floats() {
        assert_eq!(
            Money::parse_major("1250000.5", usd(), 2).map(|m| m.amount_minor),
            Ok(125_000_050)
        );
        assert_eq!(
            Money::parse_major("-3", usd(), 2).map(|m| m.amount_minor),
            Ok(-300)
        );
        assert_eq!(
            Money::parse_major("0.07", usd(), 2).map(|m| m.amount_minor),
            Ok(7)
        );
        assert!(Money::parse_major("1.005", usd(), 2).is_err());
        assert!(Money::parse_major("1e6", usd(), 2).is_err());
        assert!(Money::parse_major("", usd(), 2).is_err());
        assert!(Money::parse_major("99999999999999999999", usd(), 2).is_err());
    }
}
