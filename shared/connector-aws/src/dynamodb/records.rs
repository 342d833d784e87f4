//! Customers, contacts and the source links that tie them to provider records.

use aws_sdk_dynamodb::types::AttributeValue;
use connector::ports::{
    ArchivedFilter, ContactWrite, CustomerWrite, Page, PageRequest, StoreError, StoreResult,
};
use connector::{
    Contact, Customer, CustomerId, LinkTarget, ObjectKind, Provider, ProviderAccountId, SourceLink,
    SourceVersion, TenantId,
};

use super::DynamoStore;
use super::item::{self, Item, ItemBuilder};
use super::keys::{self, Key, SHARDS};
use super::query::{self, Partition};
use super::write::{Condition, Refusal, Written};

// ---- items

fn customer_item(customer: &Customer) -> StoreResult<Item> {
    let key = keys::customer(&customer.tenant_id, &customer.id);
    let archived = customer.is_archived();
    let mut builder = ItemBuilder::new(&key, keys::TYPE_CUSTOMER)
        .body(customer)?
        .number(keys::VERSION, customer.version)
        .boolean(keys::ARCHIVED, archived)
        .index(
            keys::GSI1_PK,
            keys::customers_partition(
                &customer.tenant_id,
                archived,
                keys::shard_of(customer.id.as_str()),
            ),
            keys::GSI1_SK,
            customer.id.to_string(),
        );
    if let Some(domain) = &customer.domain {
        builder = builder.index(
            keys::GSI2_PK,
            keys::customers_by_domain(&customer.tenant_id, domain),
            keys::GSI2_SK,
            customer.id.to_string(),
        );
    }
    if let Some(name) = customer.normalized_name() {
        builder = builder.index(
            keys::GSI3_PK,
            keys::customers_by_name(&customer.tenant_id, &name),
            keys::GSI3_SK,
            customer.id.to_string(),
        );
    }
    Ok(builder.build())
}

fn contact_item(contact: &Contact) -> StoreResult<Item> {
    let key = keys::contact(&contact.tenant_id, &contact.id);
    let mut builder = ItemBuilder::new(&key, keys::TYPE_CONTACT)
        .body(contact)?
        .number(keys::VERSION, contact.version)
        .boolean(keys::ARCHIVED, contact.archived.is_some());
    if let Some(customer) = &contact.customer_id {
        builder = builder.index(
            keys::GSI1_PK,
            keys::contacts_of_customer(&contact.tenant_id, customer),
            keys::GSI1_SK,
            contact.id.to_string(),
        );
    }
    Ok(builder.build())
}

fn link_key(link: &SourceLink) -> Key {
    keys::link(&link.tenant_id, &link.source_ref())
}

fn link_item(link: &SourceLink) -> StoreResult<Item> {
    Ok(ItemBuilder::new(&link_key(link), keys::TYPE_LINK)
        .body(link)?
        .number(keys::SOURCE_VERSION, link.source_version.0)
        .string(keys::CONTENT_HASH, link.content_hash.as_str())
        .index(
            keys::GSI1_PK,
            keys::links_partition(
                &link.tenant_id,
                link.provider,
                &link.account_id,
                link.object_kind,
                keys::shard_of(link.source_id.as_str()),
            ),
            keys::GSI1_SK,
            link.source_id.to_string(),
        )
        .index(
            keys::GSI2_PK,
            keys::links_to_target(&link.tenant_id, &link.target),
            keys::GSI2_SK,
            keys::link_under_target(&link.source_ref()),
        )
        .build())
}

/// The link may be written only over nothing or over a link it supersedes
/// ([`SourceLink::is_superseded_by`], as a condition).
fn superseding(link: &SourceLink) -> Condition {
    Condition {
        expression: "attribute_not_exists(#pk) OR #sv < :sv OR (#sv = :sv AND #hash <> :hash)"
            .to_owned(),
        names: vec![
            ("#pk", keys::PK),
            ("#sv", keys::SOURCE_VERSION),
            ("#hash", keys::CONTENT_HASH),
        ],
        values: vec![
            (":sv", item::n(link.source_version.0)),
            (":hash", item::s(link.content_hash.as_str())),
        ],
    }
}

// ---- versioned writes with their link

/// Writes a versioned record (customer or contact) and, in the same transaction, its
/// link. One PutItem when there is no link.
async fn write_with_link(
    store: &DynamoStore,
    entity: &'static str,
    record: Item,
    expected_version: u64,
    link: Option<&SourceLink>,
) -> StoreResult<()> {
    let condition = Condition::version_is(expected_version);
    let written = match link {
        None => store.put_item(record, Some(condition)).await?,
        Some(link) => {
            store
                .transact(vec![
                    store.put_request(record, Some(condition))?,
                    store.put_request(link_item(link)?, Some(superseding(link)))?,
                ])
                .await?
        }
    };
    let Written::Refused(refusals) = written else {
        return Ok(());
    };
    // A stale source wins over a version conflict: retrying could not help it.
    if let (Some(link), Some(Some(Refusal::Condition(stored)))) = (link, refusals.get(1)) {
        let stored = match stored {
            Some(found) => item::number::<i64>(found, keys::SOURCE_VERSION),
            None => store
                .get_item(&link_key(link))
                .await?
                .and_then(|found| item::number::<i64>(&found, keys::SOURCE_VERSION)),
        };
        return Err(StoreError::StaleSource {
            offered: link.source_version,
            stored: SourceVersion(stored.unwrap_or(link.source_version.0)),
        });
    }
    Err(StoreError::VersionConflict {
        entity,
        expected: expected_version,
    })
}

pub async fn write_customer(
    store: &DynamoStore,
    write: CustomerWrite<'_>,
) -> StoreResult<Customer> {
    let mut stored = write.customer.clone();
    stored.version = write.expected_version + 1;
    write_with_link(
        store,
        "customer",
        customer_item(&stored)?,
        write.expected_version,
        write.link,
    )
    .await?;
    Ok(stored)
}

pub async fn write_contact(store: &DynamoStore, write: ContactWrite<'_>) -> StoreResult<Contact> {
    let mut stored = write.contact.clone();
    stored.version = write.expected_version + 1;
    write_with_link(
        store,
        "contact",
        contact_item(&stored)?,
        write.expected_version,
        write.link,
    )
    .await?;
    Ok(stored)
}

// ---- customer reads

pub async fn find_customers(
    store: &DynamoStore,
    index: &'static str,
    partition: String,
) -> StoreResult<Vec<Customer>> {
    let part = Partition::gsi(index, partition);
    query::fetch_all(&store.client, store.table(), &part)
        .await?
        .iter()
        .map(item::body)
        .collect()
}

pub async fn list_customers(
    store: &DynamoStore,
    tenant: &TenantId,
    filter: ArchivedFilter,
    request: PageRequest,
) -> StoreResult<Page<Customer>> {
    let states: &[bool] = match filter {
        ArchivedFilter::Active => &[false],
        ArchivedFilter::Archived => &[true],
        ArchivedFilter::All => &[false, true],
    };
    let parts: Vec<Partition> = states
        .iter()
        .flat_map(|archived| {
            (0..SHARDS).map(move |shard| {
                Partition::gsi(
                    keys::GSI1,
                    keys::customers_partition(tenant, *archived, shard),
                )
            })
        })
        .collect();
    query::sequential_page(&store.client, store.table(), &parts, &request, item::body).await
}

pub async fn delete_customer_permanently(
    store: &DynamoStore,
    tenant: &TenantId,
    id: &CustomerId,
) -> StoreResult<()> {
    let key = keys::customer(tenant, id);
    let customer: Customer = store
        .get_body(&key)
        .await?
        .ok_or(StoreError::NotFound { entity: "customer" })?;
    if !customer.is_archived() {
        return Err(StoreError::NotArchived);
    }
    let contacts_part = Partition::gsi(keys::GSI1, keys::contacts_of_customer(tenant, id));
    let contacts: Vec<Contact> = query::fetch_all(&store.client, store.table(), &contacts_part)
        .await?
        .iter()
        .map(item::body)
        .collect::<StoreResult<_>>()?;
    let mut doomed = Vec::new();
    for contact in &contacts {
        let target = LinkTarget::Contact(contact.id.clone());
        doomed.extend(links_to(store, tenant, &target).await?.iter().map(link_key));
        doomed.push(keys::contact(tenant, &contact.id));
    }
    let target = LinkTarget::Customer(id.clone());
    doomed.extend(links_to(store, tenant, &target).await?.iter().map(link_key));
    store.delete_all(&doomed).await?;
    // The customer goes last, so a purge cut short can simply be run again; the
    // condition catches a restore that raced with the purge.
    let deleted = store
        .client
        .delete_item()
        .table_name(store.table())
        .set_key(Some(item::key_map(&key)))
        .condition_expression("#archived = :yes")
        .expression_attribute_names("#archived", keys::ARCHIVED)
        .expression_attribute_values(":yes", AttributeValue::Bool(true))
        .send()
        .await;
    match deleted {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Err(StoreError::NotArchived)
        }
        Err(e) => Err(item::backend(e)),
    }
}

// ---- contacts and links

pub async fn list_contacts_of_customer(
    store: &DynamoStore,
    tenant: &TenantId,
    customer: &CustomerId,
    request: PageRequest,
) -> StoreResult<Page<Contact>> {
    let parts = [Partition::gsi(
        keys::GSI1,
        keys::contacts_of_customer(tenant, customer),
    )];
    query::sequential_page(&store.client, store.table(), &parts, &request, item::body).await
}

pub async fn put_link(store: &DynamoStore, link: &SourceLink) -> StoreResult<()> {
    store.put_item(link_item(link)?, None).await?;
    Ok(())
}

pub async fn list_links(
    store: &DynamoStore,
    tenant: &TenantId,
    provider: Provider,
    account: &ProviderAccountId,
    kind: ObjectKind,
    request: PageRequest,
) -> StoreResult<Page<SourceLink>> {
    let parts: Vec<Partition> = (0..SHARDS)
        .map(|shard| {
            Partition::gsi(
                keys::GSI1,
                keys::links_partition(tenant, provider, account, kind, shard),
            )
        })
        .collect();
    query::sequential_page(&store.client, store.table(), &parts, &request, item::body).await
}

pub async fn links_to(
    store: &DynamoStore,
    tenant: &TenantId,
    target: &LinkTarget,
) -> StoreResult<Vec<SourceLink>> {
    let part = Partition::gsi(keys::GSI2, keys::links_to_target(tenant, target));
    query::fetch_all(&store.client, store.table(), &part)
        .await?
        .iter()
        .map(item::body)
        .collect()
}
