//! A typed client for the control API, for Rust end-to-end tests.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::RateLimits;
use crate::control::{
    CouponRequest, Created, CustomerRequest, KeyRequest, PriceRequest, StatusRequest,
    SubscriptionRequest, SubscriptionUpdateRequest, Target, WebhookSettings,
};
use crate::model::{CustomerInput, SubscriptionInput, SubscriptionStatus, SubscriptionUpdate};
use crate::seed::{SeedReport, SeedRequest};
use crate::world::{DeliveryReport, Faults, RequestCounters};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The sandbox answered with an error body (Stripe-shaped).
    #[error("control request returned {status}: {body}")]
    Status { status: u16, body: Value },
}

/// `ControlClient::new(sandbox.base_url())`; every call targets the platform account in test
/// mode unless a `_in` variant with a `Target` is used.
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    http: reqwest::Client,
}

impl ControlClient {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base: base_url.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ControlError> {
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.json::<Value>().await.unwrap_or(Value::Null);
            return Err(ControlError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(resp.json::<T>().await?)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ControlError> {
        self.send(
            self.http
                .post(format!("{}/_sandbox{path}", self.base))
                .json(body),
        )
        .await
    }

    async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ControlError> {
        self.send(
            self.http
                .put(format!("{}/_sandbox{path}", self.base))
                .json(body),
        )
        .await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ControlError> {
        self.send(self.http.get(format!("{}/_sandbox{path}", self.base)))
            .await
    }

    async fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
        target: &Target,
    ) -> Result<T, ControlError> {
        let mut req = self.http.delete(format!("{}/_sandbox{path}", self.base));
        if let Some(account) = &target.account {
            req = req.query(&[("account", account.as_str())]);
        }
        if target.livemode {
            req = req.query(&[("livemode", "true")]);
        }
        self.send(req).await
    }

    pub async fn reset(&self) -> Result<(), ControlError> {
        self.post::<_, Value>("/reset", &json!({}))
            .await
            .map(|_| ())
    }

    pub async fn seed(&self, request: &SeedRequest) -> Result<SeedReport, ControlError> {
        self.post("/seed", request).await
    }

    pub async fn state(&self) -> Result<Value, ControlError> {
        self.get("/state").await
    }

    pub async fn create_customer(&self, customer: CustomerInput) -> Result<String, ControlError> {
        self.create_customer_in(Target::default(), customer).await
    }

    pub async fn create_customer_in(
        &self,
        target: Target,
        customer: CustomerInput,
    ) -> Result<String, ControlError> {
        let created: Created = self
            .post("/customers", &CustomerRequest { target, customer })
            .await?;
        Ok(created.id)
    }

    pub async fn update_customer(
        &self,
        id: &str,
        customer: CustomerInput,
    ) -> Result<(), ControlError> {
        let _: Created = self
            .post(
                &format!("/customers/{id}"),
                &CustomerRequest {
                    target: Target::default(),
                    customer,
                },
            )
            .await?;
        Ok(())
    }

    pub async fn delete_customer(&self, id: &str) -> Result<(), ControlError> {
        self.delete_customer_in(Target::default(), id).await
    }

    pub async fn delete_customer_in(&self, target: Target, id: &str) -> Result<(), ControlError> {
        let _: Value = self.delete(&format!("/customers/{id}"), &target).await?;
        Ok(())
    }

    pub async fn create_subscription(
        &self,
        subscription: SubscriptionInput,
    ) -> Result<String, ControlError> {
        self.create_subscription_in(Target::default(), subscription)
            .await
    }

    pub async fn create_subscription_in(
        &self,
        target: Target,
        subscription: SubscriptionInput,
    ) -> Result<String, ControlError> {
        let created: Created = self
            .post(
                "/subscriptions",
                &SubscriptionRequest {
                    target,
                    subscription,
                },
            )
            .await?;
        Ok(created.id)
    }

    /// Upgrade/downgrade items, change discounts, `cancel_at_period_end`, pause, force a status...
    pub async fn update_subscription(
        &self,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<(), ControlError> {
        let _: Created = self
            .post(
                &format!("/subscriptions/{id}"),
                &SubscriptionUpdateRequest {
                    target: Target::default(),
                    update,
                },
            )
            .await?;
        Ok(())
    }

    pub async fn set_subscription_status(
        &self,
        id: &str,
        status: SubscriptionStatus,
    ) -> Result<(), ControlError> {
        let _: Created = self
            .post(
                &format!("/subscriptions/{id}/status"),
                &StatusRequest {
                    target: Target::default(),
                    status,
                },
            )
            .await?;
        Ok(())
    }

    /// Cancels now (`customer.subscription.deleted`).
    pub async fn cancel_subscription(&self, id: &str) -> Result<(), ControlError> {
        let _: Created = self
            .delete(&format!("/subscriptions/{id}"), &Target::default())
            .await?;
        Ok(())
    }

    /// The subscription as Stripe renders it (account's API version).
    pub async fn subscription(&self, id: &str) -> Result<Value, ControlError> {
        self.get(&format!("/subscriptions/{id}")).await
    }

    pub async fn create_price(&self, request: &PriceRequest) -> Result<String, ControlError> {
        let created: Created = self.post("/prices", request).await?;
        Ok(created.id)
    }

    pub async fn create_coupon(&self, request: &CouponRequest) -> Result<String, ControlError> {
        let created: Created = self.post("/coupons", request).await?;
        Ok(created.id)
    }

    /// A new key for the target account: restricted (`rk_`) when `permissions` is `Some`.
    pub async fn create_key(&self, request: &KeyRequest) -> Result<String, ControlError> {
        let v: Value = self.post("/keys", request).await?;
        Ok(v["key"].as_str().unwrap_or_default().to_owned())
    }

    pub async fn revoke_key(&self, key: &str) -> Result<(), ControlError> {
        let _: Value = self.post("/keys/revoke", &json!({ "key": key })).await?;
        Ok(())
    }

    /// Deauthorizes a connected account and sends `account.application.deauthorized`.
    pub async fn revoke_account(&self, account: &str) -> Result<(), ControlError> {
        let _: Value = self.post("/revoke", &json!({ "account": account })).await?;
        Ok(())
    }

    /// The account the next `/oauth/authorize` connects (`None` = a new empty account).
    pub async fn set_oauth_account(&self, account: Option<&str>) -> Result<(), ControlError> {
        let _: Value = self
            .put("/oauth", &json!({ "connect_account": account }))
            .await?;
        Ok(())
    }

    pub async fn set_faults(&self, faults: &Faults) -> Result<Faults, ControlError> {
        self.put("/faults", faults).await
    }

    pub async fn set_rate_limits(&self, limits: &RateLimits) -> Result<RateLimits, ControlError> {
        self.put("/rate-limits", limits).await
    }

    pub async fn set_webhooks(&self, settings: &WebhookSettings) -> Result<Value, ControlError> {
        self.put("/webhooks", settings).await
    }

    pub async fn webhooks(&self) -> Result<Value, ControlError> {
        self.get("/webhooks").await
    }

    /// Delivers everything pending now and reports each attempt.
    pub async fn flush_webhooks(&self) -> Result<Vec<DeliveryReport>, ControlError> {
        let v: Value = self.post("/webhooks/flush", &json!({})).await?;
        Ok(serde_json::from_value(v["delivered"].clone()).unwrap_or_default())
    }

    pub async fn requests(&self) -> Result<RequestCounters, ControlError> {
        self.get("/requests").await
    }

    pub async fn reset_requests(&self) -> Result<(), ControlError> {
        let _: Value = self
            .send(self.http.delete(format!("{}/_sandbox/requests", self.base)))
            .await?;
        Ok(())
    }

    /// Moves the sandbox clock forward (events older than 30 days then drop out).
    pub async fn advance_clock(&self, seconds: i64) -> Result<(), ControlError> {
        let _: Value = self
            .post("/clock/advance", &json!({ "seconds": seconds }))
            .await?;
        Ok(())
    }
}
