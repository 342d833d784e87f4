//! The service's settings, from the environment. Fails fast, naming the missing variable.

use std::sync::Arc;

use connector::crypto::TokenCipher;
use connector::engine::{Engine, EngineSettings};
use connector::ports::{JobQueue, Store};
use connector::{Provider, Secret};
use connector_hubspot::{HubSpotConfig, HubSpotProvider};
use connector_stripe::api_key::looks_like_api_key;
use connector_stripe::mrr::MrrPolicy;
use connector_stripe::{StripeClient, StripeConfig, StripeProvider};

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

/// Stripe, when the deployment offers it. Tenants connect with Connect OAuth (needs
/// `client_id` and `redirect_uri`) or by pasting an API key (needs neither).
#[derive(Clone, Debug)]
pub struct StripeSettings {
    /// The platform's secret key: authenticates OAuth token calls and `Stripe-Account` calls.
    pub secret_key: Secret,
    /// The platform's Connect client id (`ca_...`); without it there is no OAuth connect.
    pub client_id: Option<String>,
    /// `<base>/oauth/stripe/callback`, as registered with Stripe. Required with `client_id`.
    pub redirect_uri: Option<String>,
    /// Signing secrets of the platform's Connect webhook endpoint; two while one is rolled.
    pub webhook_secrets: Vec<Secret>,
    /// Overrides Stripe's API and Connect hosts (the sandbox, locally).
    pub base_url: Option<String>,
    /// How MRR is counted (`MRR_CHURN_ON_CANCEL_REQUEST`, `MRR_DISCOUNT_DURATIONS`);
    /// the default matches Stripe's own dashboard.
    pub mrr_policy: MrrPolicy,
}

/// An admin token secret shorter than this is refused at start: it is an HMAC key.
pub const MIN_ADMIN_SECRET_BYTES: usize = 32;

#[derive(Clone, Debug)]
pub struct Config {
    pub hubspot: Option<HubSpotSettings>,
    pub stripe: Option<StripeSettings>,
    /// AES-256-GCM key for tokens at rest, base64 (on AWS resolved from Secrets Manager).
    pub token_key: Secret,
    /// Signs admin API tokens; only the admin API holds it (at least 32 bytes).
    pub admin_secret: Option<Secret>,
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
        let stripe = stripe_settings(&get)?;
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
            stripe,
            token_key: Secret::new(need("TOKEN_ENCRYPTION_KEY")?),
            admin_secret: get("ADMIN_TOKEN_SECRET")
                .map(|raw| {
                    if raw.len() < MIN_ADMIN_SECRET_BYTES {
                        return Err(ConfigError::Invalid {
                            name: "ADMIN_TOKEN_SECRET",
                            reason: format!(
                                "{} bytes; an HMAC key of at least {MIN_ADMIN_SECRET_BYTES} is needed",
                                raw.len()
                            ),
                        });
                    }
                    Ok(Secret::new(raw))
                })
                .transpose()?,
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
        self.build_tuned(store, record_jobs, reconcile_jobs, tune_hubspot, |s| s)
    }

    /// [`Config::build`], also adjusting the Stripe client (a sandbox's rate limits).
    pub fn build_tuned(
        &self,
        store: Arc<dyn Store>,
        record_jobs: Arc<dyn JobQueue>,
        reconcile_jobs: Arc<dyn JobQueue>,
        tune_hubspot: impl FnOnce(HubSpotConfig) -> HubSpotConfig,
        tune_stripe: impl FnOnce(StripeConfig) -> StripeConfig,
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
        let hubspot = match &self.hubspot {
            None => None,
            Some(h) => {
                let mut config = HubSpotConfig::production(
                    h.client_id.clone(),
                    h.client_secret.clone(),
                    h.redirect_uri.clone(),
                );
                if let Some(base) = &h.base_url {
                    config = config.with_base_url(base);
                }
                Some(
                    HubSpotProvider::new(tune_hubspot(config), store.clone(), cipher.clone())
                        .map_err(|e| ConfigError::Backend(e.to_string()))?,
                )
            }
        };
        if let Some(provider) = &hubspot {
            engine = engine
                .with_provider(Arc::new(provider.clone()))
                .with_writer(Provider::Hubspot, Arc::new(provider.clone()));
        }
        let stripe = match &self.stripe {
            None => None,
            Some(settings) => {
                let client = StripeClient::new(tune_stripe(settings.client_config()))
                    .map_err(|e| ConfigError::Backend(e.to_string()))?;
                Some(Arc::new(StripeProvider::new(
                    client,
                    cipher.clone(),
                    settings.mrr_policy,
                )))
            }
        };
        if let Some(provider) = &stripe {
            engine = engine.with_provider(provider.clone());
        }
        Ok(App {
            engine,
            hubspot,
            hubspot_client_secret: self.hubspot.as_ref().map(|h| h.client_secret.clone()),
            stripe,
            stripe_webhook_secrets: self
                .stripe
                .as_ref()
                .map(|s| s.webhook_secrets.clone())
                .unwrap_or_default(),
            admin_auth: self.admin_secret.clone().map(AdminAuth::new),
            public_base_url: self.public_base_url.clone(),
        })
    }
}

impl StripeSettings {
    /// The Stripe client's configuration: production hosts unless `base_url` is set.
    pub fn client_config(&self) -> StripeConfig {
        let mut config = StripeConfig::new(self.secret_key.clone());
        if let Some(base) = &self.base_url {
            config = config.with_base_url(base);
        }
        config.client_id = self.client_id.clone();
        config.redirect_uri = self.redirect_uri.clone();
        config.webhook_secrets = self.webhook_secrets.clone();
        config
    }
}

/// Stripe is on when `STRIPE_SECRET_KEY` is set; its other variables then complete it,
/// and any of them without the key is a mistake worth failing on.
fn stripe_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<StripeSettings>, ConfigError> {
    let Some(secret_key) = get("STRIPE_SECRET_KEY") else {
        for dependent in ["STRIPE_CLIENT_ID", "STRIPE_WEBHOOK_SECRETS"] {
            if get(dependent).is_some() {
                return Err(ConfigError::Missing("STRIPE_SECRET_KEY"));
            }
        }
        return Ok(None);
    };
    if !looks_like_api_key(&secret_key) {
        return Err(ConfigError::Invalid {
            name: "STRIPE_SECRET_KEY",
            reason: "not a Stripe secret or restricted key (sk_... / rk_...)".into(),
        });
    }
    let client_id = get("STRIPE_CLIENT_ID");
    let redirect_uri = get("STRIPE_REDIRECT_URI");
    if client_id.is_some() && redirect_uri.is_none() {
        return Err(ConfigError::Missing("STRIPE_REDIRECT_URI"));
    }
    let mut webhook_secrets = Vec::new();
    for secret in get("STRIPE_WEBHOOK_SECRETS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !secret.starts_with("whsec_") {
            return Err(ConfigError::Invalid {
                name: "STRIPE_WEBHOOK_SECRETS",
                reason: "each comma-separated secret starts with whsec_".into(),
            });
        }
        webhook_secrets.push(Secret::new(secret));
    }
    Ok(Some(StripeSettings {
        secret_key: Secret::new(secret_key),
        client_id,
        redirect_uri,
        webhook_secrets,
        base_url: get("STRIPE_BASE_URL").map(|u| u.trim_end_matches('/').to_owned()),
        mrr_policy: mrr_policy(get)?,
    }))
}

/// `MRR_CHURN_ON_CANCEL_REQUEST=true|false` (default true) and
/// `MRR_DISCOUNT_DURATIONS=forever,repeating,once` (any of them, or `none`; default `forever`).
fn mrr_policy(get: &impl Fn(&str) -> Option<String>) -> Result<MrrPolicy, ConfigError> {
    let mut policy = MrrPolicy::stripe_dashboard();
    if let Some(raw) = get("MRR_CHURN_ON_CANCEL_REQUEST") {
        policy.churn_on_cancel_request = match raw.trim() {
            "true" => true,
            "false" => false,
            other => {
                return Err(ConfigError::Invalid {
                    name: "MRR_CHURN_ON_CANCEL_REQUEST",
                    reason: format!("{other:?} is not true or false"),
                });
            }
        };
    }
    if let Some(raw) = get("MRR_DISCOUNT_DURATIONS") {
        let d = &mut policy.discount_durations;
        (d.forever, d.repeating, d.once) = (false, false, false);
        for duration in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match duration {
                "forever" => d.forever = true,
                "repeating" => d.repeating = true,
                "once" => d.once = true,
                "none" => {}
                other => {
                    return Err(ConfigError::Invalid {
                        name: "MRR_DISCOUNT_DURATIONS",
                        reason: format!("{other:?} is not forever, repeating, once or none"),
                    });
                }
            }
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const ADMIN_SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_short_admin_secret_is_refused_and_a_missing_one_means_no_admin_api() {
        let short = config_of(&[("ADMIN_TOKEN_SECRET", "too-short")]).unwrap_err();
        assert!(short.to_string().contains("ADMIN_TOKEN_SECRET"), "{short}");
        let env: HashMap<&str, &str> = HashMap::from([("TOKEN_ENCRYPTION_KEY", "k")]);
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(config.admin_secret.is_none());
    }

    #[test]
    fn a_missing_variable_is_named() {
        let env: HashMap<&str, &str> = HashMap::from([("ADMIN_TOKEN_SECRET", ADMIN_SECRET)]);
        let err = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable TOKEN_ENCRYPTION_KEY is not set"
        );
        let env: HashMap<&str, &str> = HashMap::from([
            ("ADMIN_TOKEN_SECRET", ADMIN_SECRET),
            ("TOKEN_ENCRYPTION_KEY", "k"),
            ("HUBSPOT_CLIENT_ID", "id"),
        ]);
        let err = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable HUBSPOT_CLIENT_SECRET is not set"
        );
    }

    fn config_of(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<&str, &str> = HashMap::from([
            ("ADMIN_TOKEN_SECRET", ADMIN_SECRET),
            ("TOKEN_ENCRYPTION_KEY", "k"),
        ]);
        env.extend(pairs.iter().copied());
        Config::from_lookup(|k| env.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn without_a_stripe_key_stripe_is_off() {
        let config = config_of(&[]).unwrap();
        assert!(config.stripe.is_none());
    }

    #[test]
    fn mrr_policy_switches_come_from_the_environment_with_stripes_defaults() {
        let default = config_of(&[("STRIPE_SECRET_KEY", "sk_test_platform")]).unwrap();
        assert_eq!(
            default.stripe.as_ref().map(|s| s.mrr_policy),
            Some(MrrPolicy::stripe_dashboard())
        );
        let custom = config_of(&[
            ("STRIPE_SECRET_KEY", "sk_test_platform"),
            ("MRR_CHURN_ON_CANCEL_REQUEST", "false"),
            ("MRR_DISCOUNT_DURATIONS", "forever, repeating"),
        ])
        .unwrap();
        let policy = custom.stripe.map(|s| s.mrr_policy).unwrap();
        assert!(!policy.churn_on_cancel_request);
        assert!(policy.discount_durations.forever && policy.discount_durations.repeating);
        assert!(!policy.discount_durations.once);
        let env: HashMap<&str, &str> = HashMap::from([
            ("ADMIN_TOKEN_SECRET", ADMIN_SECRET),
            ("TOKEN_ENCRYPTION_KEY", "k"),
            ("STRIPE_SECRET_KEY", "sk_test_platform"),
            ("MRR_DISCOUNT_DURATIONS", "sometimes"),
        ]);
        assert!(Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).is_err());
    }

    #[test]
    fn stripe_settings_come_from_the_environment_with_rotated_webhook_secrets() {
        let config = config_of(&[
            ("STRIPE_SECRET_KEY", "sk_test_platform"),
            ("STRIPE_CLIENT_ID", "ca_1"),
            (
                "STRIPE_REDIRECT_URI",
                "https://api.example/oauth/stripe/callback",
            ),
            ("STRIPE_WEBHOOK_SECRETS", "whsec_new, whsec_old,"),
            ("STRIPE_BASE_URL", "http://127.0.0.1:9/"),
        ])
        .unwrap();
        let stripe = config.stripe.unwrap();
        assert_eq!(stripe.secret_key.expose(), "sk_test_platform");
        assert_eq!(stripe.client_id.as_deref(), Some("ca_1"));
        let secrets: Vec<&str> = stripe.webhook_secrets.iter().map(Secret::expose).collect();
        assert_eq!(secrets, ["whsec_new", "whsec_old"]);
        let client = stripe.client_config();
        assert_eq!(client.api_base, "http://127.0.0.1:9");
        assert_eq!(client.connect_base, "http://127.0.0.1:9");
        assert_eq!(
            client.redirect_uri.as_deref(),
            Some("https://api.example/oauth/stripe/callback")
        );
    }

    #[test]
    fn an_api_key_only_stripe_needs_no_client_id_and_uses_stripes_hosts() {
        let stripe = config_of(&[("STRIPE_SECRET_KEY", "rk_live_platform")])
            .unwrap()
            .stripe
            .unwrap();
        assert!(stripe.client_id.is_none() && stripe.webhook_secrets.is_empty());
        assert_eq!(stripe.client_config().api_base, "https://api.stripe.com");
    }

    #[test]
    fn incomplete_or_malformed_stripe_settings_are_named() {
        let err = |pairs: &[(&str, &str)]| config_of(pairs).unwrap_err().to_string();
        assert_eq!(
            err(&[("STRIPE_WEBHOOK_SECRETS", "whsec_1")]),
            "environment variable STRIPE_SECRET_KEY is not set"
        );
        assert_eq!(
            err(&[
                ("STRIPE_SECRET_KEY", "sk_test_1"),
                ("STRIPE_CLIENT_ID", "ca_1")
            ]),
            "environment variable STRIPE_REDIRECT_URI is not set"
        );
        assert!(err(&[("STRIPE_SECRET_KEY", "pk_test_1")]).contains("STRIPE_SECRET_KEY"));
        assert!(
            err(&[
                ("STRIPE_SECRET_KEY", "sk_test_1"),
                ("STRIPE_WEBHOOK_SECRETS", "whsec_1,oops")
            ])
            .contains("STRIPE_WEBHOOK_SECRETS")
        );
    }

    #[test]
    fn a_share_outside_zero_to_one_is_refused() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("ADMIN_TOKEN_SECRET", ADMIN_SECRET),
            ("TOKEN_ENCRYPTION_KEY", "k"),
            ("MASS_ARCHIVE_SHARE", "1.5"),
        ]);
        assert!(Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).is_err());
    }
}
