//! Customers, contacts and the source links that point at them.

use connector::model::{
    Contact, ContactId, Customer, CustomerId, Domain, LinkTarget, NormalizedName, ObjectKind,
    Provider, ProviderAccountId, SourceLink, SourceRef, TenantId,
};
use connector::ports::{ArchivedFilter, Page, PageRequest, StoreError, StoreResult};
use rusqlite::{Connection as Db, OptionalExtension, TransactionBehavior, params};

use super::codec::{
    SqlResult, encode, fetch_size, into_page, next_version, query_all, query_one, stored_version,
};

// ---- customers

pub(super) fn get_customer(
    db: &mut Db,
    tenant: &TenantId,
    id: &CustomerId,
) -> StoreResult<Option<Customer>> {
    query_one(
        db,
        "customer",
        "SELECT body FROM store_customers WHERE tenant_id = ?1 AND id = ?2",
        [tenant.as_str(), id.as_str()],
    )
}

/// The customer and its link land together or not at all (see `CustomerWrite`).
pub(super) fn write_customer(
    db: &mut Db,
    mut customer: Customer,
    expected_version: u64,
    link: Option<&SourceLink>,
) -> StoreResult<Customer> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let stored = stored_version(
        &tx,
        "SELECT version FROM store_customers WHERE tenant_id = ?1 AND id = ?2",
        [customer.tenant_id.as_str(), customer.id.as_str()],
    )?;
    customer.version = next_version("customer", stored, expected_version)?;
    if let Some(link) = link {
        check_link_is_superseded(&tx, link)?;
    }
    let normalized_name = customer.normalized_name();
    tx.prepare_cached(
        "INSERT INTO store_customers
             (tenant_id, id, domain, normalized_name, archived, version, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant_id, id) DO UPDATE SET
             domain = excluded.domain, normalized_name = excluded.normalized_name,
             archived = excluded.archived, version = excluded.version, body = excluded.body",
    )
    .db()?
    .execute(params![
        customer.tenant_id.as_str(),
        customer.id.as_str(),
        customer.domain.as_ref().map(Domain::as_str),
        normalized_name.as_ref().map(NormalizedName::as_str),
        customer.is_archived(),
        customer.version,
        encode(&customer)?,
    ])
    .db()?;
    if let Some(link) = link {
        put_link(&tx, link)?;
    }
    tx.commit().db()?;
    Ok(customer)
}

pub(super) fn find_customers_by_domain(
    db: &mut Db,
    tenant: &TenantId,
    domain: &Domain,
) -> StoreResult<Vec<Customer>> {
    query_all(
        db,
        "customer",
        "SELECT body FROM store_customers INDEXED BY store_customers_by_domain
         WHERE tenant_id = ?1 AND domain = ?2 ORDER BY id",
        [tenant.as_str(), domain.as_str()],
    )
}

pub(super) fn find_customers_by_name(
    db: &mut Db,
    tenant: &TenantId,
    name: &NormalizedName,
) -> StoreResult<Vec<Customer>> {
    query_all(
        db,
        "customer",
        "SELECT body FROM store_customers INDEXED BY store_customers_by_name
         WHERE tenant_id = ?1 AND normalized_name = ?2 ORDER BY id",
        [tenant.as_str(), name.as_str()],
    )
}

/// Ordered by id; the cursor is the last id of the page.
pub(super) fn list_customers(
    db: &mut Db,
    tenant: &TenantId,
    filter: ArchivedFilter,
    page: &PageRequest,
) -> StoreResult<Page<Customer>> {
    let limit = page.effective_limit();
    let after = page.cursor.as_deref().unwrap_or("");
    let archived = match filter {
        ArchivedFilter::Active => Some(false),
        ArchivedFilter::Archived => Some(true),
        ArchivedFilter::All => None,
    };
    let items: Vec<Customer> = match archived {
        Some(archived) => query_all(
            db,
            "customer",
            "SELECT body FROM store_customers INDEXED BY store_customers_by_archived
             WHERE tenant_id = ?1 AND archived = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
            params![tenant.as_str(), archived, after, fetch_size(limit)],
        )?,
        None => query_all(
            db,
            "customer",
            "SELECT body FROM store_customers
             WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            params![tenant.as_str(), after, fetch_size(limit)],
        )?,
    };
    Ok(into_page(items, limit, |c| c.id.as_str().to_owned()))
}

/// Removes an archived customer, its contacts and every link to either.
pub(super) fn delete_customer_permanently(
    db: &mut Db,
    tenant: &TenantId,
    id: &CustomerId,
) -> StoreResult<()> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let keys = [tenant.as_str(), id.as_str()];
    let archived: Option<bool> = tx
        .prepare_cached("SELECT archived FROM store_customers WHERE tenant_id = ?1 AND id = ?2")
        .db()?
        .query_row(keys, |row| row.get(0))
        .optional()
        .db()?;
    match archived {
        None => return Err(StoreError::NotFound { entity: "customer" }),
        Some(false) => return Err(StoreError::NotArchived),
        Some(true) => {}
    }
    let statements = [
        "DELETE FROM store_source_links
         WHERE tenant_id = ?1 AND target_type = 'contact' AND target_id IN
             (SELECT id FROM store_contacts WHERE tenant_id = ?1 AND customer_id = ?2)",
        "DELETE FROM store_contacts WHERE tenant_id = ?1 AND customer_id = ?2",
        "DELETE FROM store_source_links WHERE tenant_id = ?1 AND target_type = 'customer' AND target_id = ?2",
        "DELETE FROM store_customers WHERE tenant_id = ?1 AND id = ?2",
    ];
    for sql in statements {
        tx.prepare_cached(sql).db()?.execute(keys).db()?;
    }
    tx.commit().db()
}

// ---- contacts

pub(super) fn get_contact(
    db: &mut Db,
    tenant: &TenantId,
    id: &ContactId,
) -> StoreResult<Option<Contact>> {
    query_one(
        db,
        "contact",
        "SELECT body FROM store_contacts WHERE tenant_id = ?1 AND id = ?2",
        [tenant.as_str(), id.as_str()],
    )
}

/// The contact and its link land together or not at all (see `ContactWrite`).
pub(super) fn write_contact(
    db: &mut Db,
    mut contact: Contact,
    expected_version: u64,
    link: Option<&SourceLink>,
) -> StoreResult<Contact> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let stored = stored_version(
        &tx,
        "SELECT version FROM store_contacts WHERE tenant_id = ?1 AND id = ?2",
        [contact.tenant_id.as_str(), contact.id.as_str()],
    )?;
    contact.version = next_version("contact", stored, expected_version)?;
    if let Some(link) = link {
        check_link_is_superseded(&tx, link)?;
    }
    tx.prepare_cached(
        "INSERT INTO store_contacts (tenant_id, id, customer_id, version, body)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant_id, id) DO UPDATE SET
             customer_id = excluded.customer_id, version = excluded.version, body = excluded.body",
    )
    .db()?
    .execute(params![
        contact.tenant_id.as_str(),
        contact.id.as_str(),
        contact.customer_id.as_ref().map(CustomerId::as_str),
        contact.version,
        encode(&contact)?,
    ])
    .db()?;
    if let Some(link) = link {
        put_link(&tx, link)?;
    }
    tx.commit().db()?;
    Ok(contact)
}

/// Ordered by id; the cursor is the last id of the page.
pub(super) fn list_contacts_of_customer(
    db: &mut Db,
    tenant: &TenantId,
    customer: &CustomerId,
    page: &PageRequest,
) -> StoreResult<Page<Contact>> {
    let limit = page.effective_limit();
    let after = page.cursor.as_deref().unwrap_or("");
    let items: Vec<Contact> = query_all(
        db,
        "contact",
        "SELECT body FROM store_contacts INDEXED BY store_contacts_by_customer
         WHERE tenant_id = ?1 AND customer_id = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
        params![tenant.as_str(), customer.as_str(), after, fetch_size(limit)],
    )?;
    Ok(into_page(items, limit, |c| c.id.as_str().to_owned()))
}

// ---- source links

fn target_columns(target: &LinkTarget) -> (&'static str, &str) {
    match target {
        LinkTarget::Customer(id) => ("customer", id.as_str()),
        LinkTarget::Contact(id) => ("contact", id.as_str()),
    }
}

/// `StaleSource` unless the stored link (if any) is superseded by `link`.
fn check_link_is_superseded(db: &Db, link: &SourceLink) -> StoreResult<()> {
    let stored = get_link(db, &link.tenant_id, &link.source_ref())?;
    match stored {
        Some(stored) if !stored.is_superseded_by(link.source_version, &link.content_hash) => {
            Err(StoreError::StaleSource {
                offered: link.source_version,
                stored: stored.source_version,
            })
        }
        _ => Ok(()),
    }
}

pub(super) fn get_link(
    db: &Db,
    tenant: &TenantId,
    source: &SourceRef,
) -> StoreResult<Option<SourceLink>> {
    query_one(
        db,
        "source link",
        "SELECT body FROM store_source_links
         WHERE tenant_id = ?1 AND provider = ?2 AND account_id = ?3 AND object_kind = ?4
           AND source_id = ?5",
        [
            tenant.as_str(),
            source.provider.as_str(),
            source.account.as_str(),
            source.kind.as_str(),
            source.source_id.as_str(),
        ],
    )
}

pub(super) fn put_link(db: &Db, link: &SourceLink) -> StoreResult<()> {
    let (target_type, target_id) = target_columns(&link.target);
    db.prepare_cached(
        "INSERT INTO store_source_links
             (tenant_id, provider, account_id, object_kind, source_id,
              target_type, target_id, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (tenant_id, provider, account_id, object_kind, source_id) DO UPDATE SET
             target_type = excluded.target_type, target_id = excluded.target_id,
             body = excluded.body",
    )
    .db()?
    .execute(params![
        link.tenant_id.as_str(),
        link.provider.as_str(),
        link.account_id.as_str(),
        link.object_kind.as_str(),
        link.source_id.as_str(),
        target_type,
        target_id,
        encode(link)?,
    ])
    .db()?;
    Ok(())
}

pub(super) fn delete_link(db: &mut Db, tenant: &TenantId, source: &SourceRef) -> StoreResult<()> {
    db.prepare_cached(
        "DELETE FROM store_source_links
         WHERE tenant_id = ?1 AND provider = ?2 AND account_id = ?3 AND object_kind = ?4
           AND source_id = ?5",
    )
    .db()?
    .execute([
        tenant.as_str(),
        source.provider.as_str(),
        source.account.as_str(),
        source.kind.as_str(),
        source.source_id.as_str(),
    ])
    .db()?;
    Ok(())
}

/// Ordered by source id; the cursor is the last source id.
pub(super) fn list_links(
    db: &mut Db,
    tenant: &TenantId,
    provider: Provider,
    account: &ProviderAccountId,
    kind: ObjectKind,
    page: &PageRequest,
) -> StoreResult<Page<SourceLink>> {
    let limit = page.effective_limit();
    let after = page.cursor.as_deref().unwrap_or("");
    let items: Vec<SourceLink> = query_all(
        db,
        "source link",
        "SELECT body FROM store_source_links
         WHERE tenant_id = ?1 AND provider = ?2 AND account_id = ?3 AND object_kind = ?4
           AND source_id > ?5
         ORDER BY source_id LIMIT ?6",
        params![
            tenant.as_str(),
            provider.as_str(),
            account.as_str(),
            kind.as_str(),
            after,
            fetch_size(limit),
        ],
    )?;
    Ok(into_page(items, limit, |l| l.source_id.as_str().to_owned()))
}

pub(super) fn links_to(
    db: &mut Db,
    tenant: &TenantId,
    target: &LinkTarget,
) -> StoreResult<Vec<SourceLink>> {
    let (target_type, target_id) = target_columns(target);
    query_all(
        db,
        "source link",
        "SELECT body FROM store_source_links INDEXED BY store_source_links_by_target
         WHERE tenant_id = ?1 AND target_type = ?2 AND target_id = ?3
         ORDER BY provider, account_id, object_kind, source_id",
        [tenant.as_str(), target_type, target_id],
    )
}
