//! Query strings as HubSpot reads them: repeated keys and comma-separated lists both work.

use crate::error::ApiError;

#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, comma lists split; `None` when the parameter is absent.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let values: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        self.pairs.iter().any(|(k, _)| k == name).then_some(values)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A positive `limit`, defaulted, clamped to `max`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get("limit") {
            None | Some("") => Ok(default),
            Some(raw) => raw
                .parse::<usize>()
                .map(|n| n.clamp(1, max))
                .map_err(|_| ApiError::validation(format!("limit must be a number, got {raw}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_can_be_repeated_or_comma_separated() {
        let q = Query::parse(Some("properties=name,domain&properties=city&limit=500"));
        assert_eq!(
            q.list("properties"),
            Some(vec!["name".into(), "domain".into(), "city".into()])
        );
        assert_eq!(q.list("associations"), None);
        assert_eq!(q.limit(10, 100).ok(), Some(100));
    }
}
