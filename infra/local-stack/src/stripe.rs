//! Stripe in the local stack: the sandbox wired to the service (platform key, Connect
//! OAuth, the Connect webhook endpoint with its secret), seeding the connected account
//! from the mirrored HubSpot companies, and the billing figures the demo prints.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context, bail};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use connector::ports::{ArchivedFilter, PageRequest};
use connector::rate_limit::RateLimit;
use connector::{
    ConnectionId, Currency, Customer, CustomerId, Domain, LinkTarget, NormalizedName, ObjectKind,
    PendingMatchStatus, Provider, Secret, SourceId,
};
use connector_stripe::StripeConfig;
use stripe_sandbox::{
    CompanySeed, RateLimits, RunningSandbox, Sandbox, SandboxConfig, SeedRequest, SeededPrice,
    SeededSubscription,
};

use crate::RunningStack;

/// The connected account the sandbox's OAuth consent grants in the local stack (pinned so
/// it can be seeded before the connect, and the initial sync sees the data).
pub const STRIPE_ACCOUNT: &str = "acct_1LocalStackDemo0";

/// Starts the sandbox delivering its webhooks to our Connect endpoint, signed with a fresh
/// secret; returns the sandbox and that secret.
pub(crate) async fn start_sandbox(
    config: &SandboxConfig,
    base_url: &str,
) -> anyhow::Result<(RunningSandbox, Secret)> {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = format!("whsec_{secret}");
    let mut config = config.clone();
    config.webhooks.url = Some(format!("{base_url}/webhooks/stripe"));
    config.webhooks.secrets = vec![secret.clone()];
    config.webhooks.enabled = true;
    config.webhooks.auto_deliver = true;
    let sandbox = Sandbox::start(config).await?;
    Ok((sandbox, Secret::new(secret)))
}

/// The client's limiter follows the sandbox's buckets, with a fifth of headroom (as the
/// client does against Stripe's real 25/s and 100/s).
pub(crate) fn follow_rate_limits(mut config: StripeConfig, limits: &RateLimits) -> StripeConfig {
    if limits.enabled {
        let budget = |per_sec: u32| RateLimit {
            max_requests: (per_sec - per_sec / 5).max(1),
            per: Duration::from_secs(1),
        };
        config.test_rate_limit = budget(limits.test_per_sec);
        config.live_rate_limit = budget(limits.live_per_sec);
    }
    config
}

/// How the Stripe account is seeded from the mirrored HubSpot companies.
#[derive(Clone, Debug)]
pub struct StripeSeeding {
    /// Share of the mirrored companies that get a Stripe customer: half of them linked by
    /// metadata `hubspot_company_id`, half by a billing email at the company's domain.
    pub matched_share: f64,
    /// Stripe customers that match no company (listed as unmatched for the admin).
    pub unmatched: usize,
    /// Picks the companies and the sandbox's subscription mix.
    pub seed: u64,
}

impl Default for StripeSeeding {
    fn default() -> Self {
        Self {
            matched_share: 0.8,
            unmatched: 5,
            seed: 7,
        }
    }
}

/// Which customer a seeded Stripe customer should end up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedMatch {
    /// Metadata `hubspot_company_id` names the company (an explicit link).
    Metadata {
        company: SourceId,
        customer: CustomerId,
    },
    /// The billing email is at the company's domain, which no other customer has.
    Domain {
        company: SourceId,
        customer: CustomerId,
    },
    /// Matches no customer.
    Unmatched,
}

impl ExpectedMatch {
    pub fn customer(&self) -> Option<&CustomerId> {
        match self {
            Self::Metadata { customer, .. } | Self::Domain { customer, .. } => Some(customer),
            Self::Unmatched => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SeededStripeCustomer {
    /// `cus_...`
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub expected: ExpectedMatch,
    pub subscriptions: Vec<SeededSubscription>,
}

#[derive(Clone, Debug)]
pub struct StripeSeed {
    pub account: String,
    /// The sandbox's catalog on the account (`pro_monthly`, `starter_yearly`, ...).
    pub prices: Vec<SeededPrice>,
    pub customers: Vec<SeededStripeCustomer>,
}

impl StripeSeed {
    /// The price id of a catalog lookup key.
    pub fn price(&self, lookup_key: &str) -> Option<&str> {
        self.prices
            .iter()
            .find(|p| p.lookup_key == lookup_key)
            .map(|p| p.id.as_str())
    }

    pub fn count(&self, wanted: impl Fn(&ExpectedMatch) -> bool) -> usize {
        self.customers
            .iter()
            .filter(|c| wanted(&c.expected))
            .count()
    }
}

/// Billing across the tenant's customers, as the demo prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BillingFigures {
    /// Sum of MRR over active customers, per currency, in minor units.
    pub mrr: BTreeMap<Currency, i64>,
    /// Active customers carrying Stripe billing fields.
    pub customers_with_billing: usize,
    /// Of those, the ones with a non-zero MRR.
    pub paying: usize,
    /// Open Stripe matches without any candidate ("unmatched").
    pub unmatched: usize,
    /// Open Stripe matches with several candidates.
    pub ambiguous: usize,
}

fn slug(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

const UNMATCHED_NAMES: &[&str] = &[
    "Quillfeather Studio",
    "Brightmoss Bakery",
    "Tidewell Kayaks",
    "Corvid Print Shop",
    "Larchmont Tutoring",
    "Saltglass Ceramics",
    "Oriel Bike Repair",
    "Fernhollow Yoga",
];

impl RunningStack {
    /// The Stripe sandbox, or an error when this stack runs without Stripe.
    pub fn stripe_sandbox(&self) -> anyhow::Result<&RunningSandbox> {
        self.stripe
            .as_ref()
            .context("this stack runs without the Stripe sandbox")
    }

    /// Connect OAuth through the admin API: create the connection, authorize, follow the
    /// sandbox's consent redirect to our callback. The consent grants [`STRIPE_ACCOUNT`];
    /// its initial sync starts at once.
    pub async fn connect_stripe(&self) -> anyhow::Result<ConnectionId> {
        self.consent_as_demo_account().await?;
        self.connect("stripe").await
    }

    /// [`RunningStack::connect_stripe`], or its reauthorization when the tenant has one.
    pub async fn reconnect_stripe(&self) -> anyhow::Result<ConnectionId> {
        self.consent_as_demo_account().await?;
        self.reconnect(connector::Provider::Stripe).await
    }

    /// The sandbox's Connect consent authorizes [`STRIPE_ACCOUNT`].
    async fn consent_as_demo_account(&self) -> anyhow::Result<()> {
        self.stripe_sandbox()?
            .control()
            .set_oauth_account(Some(STRIPE_ACCOUNT))
            .await?;
        Ok(())
    }

    /// Seeds [`STRIPE_ACCOUNT`] with customers for the companies `hubspot` mirrored (see
    /// [`StripeSeeding`]), each with the sandbox's realistic subscription mix. Call it
    /// before [`RunningStack::connect_stripe`]: seeded events are recorded, not delivered.
    pub async fn seed_stripe_from_hubspot(
        &self,
        hubspot: &ConnectionId,
        seeding: &StripeSeeding,
    ) -> anyhow::Result<StripeSeed> {
        let sandbox = self.stripe_sandbox()?;
        let customers = self.all_customers(ArchivedFilter::Active).await?;
        let mut domains: HashMap<Domain, usize> = HashMap::new();
        for customer in &customers {
            if let Some(d) = &customer.domain {
                *domains.entry(d.clone()).or_default() += 1;
            }
        }
        let names: HashSet<NormalizedName> = customers
            .iter()
            .filter_map(Customer::normalized_name)
            .collect();
        let by_id: HashMap<CustomerId, Customer> =
            customers.into_iter().map(|c| (c.id.clone(), c)).collect();
        let mut companies: Vec<(SourceId, Customer)> = self
            .company_links(hubspot)
            .await?
            .into_iter()
            .filter_map(|(company, customer)| Some((company, by_id.get(&customer)?.clone())))
            .collect();
        companies.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seeding.seed);
        companies.shuffle(&mut rng);
        let wanted = (companies.len() as f64 * seeding.matched_share.clamp(0.0, 1.0)).round();
        companies.truncate(wanted as usize);

        let mut seeds = Vec::new();
        let mut expected = Vec::new();
        for (i, (company, customer)) in companies.into_iter().enumerate() {
            let unique_domain = customer
                .domain
                .clone()
                .filter(|d| domains.get(d).copied() == Some(1));
            let mut metadata = BTreeMap::new();
            match unique_domain {
                Some(domain) if i % 2 == 1 => {
                    seeds.push(CompanySeed {
                        name: customer.name.clone(),
                        email: Some(format!("billing@{domain}")),
                        metadata,
                    });
                    expected.push(ExpectedMatch::Domain {
                        company,
                        customer: customer.id,
                    });
                }
                _ => {
                    metadata.insert("hubspot_company_id".to_owned(), company.to_string());
                    seeds.push(CompanySeed {
                        name: customer.name.clone(),
                        // A personal address: the metadata is what links it.
                        email: Some(format!("{}.accounts@gmail.com", slug(&customer.name))),
                        metadata,
                    });
                    expected.push(ExpectedMatch::Metadata {
                        company,
                        customer: customer.id,
                    });
                }
            }
        }
        let mut n = 0;
        while expected
            .iter()
            .filter(|e| **e == ExpectedMatch::Unmatched)
            .count()
            < seeding.unmatched
        {
            let base = UNMATCHED_NAMES[n % UNMATCHED_NAMES.len()];
            let name = match n / UNMATCHED_NAMES.len() {
                0 => base.to_owned(),
                round => format!("{base} {}", round + 1),
            };
            n += 1;
            if NormalizedName::of(&name).is_some_and(|k| names.contains(&k)) {
                continue;
            }
            let email = if n % 2 == 0 {
                format!("owner.{}@gmail.com", slug(&name))
            } else {
                format!("ap@{}-billing.example", slug(&name))
            };
            seeds.push(CompanySeed {
                name,
                email: Some(email),
                metadata: BTreeMap::new(),
            });
            expected.push(ExpectedMatch::Unmatched);
        }

        let report = sandbox
            .control()
            .seed(&SeedRequest {
                seed: Some(seeding.seed),
                customers: Some(0),
                companies: seeds,
                account: Some(STRIPE_ACCOUNT.to_owned()),
                ..SeedRequest::default()
            })
            .await?;
        if report.customers.len() != expected.len() {
            bail!(
                "the sandbox seeded {} customers, not {}",
                report.customers.len(),
                expected.len()
            );
        }
        Ok(StripeSeed {
            account: report.account,
            prices: report.prices,
            customers: report
                .customers
                .into_iter()
                .zip(expected)
                .map(|(c, expected)| SeededStripeCustomer {
                    id: c.id,
                    name: c.name,
                    email: c.email,
                    expected,
                    subscriptions: c.subscriptions,
                })
                .collect(),
        })
    }

    /// MRR per currency over the active customers, and the Stripe matches still open.
    pub async fn billing_figures(&self) -> anyhow::Result<BillingFigures> {
        let mut figures = BillingFigures::default();
        for customer in self.all_customers(ArchivedFilter::Active).await? {
            let Some(billing) = customer.billing else {
                continue;
            };
            figures.customers_with_billing += 1;
            if billing.mrr.iter().any(|m| m.amount_minor != 0) {
                figures.paying += 1;
            }
            for money in billing.mrr {
                *figures.mrr.entry(money.currency).or_default() += money.amount_minor;
            }
        }
        let mut page = PageRequest::first(100);
        loop {
            let matches = self
                .app
                .engine
                .store
                .list_pending_matches(&self.tenant, PendingMatchStatus::Open, page.clone())
                .await?;
            for m in matches
                .items
                .iter()
                .filter(|m| m.provider == Provider::Stripe)
            {
                if m.candidates.is_empty() {
                    figures.unmatched += 1;
                } else {
                    figures.ambiguous += 1;
                }
            }
            match matches.next {
                Some(next) => page.cursor = Some(next),
                None => return Ok(figures),
            }
        }
    }

    /// A call to the Stripe sandbox's control API (`/_sandbox{path}`), for what the typed
    /// client only does on the platform account (e.g. `POST /subscriptions/{id}` with
    /// `"account"`).
    pub async fn stripe_control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let base = self.stripe_sandbox()?.base_url();
        let mut request = self.http.request(method, format!("{base}/_sandbox{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("the Stripe sandbox answered {status} to {path}: {body}");
        }
        Ok(body)
    }

    async fn all_customers(&self, filter: ArchivedFilter) -> anyhow::Result<Vec<Customer>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let customers = self
                .app
                .engine
                .store
                .list_customers(&self.tenant, filter, page.clone())
                .await?;
            out.extend(customers.items);
            match customers.next {
                Some(next) => page.cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// (HubSpot company id, customer) of every company the connection mirrors.
    async fn company_links(
        &self,
        hubspot: &ConnectionId,
    ) -> anyhow::Result<Vec<(SourceId, CustomerId)>> {
        let store = &self.app.engine.store;
        let portal = store
            .get_connection(&self.tenant, hubspot)
            .await?
            .and_then(|c| c.account_id)
            .context("the HubSpot connection has no portal yet")?;
        let mut out = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let links = store
                .list_links(
                    &self.tenant,
                    Provider::Hubspot,
                    &portal,
                    ObjectKind::Company,
                    page.clone(),
                )
                .await?;
            for link in links.items {
                if let (false, LinkTarget::Customer(id)) = (link.source_gone, link.target) {
                    out.push((link.source_id, id));
                }
            }
            match links.next {
                Some(next) => page.cursor = Some(next),
                None => return Ok(out),
            }
        }
    }
}
