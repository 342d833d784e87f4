//! Apply one provider record to the mirror, idempotently and in source-version order.
//! Every call ends in exactly one [`Outcome`]; an unchanged record costs reads only.

use sha2::{Digest, Sha256};

use super::EngineError;
use super::mapping::{self, FieldProblem, MappedValues, Schema};
use super::matcher::{self, MatchDecision};
use super::two_way;
use crate::model::{
    Archival, ArchiveReason, CONTACT_KEY_PROPERTY, Connection, Contact, ContactId, ContentHash,
    Currency, Customer, CustomerId, LinkTarget, NormalizedName, ObjectKind, PendingMatch,
    PendingMatchId, PendingMatchStatus, Side, SourceId, SourceLink, SourceRef, SourceVersion,
    SyncDirection, Timestamp,
};
use crate::ports::{ContactWrite, CustomerWrite, Store, StoreError};
use crate::provider::SourceRecord;

/// How many times a write is re-read and retried after losing a version race.
const WRITE_ATTEMPTS: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Restored,
    Unchanged,
    Archived,
    /// Never mirrored: outside the company filter, no mirrored company (contacts), or
    /// ignored by the admin.
    Skipped,
    /// Waits for the admin: an ambiguous match, opened now (logged once, here).
    Held(PendingMatchId),
    /// Still waits for the admin on a match opened earlier: counted held, logged nothing.
    Waiting(PendingMatchId),
    /// Waits for the admin: nothing matches (a Stripe customer with no customer of ours).
    Unmatched(PendingMatchId),
    /// A billing source (Stripe customer) was deleted: its link is archived and the billing
    /// fields cleared; the customer itself stays (HubSpot owns it).
    Cleared,
    /// Two-way: a field of this contact of ours is newer than the provider's, so the
    /// caller queues its push (what the provider changed was applied).
    Pushed(ContactId),
}

/// What happened to one record, for the ledger and the log.
#[derive(Clone, Debug)]
pub struct Applied {
    pub outcome: Outcome,
    pub target: Option<LinkTarget>,
    /// Fields skipped because the mapping or the value is broken (`field_mapping_invalid`).
    pub problems: Vec<FieldProblem>,
}

impl Applied {
    pub(crate) fn new(outcome: Outcome, target: Option<LinkTarget>) -> Self {
        Self {
            outcome,
            target,
            problems: Vec::new(),
        }
    }
}

/// What an apply needs besides the record.
pub struct ApplyContext<'a> {
    pub store: &'a dyn Store,
    pub connection: &'a Connection,
    pub schema: &'a Schema,
    pub currency: Currency,
    pub now: Timestamp,
}

impl ApplyContext<'_> {
    /// A record of the connection's provider account, as links are keyed.
    pub fn source(&self, kind: ObjectKind, source_id: &SourceId) -> Result<SourceRef, EngineError> {
        super::source_of(self.connection, kind, source_id)
    }
}

/// Ids of records the service creates are derived from their source, so two workers that
/// race to create the same record write the same item and the loser sees the winner.
pub(crate) fn derived_id(source: &SourceRef) -> String {
    id_from_parts(&[
        source.provider.as_str(),
        source.account.as_str(),
        source.kind.as_str(),
        source.source_id.as_str(),
    ])
}

/// A UUID-shaped id that is the same whenever `parts` are.
pub(crate) fn id_from_parts(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let h = hex::encode(&hasher.finalize()[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Runs `attempt` again while it loses a write race (another writer stored first), up to
/// [`WRITE_ATTEMPTS`] times: each attempt re-reads what it writes.
pub(crate) async fn retrying<F, Fut>(mut attempt: F) -> Result<Applied, EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Applied, EngineError>>,
{
    for _ in 0..WRITE_ATTEMPTS {
        match attempt().await {
            Err(EngineError::Store(
                StoreError::VersionConflict { .. } | StoreError::AlreadyExists { .. },
            )) => continue,
            other => return other,
        }
    }
    Err(EngineError::Contention)
}

/// The outcome of a write guarded by the source version: `StaleSource` (the store holds a
/// newer version already) means nothing changed.
pub(crate) fn written<T>(
    result: Result<T, StoreError>,
    outcome: Outcome,
    target: LinkTarget,
) -> Result<Applied, EngineError> {
    match result {
        Ok(_) => Ok(Applied::new(outcome, Some(target))),
        Err(StoreError::StaleSource { .. }) => Ok(Applied::new(Outcome::Unchanged, Some(target))),
        Err(e) => Err(e.into()),
    }
}

/// Whether a link already holds what a record at `version` with `hash` would write: the
/// same content (whatever the version: an unmapped property changed), or an older version.
pub(crate) fn is_current(link: &SourceLink, version: SourceVersion, hash: &ContentHash) -> bool {
    !link.source_gone && (link.content_hash == *hash || !link.is_superseded_by(version, hash))
}

fn archived_marker(reason: ArchiveReason) -> ContentHash {
    ContentHash::of(&("archived", reason))
}

pub(crate) fn new_link(
    ctx: &ApplyContext<'_>,
    source: &SourceRef,
    target: LinkTarget,
    version: SourceVersion,
    hash: ContentHash,
    source_gone: bool,
) -> SourceLink {
    SourceLink {
        tenant_id: ctx.connection.tenant_id.clone(),
        connection_id: ctx.connection.id.clone(),
        provider: source.provider,
        account_id: source.account.clone(),
        object_kind: source.kind,
        source_id: source.source_id.clone(),
        target,
        source_version: version,
        content_hash: hash,
        source_gone,
        updated_at: ctx.now,
        in_step: Default::default(),
    }
}

/// The provider answered a read of `asked` with another record: `asked` was merged into
/// it (perhaps through a chain of merges the survivor does not list), so the survivor's
/// write must also settle `asked`'s link.
pub fn answering_for(asked: &SourceId, mut record: SourceRecord) -> SourceRecord {
    if record.id != *asked && !record.merged_from.contains(asked) {
        record.merged_from.push(asked.clone());
    }
    record
}

/// Any record, fresh from the provider, to what it mirrors into. `in_filter` matters for
/// companies only (the company filter).
pub async fn apply_record(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
    in_filter: bool,
) -> Result<Applied, EngineError> {
    match record.kind {
        ObjectKind::Company => apply_company(ctx, record, in_filter).await,
        ObjectKind::Contact => apply_contact(ctx, record).await,
        ObjectKind::BillingCustomer => super::billing::apply_billing(ctx, record).await,
        ObjectKind::Subscription => Err(EngineError::Corrupt(
            "subscriptions are synced through their customer".into(),
        )),
    }
}

/// A record that is gone at the provider (or left the filter): companies and contacts are
/// archived, a billing customer's fields are cleared.
pub async fn apply_gone(
    ctx: &ApplyContext<'_>,
    kind: ObjectKind,
    source_id: &SourceId,
    reason: ArchiveReason,
    seen: SourceVersion,
) -> Result<Applied, EngineError> {
    match kind {
        ObjectKind::BillingCustomer => super::billing::clear_billing(ctx, source_id).await,
        _ => archive(ctx, kind, source_id, reason, seen).await,
    }
}

/// The version a disappearance is recorded at when the provider gives none (a record
/// that is simply gone): the moment it was seen gone, so no read from before can undo it.
pub fn seen_gone_at(now: Timestamp) -> SourceVersion {
    SourceVersion(now.as_millis())
}

/// A company record, fresh from the provider. `in_filter` says whether it passes the
/// connection's company filter.
pub async fn apply_company(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
    in_filter: bool,
) -> Result<Applied, EngineError> {
    if record.archived {
        return archive(
            ctx,
            ObjectKind::Company,
            &record.id,
            ArchiveReason::SourceDeleted,
            record.version,
        )
        .await;
    }
    if !in_filter {
        return archive_or_skip(
            ctx,
            ObjectKind::Company,
            &record.id,
            ArchiveReason::LeftFilter,
            record.version,
        )
        .await;
    }
    for merged in &record.merged_from {
        repoint_merged(ctx, merged, record).await?;
    }
    let mapped = mapping::map_record(&ctx.connection.field_mapping, record, ctx.schema);
    let hash = ContentHash::of(&mapped);
    let mut applied = retrying(|| write_company(ctx, record, &mapped, &hash)).await?;
    applied.problems.splice(0..0, mapped.problems);
    Ok(applied)
}

async fn write_company(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
    mapped: &MappedValues,
    hash: &ContentHash,
) -> Result<Applied, EngineError> {
    let tenant = &ctx.connection.tenant_id;
    let source = ctx.source(ObjectKind::Company, &record.id)?;
    let link = ctx.store.get_link(tenant, &source).await?;
    let fallback_name = format!("Company {}", record.id);
    let (mut customer, restoring) = match &link {
        Some(link) if is_current(link, record.version, hash) => {
            return Ok(Applied::new(Outcome::Unchanged, Some(link.target.clone())));
        }
        Some(link) => {
            let LinkTarget::Customer(id) = &link.target else {
                return Err(EngineError::Corrupt(format!(
                    "company link {} targets a contact",
                    record.id
                )));
            };
            let customer = ctx.store.get_customer(tenant, id).await?.ok_or_else(|| {
                EngineError::Corrupt(format!("link {} points at a missing customer", record.id))
            })?;
            (customer, link.source_gone)
        }
        None => {
            let mut probe = Customer::new(tenant.clone(), "", ctx.now);
            mapping::apply_to_customer(&mut probe, mapped, ctx.currency, &fallback_name);
            let decision = matcher::decide(
                ctx.store,
                ctx.connection,
                ObjectKind::Company,
                &record.id,
                None,
                probe.domain.as_ref(),
                NormalizedName::of(&probe.name).as_ref(),
            )
            .await?;
            match decision {
                MatchDecision::Link(id) => {
                    let customer = ctx
                        .store
                        .get_customer(tenant, &id)
                        .await?
                        .ok_or(StoreError::NotFound { entity: "customer" })?;
                    (customer, false)
                }
                MatchDecision::CreateNew | MatchDecision::NoCandidate => {
                    let mut customer =
                        Customer::new(tenant.clone(), fallback_name.clone(), ctx.now);
                    customer.id = CustomerId::parse(derived_id(&source))?;
                    (customer, false)
                }
                MatchDecision::Ignore => return Ok(Applied::new(Outcome::Skipped, None)),
                MatchDecision::AwaitingAdmin(id) => {
                    return Ok(Applied::new(Outcome::Waiting(id), None));
                }
                MatchDecision::Ambiguous(candidates) => {
                    let id = raise_match(ctx, record, &probe, candidates).await?;
                    return Ok(Applied::new(Outcome::Held(id), None));
                }
            }
        }
    };
    let was_archived = customer.is_archived();
    let problems = mapping::apply_to_customer(&mut customer, mapped, ctx.currency, &fallback_name);
    let restored = restoring || was_archived && link.is_some();
    if restored {
        customer.archived = None;
    }
    customer.updated_at = ctx.now;
    let target = LinkTarget::Customer(customer.id.clone());
    let new = new_link(
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
    let outcome = if restored {
        Outcome::Restored
    } else {
        Outcome::Applied
    };
    Ok(Applied {
        problems,
        ..written(result, outcome, target)?
    })
}

pub(crate) async fn raise_match(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
    probe: &Customer,
    candidates: Vec<CustomerId>,
) -> Result<PendingMatchId, EngineError> {
    let m = PendingMatch {
        tenant_id: ctx.connection.tenant_id.clone(),
        id: PendingMatchId::generate(),
        connection_id: ctx.connection.id.clone(),
        provider: ctx.connection.provider,
        object_kind: record.kind,
        source_id: record.id.clone(),
        source_name: probe.name.clone(),
        source_domain: probe.domain.clone(),
        candidates,
        status: PendingMatchStatus::Open,
        resolution: None,
        created_at: ctx.now,
        resolved_at: None,
    };
    match ctx.store.create_pending_match(&m).await {
        Ok(()) => Ok(m.id),
        Err(StoreError::AlreadyExists { .. }) => {
            let existing = ctx
                .store
                .find_pending_match_for_source(
                    &m.tenant_id,
                    m.provider,
                    m.object_kind,
                    &m.source_id,
                )
                .await?;
            Ok(existing.map(|e| e.id).unwrap_or(m.id))
        }
        Err(e) => Err(e.into()),
    }
}

/// `merged` was merged into `survivor` at the provider. If only the loser was mirrored,
/// its customer now belongs to the survivor (the link moves); if both were, the loser's
/// customer is archived. The survivor is never archived.
async fn repoint_merged(
    ctx: &ApplyContext<'_>,
    merged: &SourceId,
    survivor_record: &SourceRecord,
) -> Result<(), EngineError> {
    let survivor = &survivor_record.id;
    let tenant = &ctx.connection.tenant_id;
    let merged_ref = ctx.source(ObjectKind::Company, merged)?;
    let Some(loser) = ctx.store.get_link(tenant, &merged_ref).await? else {
        return Ok(());
    };
    let survivor_link = ctx
        .store
        .get_link(tenant, &ctx.source(ObjectKind::Company, survivor)?)
        .await?;
    if survivor_link.is_none() && !loser.source_gone {
        // Version 0 and an empty hash: the survivor's own write right after supersedes it.
        let moved = SourceLink {
            source_id: survivor.clone(),
            source_version: SourceVersion(0),
            content_hash: ContentHash::from_hex(""),
            updated_at: ctx.now,
            ..loser.clone()
        };
        ctx.store.put_link(&moved).await?;
        ctx.store.delete_link(tenant, &merged_ref).await?;
        return Ok(());
    }
    archive(
        ctx,
        ObjectKind::Company,
        merged,
        ArchiveReason::SourceDeleted,
        survivor_record.version,
    )
    .await?;
    Ok(())
}

/// A contact record, fresh from the provider. It is mirrored only while one of its
/// companies is mirrored, and attached to the first such company's customer; on a
/// two-way connection a contact the product pushed stays mirrored without one.
pub async fn apply_contact(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
) -> Result<Applied, EngineError> {
    if record.archived {
        return archive(
            ctx,
            ObjectKind::Contact,
            &record.id,
            ArchiveReason::SourceDeleted,
            record.version,
        )
        .await;
    }
    let tenant = &ctx.connection.tenant_id;
    let mut customer_id = None;
    for company in &record.associated_companies {
        let link = ctx
            .store
            .get_link(tenant, &ctx.source(ObjectKind::Company, company)?)
            .await?;
        if let Some(SourceLink {
            target: LinkTarget::Customer(id),
            source_gone: false,
            ..
        }) = link
        {
            customer_id = Some(id);
            break;
        }
    }
    if customer_id.is_none() && !pushed_by_us(ctx, record).await? {
        return archive_or_skip(
            ctx,
            ObjectKind::Contact,
            &record.id,
            ArchiveReason::LeftFilter,
            record.version,
        )
        .await;
    }
    for merged in &record.merged_from {
        archive(
            ctx,
            ObjectKind::Contact,
            merged,
            ArchiveReason::SourceDeleted,
            record.version,
        )
        .await?;
    }
    let mapped = mapping::map_record(&ctx.connection.field_mapping, record, ctx.schema);
    let hash = ContentHash::of(&(&mapped, &customer_id));
    let mut applied =
        retrying(|| write_contact(ctx, record, &mapped, &hash, customer_id.as_ref())).await?;
    applied.problems.splice(0..0, mapped.problems);
    Ok(applied)
}

/// Our contact a two-way record belongs to: the one its link targets, or the one whose
/// id the record carries in our key property (a contact we created and whose link is
/// not stored yet).
async fn own_contact(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
    link: Option<&SourceLink>,
) -> Result<Option<Contact>, EngineError> {
    let tenant = &ctx.connection.tenant_id;
    let id = match link {
        Some(SourceLink {
            target: LinkTarget::Contact(id),
            ..
        }) => Some(id.clone()),
        Some(_) => None,
        None => record
            .properties
            .get(CONTACT_KEY_PROPERTY)
            .and_then(|v| v.as_deref())
            .and_then(|v| ContactId::parse(v.trim()).ok()),
    };
    match id {
        Some(id) => Ok(ctx.store.get_contact(tenant, &id).await?),
        None => Ok(None),
    }
}

/// Whether a two-way record is a contact the product pushed into this account.
async fn pushed_by_us(ctx: &ApplyContext<'_>, record: &SourceRecord) -> Result<bool, EngineError> {
    if ctx.connection.direction != SyncDirection::TwoWay {
        return Ok(false);
    }
    let source = ctx.source(ObjectKind::Contact, &record.id)?;
    let link = ctx
        .store
        .get_link(&ctx.connection.tenant_id, &source)
        .await?;
    Ok(own_contact(ctx, record, link.as_ref())
        .await?
        .is_some_and(|c| c.pushed_into(source.provider, &source.account).is_some()))
}

async fn write_contact(
    ctx: &ApplyContext<'_>,
    record: &SourceRecord,
    mapped: &MappedValues,
    hash: &ContentHash,
    customer_id: Option<&CustomerId>,
) -> Result<Applied, EngineError> {
    let tenant = &ctx.connection.tenant_id;
    let two_way = ctx.connection.direction == SyncDirection::TwoWay;
    let source = ctx.source(ObjectKind::Contact, &record.id)?;
    let link = ctx.store.get_link(tenant, &source).await?;
    let (mut contact, restoring) = match &link {
        Some(link) if is_current(link, record.version, hash) => {
            return Ok(Applied::new(Outcome::Unchanged, Some(link.target.clone())));
        }
        Some(link) => {
            if !matches!(link.target, LinkTarget::Contact(_)) {
                return Err(EngineError::Corrupt(format!(
                    "contact link {} targets a customer",
                    record.id
                )));
            }
            let contact = own_contact(ctx, record, Some(link)).await?.ok_or_else(|| {
                EngineError::Corrupt(format!("link {} points at a missing contact", record.id))
            })?;
            (contact, link.source_gone)
        }
        None => match own_contact(ctx, record, None).await?.filter(|_| two_way) {
            Some(ours) => (ours, false),
            None => {
                let mut contact = Contact::new(tenant.clone(), ctx.now);
                contact.id = ContactId::parse(derived_id(&source))?;
                (contact, false)
            }
        },
    };
    let mut new = new_link(
        ctx,
        &source,
        LinkTarget::Contact(contact.id.clone()),
        record.version,
        hash.clone(),
        false,
    );
    let mut pushes = false;
    let problems = if two_way {
        let agreed = link.as_ref().map(|l| l.in_step.clone()).unwrap_or_default();
        let resolution = two_way::resolve(
            ctx.connection,
            ctx.schema,
            &contact,
            record,
            &agreed,
            ctx.now,
        );
        let pulled = two_way::pulled(ctx.connection, ctx.schema, mapped, &resolution);
        let problems = mapping::apply_to_contact(&mut contact, &pulled);
        // A field we keep is agreed only once the push has written it.
        new.in_step = agreed;
        new.in_step.extend(resolution.in_step);
        pushes = !resolution.push.is_empty();
        two_way::record_conflicts(
            ctx.store,
            ctx.connection,
            &contact,
            record,
            resolution
                .conflicts
                .into_iter()
                .filter(|c| c.winner == Side::Theirs),
            ctx.now,
        )
        .await?;
        problems
    } else {
        mapping::apply_to_contact(&mut contact, mapped)
    };
    if let Some(customer_id) = customer_id {
        contact.customer_id = Some(customer_id.clone());
    }
    let restored = restoring || contact.archived.is_some() && link.is_some();
    contact.archived = None;
    contact.updated_at = ctx.now;
    let target = new.target.clone();
    let result = ctx
        .store
        .write_contact(ContactWrite {
            contact: &contact,
            expected_version: contact.version,
            link: Some(&new),
        })
        .await;
    let outcome = if restored {
        Outcome::Restored
    } else if pushes {
        Outcome::Pushed(contact.id.clone())
    } else {
        Outcome::Applied
    };
    Ok(Applied {
        problems,
        ..written(result, outcome, target)?
    })
}

/// Archives what a record is mirrored into, if it is; otherwise it was never mirrored.
async fn archive_or_skip(
    ctx: &ApplyContext<'_>,
    kind: ObjectKind,
    source_id: &SourceId,
    reason: ArchiveReason,
    seen: SourceVersion,
) -> Result<Applied, EngineError> {
    let applied = archive(ctx, kind, source_id, reason, seen).await?;
    Ok(match applied.target {
        None => Applied::new(Outcome::Skipped, None),
        Some(_) => applied,
    })
}

/// The record is gone at the provider (or left the filter), as seen at version `seen`:
/// archive its customer or contact. Never deletes. Archiving twice changes nothing. The
/// archive is ordered by version like any write: it carries `seen`, so a worker that read
/// the record before it vanished cannot restore it, and a disappearance seen before the
/// stored version (a restore already applied) archives nothing.
pub async fn archive(
    ctx: &ApplyContext<'_>,
    kind: ObjectKind,
    source_id: &SourceId,
    reason: ArchiveReason,
    seen: SourceVersion,
) -> Result<Applied, EngineError> {
    retrying(|| archive_once(ctx, kind, source_id, reason, seen)).await
}

async fn archive_once(
    ctx: &ApplyContext<'_>,
    kind: ObjectKind,
    source_id: &SourceId,
    reason: ArchiveReason,
    seen: SourceVersion,
) -> Result<Applied, EngineError> {
    let tenant = &ctx.connection.tenant_id;
    let Some(link) = ctx
        .store
        .get_link(tenant, &ctx.source(kind, source_id)?)
        .await?
    else {
        return Ok(Applied::new(Outcome::Unchanged, None));
    };
    if link.source_gone || seen < link.source_version {
        return Ok(Applied::new(Outcome::Unchanged, Some(link.target)));
    }
    let gone = SourceLink {
        content_hash: archived_marker(reason),
        source_gone: true,
        source_version: seen,
        updated_at: ctx.now,
        ..link.clone()
    };
    let archival = Some(Archival {
        at: ctx.now,
        reason,
    });
    let result = match &link.target {
        LinkTarget::Customer(id) => {
            let Some(mut customer) = ctx.store.get_customer(tenant, id).await? else {
                return Err(EngineError::Corrupt(format!(
                    "link {source_id} points at a missing customer"
                )));
            };
            if !customer.is_archived() {
                customer.archived = archival;
            }
            customer.updated_at = ctx.now;
            ctx.store
                .write_customer(CustomerWrite {
                    customer: &customer,
                    expected_version: customer.version,
                    link: Some(&gone),
                })
                .await
                .map(drop)
        }
        LinkTarget::Contact(id) => {
            let Some(mut contact) = ctx.store.get_contact(tenant, id).await? else {
                return Err(EngineError::Corrupt(format!(
                    "link {source_id} points at a missing contact"
                )));
            };
            if contact.archived.is_none() {
                contact.archived = archival;
            }
            contact.updated_at = ctx.now;
            ctx.store
                .write_contact(ContactWrite {
                    contact: &contact,
                    expected_version: contact.version,
                    link: Some(&gone),
                })
                .await
                .map(drop)
        }
    };
    written(result, Outcome::Archived, link.target)
}
