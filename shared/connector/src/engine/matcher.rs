//! Which customer a new source record belongs to: the admin's earlier choice first, then
//! the domain, then the normalised name. Two or more candidates (or one that another source
//! record already owns) is never guessed: it becomes a pending match.

use crate::model::{
    Connection, Customer, CustomerId, Domain, LinkTarget, MatchResolution, NormalizedName,
    ObjectKind, PendingMatchId, PendingMatchStatus, SourceId,
};
use crate::ports::{Store, StoreResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchDecision {
    /// Link the record to this existing customer.
    Link(CustomerId),
    /// The admin chose to mirror the record as a new customer.
    CreateNew,
    /// No candidate at all (HubSpot then creates the customer; Stripe lists it as unmatched).
    NoCandidate,
    /// Two or more candidates, or one already owned by another record: ask the admin.
    Ambiguous(Vec<CustomerId>),
    /// The admin chose not to mirror this record.
    Ignore,
    /// A match for this record is open and waits for the admin.
    AwaitingAdmin(PendingMatchId),
}

pub async fn decide(
    store: &dyn Store,
    connection: &Connection,
    kind: ObjectKind,
    source_id: &SourceId,
    explicit: Option<CustomerId>,
    domain: Option<&Domain>,
    name: Option<&NormalizedName>,
) -> StoreResult<MatchDecision> {
    let tenant = &connection.tenant_id;
    if let Some(earlier) = store
        .find_pending_match_for_source(tenant, connection.provider, kind, source_id)
        .await?
    {
        match (earlier.status, earlier.resolution) {
            (PendingMatchStatus::Open, _) | (PendingMatchStatus::Resolved, None) => {
                return Ok(MatchDecision::AwaitingAdmin(earlier.id));
            }
            (PendingMatchStatus::Resolved, Some(MatchResolution::LinkTo { customer_id })) => {
                return Ok(match store.get_customer(tenant, &customer_id).await? {
                    Some(_) => MatchDecision::Link(customer_id),
                    None => MatchDecision::CreateNew,
                });
            }
            (PendingMatchStatus::Resolved, Some(MatchResolution::CreateNew)) => {
                return Ok(MatchDecision::CreateNew);
            }
            (PendingMatchStatus::Resolved, Some(MatchResolution::Ignore)) => {
                return Ok(MatchDecision::Ignore);
            }
        }
    }
    // An explicit link (Stripe metadata naming the HubSpot company) comes before any guess.
    if let Some(id) = explicit
        && store.get_customer(tenant, &id).await?.is_some()
    {
        return Ok(MatchDecision::Link(id));
    }
    if let Some(domain) = domain {
        let found = store.find_customers_by_domain(tenant, domain).await?;
        if let Some(decision) = judge(store, connection, kind, source_id, found).await? {
            return Ok(decision);
        }
    }
    if let Some(name) = name {
        // Same name, different known domains: two companies, not one.
        let found = store
            .find_customers_by_name(tenant, name)
            .await?
            .into_iter()
            .filter(|c| domain.is_none() || c.domain.is_none())
            .collect();
        if let Some(decision) = judge(store, connection, kind, source_id, found).await? {
            return Ok(decision);
        }
    }
    Ok(MatchDecision::NoCandidate)
}

/// `None` when there is no active candidate, so the next rule gets its turn.
async fn judge(
    store: &dyn Store,
    connection: &Connection,
    kind: ObjectKind,
    source_id: &SourceId,
    found: Vec<Customer>,
) -> StoreResult<Option<MatchDecision>> {
    let candidates: Vec<CustomerId> = found
        .into_iter()
        .filter(|c| !c.is_archived())
        .map(|c| c.id)
        .collect();
    match candidates.as_slice() {
        [] => Ok(None),
        [only] => {
            let owned_elsewhere = store
                .links_to(&connection.tenant_id, &LinkTarget::Customer(only.clone()))
                .await?
                .iter()
                .any(|l| {
                    l.provider == connection.provider
                        && l.object_kind == kind
                        && l.source_id != *source_id
                        && !l.source_gone
                });
            Ok(Some(if owned_elsewhere {
                MatchDecision::Ambiguous(candidates)
            } else {
                MatchDecision::Link(only.clone())
            }))
        }
        _ => Ok(Some(MatchDecision::Ambiguous(candidates))),
    }
}
