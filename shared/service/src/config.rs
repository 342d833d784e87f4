//! The service's settings, from the environment. Fails fast, naming the missing variable.

use std::sync::Arc;

use connector::Secret;
use connector::crypto::TokenCipher;
use connector::engine::{Engine, EngineSettings};
use connector::ports::{JobQueue, Store};
use connector_hubspot::{HubSpotConfig, HubSpotProvider};

use crate::app::App;
use crate::auth::AdminAuth;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("could not reach a backend at start-up: {0}")]
    Backend(String),
}

#[derive(Clone, Debug)]
pub struct HubSpotSettings {
    pub client_id: String,
    pub client_secret: Secret,
    pub redirect_uri: String,
    /// Overrides HubSpot's hosts (the sandbox, locally).
    pub base_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub hubspot: Option<HubSpotSettings>,
    /// AES-256-GCM key for tokens at rest, base64 (on AWS resolved from Secrets Manager).
    pub token_key: Secret,
    /// Signs admin API tokens.
    pub admin_secret: Secret,
    pub public_base_url: Option<String>,
    pub mass_archive_share: Option<f64>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let need = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let hubspot = match get("HUBSPOT_CLIENT_ID") {
            None => None,
            Some(client_id) => Some(HubSpotSettings {
                client_id,
                client_secret: Secret::new(need("HUBSPOT_CLIENT_SECRET")?),
                redirect_uri: need("HUBSPOT_REDIRECT_URI")?,
                base_url: get("HUBSPOT_BASE_URL"),
            }),
        };
        let mass_archive_share = match get("MASS_ARCHIVE_SHARE") {
            None => None,
            Some(raw) => Some(
                raw.parse::<f64>()
                    .ok()
                    .filter(|s| (0.0..=1.0).contains(s))
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "MASS_ARCHIVE_SHARE",
                        reason: format!("{raw:?} is not a share between 0 and 1"),
                    })?,
            ),
        };
        Ok(Self {
            hubspot,
            token_key: Secret::new(need("TOKEN_ENCRYPTION_KEY")?),
            admin_secret: Secret::new(need("ADMIN_TOKEN_SECRET")?),
            public_base_url: get("PUBLIC_BASE_URL").map(|u| u.trim_end_matches('/').to_owned()),
            mass_archive_share,
        })
    }

    /// Builds the app on the given ports. Nothing here talks to the network.
    pub fn build(
        &self,
        store: Arc<dyn Store>,
        record_jobs: Arc<dyn JobQueue>,
        reconcile_jobs: Arc<dyn JobQueue>,
        tune_hubspot: impl FnOnce(HubSpotConfig) -> HubSpotConfig,
    ) -> Result<App, ConfigError> {
        let cipher = TokenCipher::from_base64_key(self.token_key.expose()).map_err(|e| {
            ConfigError::Invalid {
                name: "TOKEN_ENCRYPTION_KEY",
                reason: e.to_string(),
            }
        })?;
        let mut settings = EngineSettings::default();
        if let Some(share) = self.mass_archive_share {
            settings.mass_archive_share = share;
        }
        let mut engine = Engine::new(store.clone(), record_jobs, reconcile_jobs, settings);
        let hubspot = self.hubspot.as_ref().map(|h| {
            let mut config = HubSpotConfig::production(
                h.client_id.clone(),
                h.client_secret.clone(),
                h.redirect_uri.clone(),
            );
            if let Some(base) = &h.base_url {
                config = config.with_base_url(base);
            }
            HubSpotProvider::new(tune_hubspot(config), store.clone(), cipher.clone())
        });
        if let Some(provider) = &hubspot {
            engine = engine.with_provider(Arc::new(provider.clone()));
        }
        Ok(App {
            engine,
            hubspot,
            hubspot_client_secret: self.hubspot.as_ref().map(|h| h.client_secret.clone()),
            admin_auth: AdminAuth::new(self.admin_secret.clone()),
            public_base_url: self.public_base_url.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_missing_variable_is_named() {
        let env: HashMap<&str, &str> = HashMap::from([("ADMIN_TOKEN_SECRET", "s")]);
        let err = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable TOKEN_ENCRYPTION_KEY is not set"
        );
        let env: HashMap<&str, &str> = HashMap::from([
            ("ADMIN_TOKEN_SECRET", "s"),
            ("TOKEN_ENCRYPTION_KEY", "k"),
            ("HUBSPOT_CLIENT_ID", "id"),
        ]);
        let err = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable HUBSPOT_CLIENT_SECRET is not set"
        );
    }

    #[test]
    fn a_share_outside_zero_to_one_is_refused() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("ADMIN_TOKEN_SECRET", "s"),
            ("TOKEN_ENCRYPTION_KEY", "k"),
            ("MASS_ARCHIVE_SHARE", "1.5"),
        ]);
        assert!(Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).is_err());
    }
}
