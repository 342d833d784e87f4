//! A typed client for the control API, for Rust end-to-end tests and the local stack.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{Faults, RateLimitConfig};
use crate::counters::CountersReport;
use crate::model::ObjectKind;
use crate::webhooks::FlushReport;

/// Tokens as the token endpoint returns them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenGrant {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// What `seed` / `reset` / `state` report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedSummary {
    pub seed: u64,
    pub portal_id: u64,
    pub app_id: u64,
    pub companies: usize,
    pub contacts: usize,
    pub archived_companies: usize,
    pub archived_contacts: usize,
    pub owners: Vec<String>,
    pub lists: Vec<ListSummary>,
    pub pending_webhooks: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListSummary {
    pub id: u64,
    pub name: String,
    pub object_type: String,
    pub processing_type: String,
    pub members: usize,
}

#[derive(Clone, Debug)]
pub struct ControlClient {
    base_url: String,
    http: reqwest::Client,
}

impl ControlClient {
    /// `base_url` of the sandbox (`RunningSandbox::base_url()`), not of `/_sandbox`.
    pub fn new(base_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default();
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/_sandbox{path}", self.base_url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await.context("control API unreachable")?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("control API answered {status}: {text}");
        }
        if status == StatusCode::NO_CONTENT || text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("control API sent non-JSON: {text}"))
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    async fn put(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.put(self.url(path)).json(&body)).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url(path))).await
    }

    async fn del(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.http.delete(self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    // --- data -------------------------------------------------------------------------

    /// Back to the start configuration: data reseeded, tokens, faults and counters cleared.
    pub async fn reset(&self) -> anyhow::Result<SeedSummary> {
        Ok(serde_json::from_value(
            self.post("/reset", json!({})).await?,
        )?)
    }

    /// Replaces the CRM data with `companies` companies and `contacts` contacts from `seed`.
    pub async fn seed(
        &self,
        seed: u64,
        companies: usize,
        contacts: usize,
    ) -> anyhow::Result<SeedSummary> {
        let body = json!({ "seed": seed, "companies": companies, "contacts": contacts });
        Ok(serde_json::from_value(self.post("/seed", body).await?)?)
    }

    pub async fn state(&self) -> anyhow::Result<SeedSummary> {
        Ok(serde_json::from_value(self.get("/state").await?)?)
    }

    /// A record as the control API shows it (every property, archived ones too, merges followed).
    pub async fn record(&self, kind: ObjectKind, id: &str) -> anyhow::Result<Value> {
        self.get(&format!("/objects/{}/{id}", kind.plural())).await
    }

    fn properties(props: &[(&str, &str)]) -> BTreeMap<String, String> {
        props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Creates a record; returns its id.
    pub async fn create(&self, kind: ObjectKind, props: &[(&str, &str)]) -> anyhow::Result<String> {
        let body = json!({ "properties": Self::properties(props) });
        let record = self
            .post(&format!("/objects/{}", kind.plural()), body)
            .await?;
        record["id"]
            .as_str()
            .map(str::to_owned)
            .context("created record has no id")
    }

    /// Sets properties (an empty value clears one); returns the names that changed.
    pub async fn update(
        &self,
        kind: ObjectKind,
        id: &str,
        props: &[(&str, &str)],
    ) -> anyhow::Result<Vec<String>> {
        let body = json!({ "properties": Self::properties(props) });
        let answer = self
            .send(
                self.http
                    .patch(self.url(&format!("/objects/{}/{id}", kind.plural())))
                    .json(&body),
            )
            .await?;
        Ok(serde_json::from_value(answer["changed"].clone())?)
    }

    /// Archives (HubSpot "delete"): `*.deletion` webhook, `hs_lastmodifieddate` untouched.
    pub async fn delete(&self, kind: ObjectKind, id: &str) -> anyhow::Result<()> {
        self.del(&format!("/objects/{}/{id}", kind.plural()), None)
            .await
            .map(drop)
    }

    pub async fn restore(&self, kind: ObjectKind, id: &str) -> anyhow::Result<()> {
        self.post(
            &format!("/objects/{}/{id}/restore", kind.plural()),
            json!({}),
        )
        .await
        .map(drop)
    }

    /// Merges `merged_id` into `primary_id`; returns the survivor's id (new when `new_id`).
    pub async fn merge(
        &self,
        kind: ObjectKind,
        primary_id: &str,
        merged_id: &str,
        new_id: bool,
    ) -> anyhow::Result<String> {
        let body = json!({
            "primary_id": primary_id.parse::<u64>()?,
            "merged_id": merged_id.parse::<u64>()?,
            "new_id": new_id,
        });
        let answer = self
            .post(&format!("/objects/{}/merge", kind.plural()), body)
            .await?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .context("merge answer has no id")
    }

    pub async fn create_company(&self, props: &[(&str, &str)]) -> anyhow::Result<String> {
        self.create(ObjectKind::Companies, props).await
    }

    pub async fn update_company(
        &self,
        id: &str,
        props: &[(&str, &str)],
    ) -> anyhow::Result<Vec<String>> {
        self.update(ObjectKind::Companies, id, props).await
    }

    pub async fn delete_company(&self, id: &str) -> anyhow::Result<()> {
        self.delete(ObjectKind::Companies, id).await
    }

    pub async fn restore_company(&self, id: &str) -> anyhow::Result<()> {
        self.restore(ObjectKind::Companies, id).await
    }

    pub async fn merge_companies(
        &self,
        primary_id: &str,
        merged_id: &str,
    ) -> anyhow::Result<String> {
        self.merge(ObjectKind::Companies, primary_id, merged_id, false)
            .await
    }

    pub async fn create_contact(&self, props: &[(&str, &str)]) -> anyhow::Result<String> {
        self.create(ObjectKind::Contacts, props).await
    }

    pub async fn update_contact(
        &self,
        id: &str,
        props: &[(&str, &str)],
    ) -> anyhow::Result<Vec<String>> {
        self.update(ObjectKind::Contacts, id, props).await
    }

    pub async fn delete_contact(&self, id: &str) -> anyhow::Result<()> {
        self.delete(ObjectKind::Contacts, id).await
    }

    pub async fn restore_contact(&self, id: &str) -> anyhow::Result<()> {
        self.restore(ObjectKind::Contacts, id).await
    }

    pub async fn merge_contacts(
        &self,
        primary_id: &str,
        merged_id: &str,
    ) -> anyhow::Result<String> {
        self.merge(ObjectKind::Contacts, primary_id, merged_id, false)
            .await
    }

    /// Associates a company and a contact (`primary`: the contact's primary company).
    pub async fn associate(
        &self,
        company_id: &str,
        contact_id: &str,
        primary: bool,
    ) -> anyhow::Result<()> {
        let body = json!({ "company_id": company_id.parse::<u64>()?, "contact_id": contact_id.parse::<u64>()?, "primary": primary });
        self.post("/associations", body).await.map(drop)
    }

    pub async fn disassociate(&self, company_id: &str, contact_id: &str) -> anyhow::Result<()> {
        let body = json!({ "company_id": company_id.parse::<u64>()?, "contact_id": contact_id.parse::<u64>()? });
        self.del("/associations", Some(body)).await.map(drop)
    }

    /// Puts a record in a list or takes it out (no webhook, as in HubSpot). Returns whether
    /// membership changed.
    pub async fn set_list_membership(
        &self,
        list_id: &str,
        record_id: &str,
        member: bool,
    ) -> anyhow::Result<bool> {
        let path = format!("/lists/{list_id}/members/{record_id}");
        let answer = if member {
            self.put(&path, json!({})).await?
        } else {
            self.del(&path, None).await?
        };
        Ok(answer["changed"].as_bool().unwrap_or(false))
    }

    /// Creates an empty MANUAL list; returns its id.
    pub async fn create_list(&self, name: &str, kind: ObjectKind) -> anyhow::Result<String> {
        let answer = self
            .post(
                "/lists",
                json!({ "name": name, "object_type": kind.plural() }),
            )
            .await?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .context("list answer has no id")
    }

    /// Deletes a list (its id then answers 404).
    pub async fn delete_list(&self, list_id: &str) -> anyhow::Result<()> {
        self.del(&format!("/lists/{list_id}"), None).await?;
        Ok(())
    }

    // --- auth -------------------------------------------------------------------------

    /// Runs `GET /oauth/authorize` (which consents at once) and returns the `code` from
    /// the redirect.
    pub async fn authorize(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scopes: &[&str],
        state: &str,
    ) -> anyhow::Result<String> {
        let response = self
            .http
            .get(format!("{}/oauth/authorize", self.base_url))
            .query(&[
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("scope", &scopes.join(" ")),
                ("state", state),
            ])
            .send()
            .await?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .with_context(|| {
                format!(
                    "authorize answered {} without a redirect",
                    response.status()
                )
            })?;
        let url = url::Url::parse(location)?;
        let code = url
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned());
        code.with_context(|| format!("authorize redirected without a code: {location}"))
    }

    /// Mints a token pair without the OAuth dance (`None`: the default scopes).
    pub async fn issue_tokens(&self, scopes: Option<&[&str]>) -> anyhow::Result<TokenGrant> {
        let body = match scopes {
            Some(scopes) => json!({ "scopes": scopes }),
            None => json!({}),
        };
        Ok(serde_json::from_value(self.post("/tokens", body).await?)?)
    }

    /// Revokes every refresh and access token (an uninstall): refresh gives `BAD_REFRESH_TOKEN`.
    pub async fn revoke_tokens(&self) -> anyhow::Result<()> {
        self.post("/tokens/revoke", json!({})).await.map(drop)
    }

    pub async fn revoke_refresh_token(&self, refresh_token: &str) -> anyhow::Result<()> {
        self.post("/tokens/revoke", json!({ "refresh_token": refresh_token }))
            .await
            .map(drop)
    }

    /// Every live access token expires now (next call: 401 `EXPIRED_AUTHENTICATION`).
    pub async fn expire_tokens(&self) -> anyhow::Result<()> {
        self.post("/tokens/expire", json!({})).await.map(drop)
    }

    /// Takes a scope away from the installation (calls needing it get 403 `MISSING_SCOPES`).
    pub async fn remove_scope(&self, scope: &str) -> anyhow::Result<()> {
        self.post("/scopes/remove", json!({ "scope": scope }))
            .await
            .map(drop)
    }

    pub async fn restore_scope(&self, scope: &str) -> anyhow::Result<()> {
        self.post("/scopes/restore", json!({ "scope": scope }))
            .await
            .map(drop)
    }

    // --- schema -----------------------------------------------------------------------

    pub async fn delete_property(&self, kind: ObjectKind, name: &str) -> anyhow::Result<()> {
        self.del(&format!("/properties/{}/{name}", kind.plural()), None)
            .await
            .map(drop)
    }

    /// Changes a property's `type` (`string`, `number`, `enumeration`, `bool`, `date`,
    /// `datetime`, `phone_number`); `fieldType` follows.
    pub async fn retype_property(
        &self,
        kind: ObjectKind,
        name: &str,
        new_type: &str,
    ) -> anyhow::Result<()> {
        self.put(
            &format!("/properties/{}/{name}/type", kind.plural()),
            json!({ "type": new_type }),
        )
        .await
        .map(drop)
    }

    // --- faults and limits ------------------------------------------------------------

    /// Replaces every fault switch (`Faults::default()` turns them all off).
    pub async fn set_faults(&self, faults: &Faults) -> anyhow::Result<()> {
        self.put("/faults", serde_json::to_value(faults)?)
            .await
            .map(drop)
    }

    pub async fn set_rate_limits(&self, limits: &RateLimitConfig) -> anyhow::Result<()> {
        self.put("/rate-limits", serde_json::to_value(limits)?)
            .await
            .map(drop)
    }

    // --- webhooks ---------------------------------------------------------------------

    pub async fn set_webhook_target(&self, url: &str) -> anyhow::Result<()> {
        self.put("/webhooks", json!({ "target_url": url }))
            .await
            .map(drop)
    }

    /// Changes any webhook settings (fields of `WebhookConfig`, e.g. `{"auto_deliver": false}`).
    pub async fn set_webhooks(&self, settings: Value) -> anyhow::Result<()> {
        self.put("/webhooks", settings).await.map(drop)
    }

    /// Settings, stats, pending count and the recent delivery log.
    pub async fn webhooks(&self) -> anyhow::Result<Value> {
        self.get("/webhooks").await
    }

    /// Delivers everything pending now and reports what reached the target.
    pub async fn flush_webhooks(&self) -> anyhow::Result<FlushReport> {
        Ok(serde_json::from_value(
            self.post("/webhooks/flush", json!({})).await?,
        )?)
    }

    // --- counters ---------------------------------------------------------------------

    pub async fn request_counts(&self) -> anyhow::Result<CountersReport> {
        Ok(serde_json::from_value(self.get("/requests").await?)?)
    }

    pub async fn reset_request_counts(&self) -> anyhow::Result<()> {
        self.del("/requests", None).await.map(drop)
    }
}
