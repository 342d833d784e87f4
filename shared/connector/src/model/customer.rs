use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CustomerId, Domain, Money, NormalizedName, TenantId, Timestamp};

/// Why a customer (or contact) was archived. Archiving keeps the history; only an
/// explicit "delete permanently" purges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveReason {
    /// Deleted (or archived) at the provider.
    SourceDeleted,
    /// No longer matches the connection's company filter.
    LeftFilter,
    /// Archived by an admin.
    Admin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archival {
    pub at: Timestamp,
    pub reason: ArchiveReason,
}

/// Billing fields from Stripe. MRR is per currency: a customer may pay in several.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billing {
    pub mrr: Vec<Money>,
    pub subscription_status: Option<String>,
    pub plan_names: Vec<String>,
    pub next_renewal: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

/// A customer of the tenant's product, mirrored from a HubSpot company.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub tenant_id: TenantId,
    pub id: CustomerId,
    pub name: String,
    pub domain: Option<Domain>,
    pub owner: Option<String>,
    pub arr: Option<Money>,
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
    /// Every billing source's fields combined (MRR summed per currency): what the
    /// customer page shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Billing>,
    /// Each billing source's own fields, by its id (a Stripe customer): two Stripe
    /// customers of one company each keep theirs, and deleting one clears only its own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub billing_sources: BTreeMap<String, Billing>,
    pub archived: Option<Archival>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version, bumped by the store on every write.
    pub version: u64,
}

impl Billing {
    /// Several sources as one: MRR summed per currency, plans merged, the most current
    /// status, the earliest renewal. `None` when there is no source.
    pub fn combined<'a>(sources: impl IntoIterator<Item = &'a Billing>) -> Option<Billing> {
        let mut mrr: BTreeMap<String, Money> = BTreeMap::new();
        let mut out: Option<Billing> = None;
        for source in sources {
            let all = out.get_or_insert_with(Billing::default);
            for money in &source.mrr {
                mrr.entry(money.currency.as_str().to_owned())
                    .and_modify(|m| m.amount_minor += money.amount_minor)
                    .or_insert(*money);
            }
            all.plan_names.extend(source.plan_names.iter().cloned());
            if status_rank(source.subscription_status.as_deref())
                < status_rank(all.subscription_status.as_deref())
            {
                all.subscription_status = source.subscription_status.clone();
            }
            all.next_renewal = match (all.next_renewal, source.next_renewal) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            all.updated_at = all.updated_at.max(source.updated_at);
        }
        out.map(|mut all| {
            all.mrr = mrr.into_values().collect();
            all.plan_names.sort();
            all.plan_names.dedup();
            all
        })
    }
}

/// Which subscription status a combined view shows: the most alive one.
fn status_rank(status: Option<&str>) -> usize {
    const ORDER: [&str; 8] = [
        "active",
        "trialing",
        "past_due",
        "unpaid",
        "incomplete",
        "paused",
        "canceled",
        "incomplete_expired",
    ];
    match status {
        None => usize::MAX,
        Some(s) => ORDER.iter().position(|o| *o == s).unwrap_or(ORDER.len()),
    }
}

impl Customer {
    /// Sets (or with `None` removes) one billing source's fields and recomputes the
    /// combined view.
    pub fn set_billing_source(&mut self, source: &str, billing: Option<Billing>) {
        match billing {
            Some(b) => {
                self.billing_sources.insert(source.to_owned(), b);
            }
            None => {
                self.billing_sources.remove(source);
            }
        }
        self.billing = Billing::combined(self.billing_sources.values());
    }

    pub fn new(tenant_id: TenantId, name: impl Into<String>, now: Timestamp) -> Self {
        Self {
            tenant_id,
            id: CustomerId::generate(),
            name: name.into(),
            domain: None,
            owner: None,
            arr: None,
            custom: BTreeMap::new(),
            billing: None,
            billing_sources: BTreeMap::new(),
            archived: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    pub fn normalized_name(&self) -> Option<NormalizedName> {
        NormalizedName::of(&self.name)
    }

    pub fn is_archived(&self) -> bool {
        self.archived.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Currency;

    fn money(minor: i64, currency: &str) -> Money {
        Money::new(minor, Currency::parse(currency).expect("a currency"))
    }

    fn billing(mrr: Vec<Money>, status: &str, plans: &[&str]) -> Billing {
        Billing {
            mrr,
            subscription_status: Some(status.into()),
            plan_names: plans.iter().map(|p| p.to_string()).collect(),
            next_renewal: None,
            updated_at: None,
        }
    }

    #[test]
    fn two_billing_sources_are_combined_per_currency_and_one_leaves_alone() {
        let mut c = Customer::new(
            TenantId::parse("t").expect("tenant"),
            "Acme",
            Timestamp::from_millis(0),
        );
        c.set_billing_source(
            "cus_a",
            Some(billing(vec![money(1_000, "USD")], "canceled", &["Basic"])),
        );
        c.set_billing_source(
            "cus_b",
            Some(billing(
                vec![money(2_500, "USD"), money(900, "EUR")],
                "active",
                &["Pro", "Basic"],
            )),
        );
        let all = c.billing.clone().expect("combined");
        assert_eq!(all.mrr, vec![money(900, "EUR"), money(3_500, "USD")]);
        assert_eq!(all.subscription_status.as_deref(), Some("active"));
        assert_eq!(all.plan_names, vec!["Basic".to_owned(), "Pro".to_owned()]);
        // One Stripe customer deleted: the other's billing stays.
        c.set_billing_source("cus_b", None);
        let left = c.billing.clone().expect("one source left");
        assert_eq!(left.mrr, vec![money(1_000, "USD")]);
        assert_eq!(left.subscription_status.as_deref(), Some("canceled"));
        c.set_billing_source("cus_a", None);
        assert_eq!(c.billing, None);
    }
}
