//! Stripe customers -> the billing fields (MRR, status, plans, next renewal) of our
//! customers. HubSpot owns the customers: a Stripe customer is matched to one (explicit
//! link, then email domain, then name), never creates one unless the admin says so, and
//! its deletion clears the billing fields while the customer stays.

use super::EngineError;
use super::apply::{self, Applied, ApplyContext, Outcome};
use super::matcher::{self, MatchDecision};
use crate::model::{
    Billing, ContentHash, Customer, CustomerId, Domain, LinkTarget, NormalizedName, ObjectKind,
    Provider, ProviderAccountId, SourceId, SourceRef,
};
use crate::ports::{CustomerWrite, StoreError};
use crate::provider::SourceRecord;

/// Record properties the engine reads (the Stripe provider's names).
pub mod property {
    pub const NAME: &str = "name";
    pub const EMAIL: &str = "email";
    pub const BILLING: &str = "billing";
}

/// Metadata keys that name the customer's HubSpot company: an explicit link.
pub const HUBSPOT_LINK_KEYS: &[&str] = &[
    "metadata.hubspot_company_id",
    "metadata.hubspot_id",
    "metadata.hs_object_id",
];

/// Mail hosts that say nothing about the company behind an address.
const PERSONAL_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.ru",
];

fn text<'a>(record: &'a SourceRecord, name: &str) -> Option<&'a str> {
    record
        .properties
        .get(name)
        .and_then(|v| v.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The company domain of a billing email, unless it is a personal mail host.
pub fn company_domain(email: &str) -> Option<Domain> {
    Domain::from_email(email)
        .ok()
        .filter(|d| !PERSONAL_MAIL_DOMAINS.contains(&d.as_str()))
}

pub async fn apply_billing(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
) -> Result<Applied, EngineError> {
    let raw = text(record, property::BILLING).ok_or_else(|| {
        EngineError::Corrupt(format!("Stripe record {} carries no billing", record.id))
    })?;
    let billing: Billing = serde_json::from_str(raw)
        .map_err(|e| EngineError::Corrupt(format!("billing of {}: {e}", record.id)))?;
    // The computation time is not content: equal billing computed later writes nothing.
    let hash = ContentHash::of(&Billing {
        updated_at: None,
        ..billing.clone()
    });
    apply::retrying(|| write_billing(ctx, record, &billing, &hash)).await
}

async fn explicit_link(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
) -> Result<Option<CustomerId>, EngineError> {
    let tenant = &ctx.connection.tenant_id;
    let mut portals = None;
    for key in HUBSPOT_LINK_KEYS {
        let Some(company) = text(record, key).and_then(|id| SourceId::parse(id).ok()) else {
            continue;
        };
        // The company id names a record of one of the tenant's HubSpot portals.
        if portals.is_none() {
            portals = Some(hubspot_portals(ctx).await?);
        }
        for portal in portals.iter().flatten() {
            let source = SourceRef {
                provider: Provider::Hubspot,
                account: portal.clone(),
                kind: ObjectKind::Company,
                source_id: company.clone(),
            };
            if let Some(link) = ctx.store.get_link(tenant, &source).await?
                && let LinkTarget::Customer(id) = link.target
            {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

async fn hubspot_portals(ctx: &ApplyContext<'_>) -> Result<Vec<ProviderAccountId>, EngineError> {
    Ok(ctx
        .store
        .list_connections(&ctx.connection.tenant_id)
        .await?
        .into_iter()
        .filter(|c| c.provider == Provider::Hubspot)
        .filter_map(|c| c.account_id)
        .collect())
}

async fn write_billing(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
    billing: &Billing,
    hash: &ContentHash,
) -> Result<Applied, EngineError> {
    let tenant = &ctx.connection.tenant_id;
    let kind = ObjectKind::BillingCustomer;
    let source = ctx.source(kind, &record.id)?;
    let link = ctx.store.get_link(tenant, &source).await?;
    let name = text(record, property::NAME)
        .unwrap_or(record.id.as_str())
        .to_owned();
    let mut customer = match &link {
        Some(link) if apply::is_current(link, record.version, hash) => {
            return Ok(Applied::new(Outcome::Unchanged, Some(link.target.clone())));
        }
        Some(link) => {
            let LinkTarget::Customer(id) = &link.target else {
                return Err(EngineError::Corrupt(format!(
                    "billing link {} targets a contact",
                    record.id
                )));
            };
            ctx.store.get_customer(tenant, id).await?.ok_or_else(|| {
                EngineError::Corrupt(format!("link {} points at a missing customer", record.id))
            })?
        }
        None => {
            let domain = text(record, property::EMAIL).and_then(company_domain);
            let explicit = explicit_link(ctx, record).await?;
            let decision = matcher::decide(
                ctx.store,
                ctx.connection,
                kind,
                &record.id,
                explicit,
                domain.as_ref(),
                NormalizedName::of(&name).as_ref(),
            )
            .await?;
            let mut probe = Customer::new(tenant.clone(), name.clone(), ctx.now);
            probe.domain = domain;
            match decision {
                MatchDecision::Link(id) => ctx
                    .store
                    .get_customer(tenant, &id)
                    .await?
                    .ok_or(StoreError::NotFound { entity: "customer" })?,
                MatchDecision::CreateNew => {
                    probe.id = CustomerId::parse(apply::derived_id(&source))?;
                    probe
                }
                MatchDecision::Ignore => return Ok(Applied::new(Outcome::Skipped, None)),
                MatchDecision::AwaitingAdmin(id) => {
                    return Ok(Applied::new(Outcome::Waiting(id), None));
                }
                MatchDecision::Ambiguous(candidates) => {
                    let id = apply::raise_match(ctx, record, &probe, candidates).await?;
                    return Ok(Applied::new(Outcome::Held(id), None));
                }
                MatchDecision::NoCandidate => {
                    let id = apply::raise_match(ctx, record, &probe, Vec::new()).await?;
                    return Ok(Applied::new(Outcome::Unmatched(id), None));
                }
            }
        }
    };
    customer.set_billing_source(
        record.id.as_str(),
        Some(Billing {
            updated_at: Some(ctx.now),
            ..billing.clone()
        }),
    );
    customer.updated_at = ctx.now;
    let target = LinkTarget::Customer(customer.id.clone());
    let new = apply::new_link(
        ctx,
        &source,
        target.clone(),
        record.version,
        hash.clone(),
        false,
    );
    let result = ctx
        .store
        .write_customer(CustomerWrite {
            customer: &customer,
            expected_version: customer.version,
            link: Some(&new),
        })
        .await;
    apply::written(result, Outcome::Applied, target)
}

/// The Stripe customer is gone: archive its link and take its billing out of the
/// customer's (another Stripe customer of the same company keeps its own).
pub async fn clear_billing(
    ctx: &ApplyContext<'_>,
    source_id: &SourceId,
) -> Result<Applied, EngineError> {
    apply::retrying(|| clear_once(ctx, source_id)).await
}

async fn clear_once(ctx: &ApplyContext<'_>, source_id: &SourceId) -> Result<Applied, EngineError> {
    let tenant = &ctx.connection.tenant_id;
    let Some(link) = ctx
        .store
        .get_link(tenant, &ctx.source(ObjectKind::BillingCustomer, source_id)?)
        .await?
    else {
        return Ok(Applied::new(Outcome::Unchanged, None));
    };
    if link.source_gone {
        return Ok(Applied::new(Outcome::Unchanged, Some(link.target)));
    }
    let LinkTarget::Customer(id) = &link.target else {
        return Err(EngineError::Corrupt(format!(
            "billing link {source_id} targets a contact"
        )));
    };
    let Some(mut customer) = ctx.store.get_customer(tenant, id).await? else {
        return Err(EngineError::Corrupt(format!(
            "link {source_id} points at a missing customer"
        )));
    };
    customer.set_billing_source(source_id.as_str(), None);
    customer.updated_at = ctx.now;
    let gone = crate::model::SourceLink {
        content_hash: ContentHash::of(&"deleted"),
        source_gone: true,
        updated_at: ctx.now,
        ..link.clone()
    };
    let result = ctx
        .store
        .write_customer(CustomerWrite {
            customer: &customer,
            expected_version: customer.version,
            link: Some(&gone),
        })
        .await;
    apply::written(result, Outcome::Cleared, link.target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_mail_hosts_say_nothing_about_the_company() {
        assert_eq!(
            company_domain("ap@Acme.com").map(|d| d.as_str().to_owned()),
            Some("acme.com".into())
        );
        assert_eq!(company_domain("jane@gmail.com"), None);
        assert_eq!(company_domain("not an email"), None);
    }
}
