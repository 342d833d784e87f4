//! The single table's key design: attribute names, record types, key prefixes and the
//! pure functions that build every key. README.md explains which query each key serves.

use connector::{
    ConflictId, ConnectionId, ContactId, CustomerId, Domain, LinkTarget, LogEntryId,
    NormalizedName, NotificationId, ObjectKind, PendingMatchId, PendingMatchStatus, Provider,
    ProviderAccountId, SourceId, SourceRef, SyncRunId, TenantId, Timestamp,
};
use sha2::{Digest, Sha256};

// ---- attribute names
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
pub const GSI3: &str = "gsi3";
pub const GSI3_PK: &str = "gsi3pk";
pub const GSI3_SK: &str = "gsi3sk";
/// The record type of an item (one of the `TYPE_*` consts).
pub const TYPE: &str = "type";
/// The domain value as JSON: the one source of truth for everything not in a key.
pub const BODY: &str = "body";
pub const VERSION: &str = "version";
/// Epoch seconds, the table's TTL attribute (DynamoDB TTL needs seconds).
pub const EXPIRES_AT_S: &str = "expires_at_s";
/// Epoch milliseconds, what reads filter on (the port's expiry has millisecond precision).
pub const EXPIRES_AT_MS: &str = "expires_at_ms";
pub const SOURCE_VERSION: &str = "source_version";
pub const CONTENT_HASH: &str = "content_hash";
pub const ARCHIVED: &str = "archived";
pub const STATUS: &str = "status";
pub const TENANT_ID: &str = "tenant_id";
pub const CONNECTION_ID: &str = "connection_id";
pub const MATCH_ID: &str = "match_id";
pub const RUN_ID: &str = "run_id";

// ---- record types
pub const TYPE_TENANT: &str = "tenant";
pub const TYPE_CONNECTION: &str = "connection";
pub const TYPE_ROUTE: &str = "account_route";
pub const TYPE_CUSTOMER: &str = "customer";
pub const TYPE_CONTACT: &str = "contact";
pub const TYPE_LINK: &str = "source_link";
pub const TYPE_MATCH: &str = "pending_match";
pub const TYPE_MATCH_SOURCE: &str = "pending_match_source";
pub const TYPE_LOG: &str = "log_entry";
pub const TYPE_SYNC_RUN: &str = "sync_run";
pub const TYPE_EVENT: &str = "webhook_event";
pub const TYPE_LEASE: &str = "pass_lease";
pub const TYPE_OAUTH_STATE: &str = "oauth_state";
pub const TYPE_PENDING_ARCHIVE: &str = "pending_archive";
pub const TYPE_LISTED_IDS: &str = "listed_ids";
pub const TYPE_NOTIFICATION: &str = "notification";
pub const TYPE_CONFLICT: &str = "conflict";

// ---- key prefixes
const TENANT: &str = "T#";
const CONN: &str = "CONN#";
const ALL_CONNS: &str = "CONNS#";
const ROUTE: &str = "ROUTE#";
const CUST: &str = "CUST#";
const CUSTS: &str = "CUSTS#";
const DOMAIN: &str = "DOMAIN#";
const NAME: &str = "NAME#";
const CONTACT: &str = "CONTACT#";
const CONTACTS: &str = "#CONTACTS";
const LINK: &str = "LINK#";
const LINKS: &str = "LINKS#";
const TARGET: &str = "TARGET#";
const MATCH: &str = "MATCH#";
const MATCHES: &str = "MATCHES#";
const MATCH_SOURCE: &str = "MATCHSRC#";
const LOG: &str = "LOG#";
const LOG_ERRORS: &str = "LOGERR#";
const RUN: &str = "RUN#";
const RUNS: &str = "RUNS";
const EVENT: &str = "EVENT#";
const LEASE: &str = "LEASE";
const OAUTH: &str = "OAUTH#";
const NOTES: &str = "NOTES";
const CONFLICT: &str = "CONFLICT#";
const CONFLICTS: &str = "CONFLICTS";
/// Sort-key prefix of a tenant's notifications, in their own partition.
pub const NOTE: &str = "NOTE#";
/// Sort-key prefix of a run's pending archives, in the run's own partition.
pub const ARCHIVE: &str = "ARCHIVE#";

// ---- sort keys of items that are alone in their partition
pub const SK_TENANT: &str = "TENANT";
pub const SK_ROUTE: &str = "ROUTE";
pub const SK_CUSTOMER: &str = "CUSTOMER";
pub const SK_CONTACT: &str = "CONTACT";
pub const SK_LINK: &str = "LINK";
pub const SK_MATCH: &str = "MATCH";
pub const SK_MATCH_SOURCE: &str = "MATCHSRC";
pub const SK_LOG: &str = "LOG";
pub const SK_CONFLICT: &str = "CONFLICT";
pub const SK_RUN: &str = "RUN";
pub const SK_EVENT: &str = "EVENT";
pub const SK_LEASE: &str = "LEASE";
pub const SK_OAUTH: &str = "OAUTH";
/// Connections share their tenant's partition, one sort key each.
pub const SK_CONNECTION_PREFIX: &str = CONN;

/// How many partitions each per-tenant (or per-connection) listing is spread over, so an
/// initial sync's writes never pile onto one partition key (README: "No hot partition").
pub const SHARDS: u32 = 16;

/// Free-form values (normalised names, dedupe keys, OAuth states) longer than this are
/// replaced in keys by their SHA-256, keeping keys far below DynamoDB's 1,024/2,048-byte limits.
const MAX_RAW_KEY_VALUE: usize = 256;

/// The table key of an item: partition and sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: &str) -> Self {
        Self {
            pk,
            sk: sk.to_owned(),
        }
    }
}

/// Stable shard of an id: FNV-1a 64 (std's hasher is not stable across releases).
pub fn shard_of(id: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(SHARDS)) as u32
}

/// A timestamp as 16 hex digits that sort like the numbers (sign bit flipped, so even
/// instants before 1970 order correctly).
pub fn sortable_millis(t: Timestamp) -> String {
    format!("{:016x}", (t.as_millis() as u64) ^ (1 << 63))
}

fn bounded(value: &str) -> String {
    if value.len() <= MAX_RAW_KEY_VALUE {
        value.to_owned()
    } else {
        // Upper case cannot appear in the raw forms (normalised names are lower case, and
        // short raw values keep their own spelling), so `H:` + hash never collides with
        // a raw value of the same prefix in practice; the length check separates them anyway.
        format!("H:{}", hex::encode(Sha256::digest(value.as_bytes())))
    }
}

fn tenant_prefix(tenant: &TenantId) -> String {
    format!("{TENANT}{tenant}#")
}

// ---- tenants and connections

pub fn tenant(tenant: &TenantId) -> Key {
    Key::new(format!("{TENANT}{tenant}"), SK_TENANT)
}

pub fn connection(tenant: &TenantId, id: &ConnectionId) -> Key {
    Key {
        pk: format!("{TENANT}{tenant}"),
        sk: format!("{CONN}{id}"),
    }
}

/// GSI1 partition of the nightly fan-out's listing of every connection.
pub fn all_connections_partition(shard: u32) -> String {
    format!("{ALL_CONNS}{shard:x}")
}

pub fn all_connections_sort(tenant: &TenantId, id: &ConnectionId) -> String {
    format!("{TENANT}{tenant}#{CONN}{id}")
}

/// One tenant's route for a provider account; the account's partition holds every
/// tenant's, so one tenant connecting an account never takes another's.
pub fn account_route(provider: Provider, account: &ProviderAccountId, tenant: &TenantId) -> Key {
    Key {
        pk: account_routes(provider, account),
        sk: format!("{SK_ROUTE}#{tenant}"),
    }
}

/// The partition of every tenant's route for one provider account.
pub fn account_routes(provider: Provider, account: &ProviderAccountId) -> String {
    format!("{ROUTE}{provider}#{account}")
}

// ---- customers

pub fn customer(tenant: &TenantId, id: &CustomerId) -> Key {
    Key::new(format!("{}{CUST}{id}", tenant_prefix(tenant)), SK_CUSTOMER)
}

/// GSI1 partition listing a tenant's customers: archived ones apart, each state in [`SHARDS`] shards.
pub fn customers_partition(tenant: &TenantId, archived: bool, shard: u32) -> String {
    let state = if archived { "archived" } else { "active" };
    format!("{}{CUSTS}{state}#{shard:x}", tenant_prefix(tenant))
}

/// GSI2 partition: a tenant's customers with one domain.
pub fn customers_by_domain(tenant: &TenantId, domain: &Domain) -> String {
    format!("{}{DOMAIN}{domain}", tenant_prefix(tenant))
}

/// GSI3 partition: a tenant's customers with one normalised name.
pub fn customers_by_name(tenant: &TenantId, name: &NormalizedName) -> String {
    format!("{}{NAME}{}", tenant_prefix(tenant), bounded(name.as_str()))
}

// ---- contacts

pub fn contact(tenant: &TenantId, id: &ContactId) -> Key {
    Key::new(
        format!("{}{CONTACT}{id}", tenant_prefix(tenant)),
        SK_CONTACT,
    )
}

/// GSI1 partition: the contacts of one customer.
pub fn contacts_of_customer(tenant: &TenantId, customer: &CustomerId) -> String {
    format!("{}{CUST}{customer}{CONTACTS}", tenant_prefix(tenant))
}

// ---- source links

/// A link is named by its provider account, never its connection (see `SourceRef`).
pub fn link(tenant: &TenantId, source: &SourceRef) -> Key {
    Key::new(
        format!(
            "{}{LINK}{}#{}#{}#{}",
            tenant_prefix(tenant),
            source.provider,
            source.account,
            source.kind,
            source.source_id
        ),
        SK_LINK,
    )
}

/// GSI1 partition: one shard of a provider account's links of one object kind.
pub fn links_partition(
    tenant: &TenantId,
    provider: Provider,
    account: &ProviderAccountId,
    kind: ObjectKind,
    shard: u32,
) -> String {
    format!(
        "{}{LINKS}{provider}#{account}#{kind}#{shard:x}",
        tenant_prefix(tenant)
    )
}

/// GSI2 partition: the links pointing at one customer or contact.
pub fn links_to_target(tenant: &TenantId, target: &LinkTarget) -> String {
    let (kind, id) = match target {
        LinkTarget::Customer(id) => ("customer", id.as_str()),
        LinkTarget::Contact(id) => ("contact", id.as_str()),
    };
    format!("{}{TARGET}{kind}#{id}", tenant_prefix(tenant))
}

/// GSI2 sort key of a link under its target: unique per link.
pub fn link_under_target(source: &SourceRef) -> String {
    format!(
        "{}#{}#{}#{}",
        source.provider, source.account, source.kind, source.source_id
    )
}

// ---- pending matches

pub fn pending_match(tenant: &TenantId, id: &PendingMatchId) -> Key {
    Key::new(format!("{}{MATCH}{id}", tenant_prefix(tenant)), SK_MATCH)
}

/// The per-source-record item that makes "one open match per source record" a
/// conditional write and finds the match raised for a record.
pub fn pending_match_source(
    tenant: &TenantId,
    provider: Provider,
    kind: ObjectKind,
    source: &SourceId,
) -> Key {
    Key::new(
        format!(
            "{}{MATCH_SOURCE}{provider}#{kind}#{source}",
            tenant_prefix(tenant)
        ),
        SK_MATCH_SOURCE,
    )
}

pub fn match_status_name(status: PendingMatchStatus) -> &'static str {
    match status {
        PendingMatchStatus::Open => "open",
        PendingMatchStatus::Resolved => "resolved",
    }
}

/// GSI1 partition: one shard of a tenant's matches in one status.
pub fn matches_partition(tenant: &TenantId, status: PendingMatchStatus, shard: u32) -> String {
    format!(
        "{}{MATCHES}{}#{shard:x}",
        tenant_prefix(tenant),
        match_status_name(status)
    )
}

/// Sort key that orders by creation time, the id breaking ties.
pub fn time_ordered(at: Timestamp, id: &str) -> String {
    format!("{}#{id}", sortable_millis(at))
}

// ---- sync log

pub fn log_entry(tenant: &TenantId, id: &LogEntryId) -> Key {
    Key::new(format!("{}{LOG}{id}", tenant_prefix(tenant)), SK_LOG)
}

/// GSI1 partition: one shard of a connection's log rows.
pub fn log_partition(tenant: &TenantId, connection: &ConnectionId, shard: u32) -> String {
    format!("{}{CONN}{connection}#{LOG}{shard:x}", tenant_prefix(tenant))
}

/// GSI2 partition: one shard of a connection's error rows (a sparse index: only errors).
pub fn log_errors_partition(tenant: &TenantId, connection: &ConnectionId, shard: u32) -> String {
    format!(
        "{}{CONN}{connection}#{LOG_ERRORS}{shard:x}",
        tenant_prefix(tenant)
    )
}

// ---- sync runs

pub fn sync_run(tenant: &TenantId, connection: &ConnectionId, id: &SyncRunId) -> Key {
    Key::new(
        format!("{}{CONN}{connection}#{RUN}{id}", tenant_prefix(tenant)),
        SK_RUN,
    )
}

/// A company the run will archive if the guard allows: in the run's partition, one sort
/// key per source id, so the run reads them back in order.
pub fn pending_archive(
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    source: &SourceId,
) -> Key {
    Key {
        pk: sync_run(tenant, connection, run).pk,
        sk: format!("{ARCHIVE}{source}"),
    }
}

/// Sort-key prefix of a run's chunks of what its listing of `kind` saw, in the run's
/// own partition.
pub fn listed_ids_prefix(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Company => "LISTED#company#",
        ObjectKind::Contact => "LISTED#contact#",
        ObjectKind::BillingCustomer => "LISTED#billing_customer#",
        ObjectKind::Subscription => "LISTED#subscription#",
    }
}

/// One chunk of what a run's listing of `kind` saw; chunk numbers sort in order.
pub fn listed_ids(
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    kind: ObjectKind,
    chunk: u32,
) -> Key {
    Key {
        pk: sync_run(tenant, connection, run).pk,
        sk: format!("{}{chunk:08}", listed_ids_prefix(kind)),
    }
}

/// One notification: a partition per tenant (a feed is small: closed ones expire), sorted
/// by connection, kind and incident.
pub fn notification(tenant: &TenantId, id: &NotificationId) -> Key {
    Key {
        pk: notifications_partition(tenant),
        sk: format!("{NOTE}{}#{}#{:010}", id.connection_id, id.kind, id.incident),
    }
}

pub fn notifications_partition(tenant: &TenantId) -> String {
    format!("{}{NOTES}", tenant_prefix(tenant))
}

/// One conflict of the audit, alone in its partition.
pub fn conflict(tenant: &TenantId, id: &ConflictId) -> Key {
    Key::new(
        format!("{}{CONFLICT}{id}", tenant_prefix(tenant)),
        SK_CONFLICT,
    )
}

/// GSI1 partition: a connection's conflicts, sorted by time.
pub fn conflicts_partition(tenant: &TenantId, connection: &ConnectionId) -> String {
    format!("{}{CONN}{connection}#{CONFLICTS}", tenant_prefix(tenant))
}

/// GSI1 partition: a connection's runs.
pub fn sync_runs_partition(tenant: &TenantId, connection: &ConnectionId) -> String {
    format!("{}{CONN}{connection}#{RUNS}", tenant_prefix(tenant))
}

// ---- expiring singletons

/// The lease that lets one full pass of a connection run at a time.
pub fn pass_lease(tenant: &TenantId, connection: &ConnectionId) -> Key {
    Key::new(
        format!("{}{CONN}{connection}#{LEASE}", tenant_prefix(tenant)),
        SK_LEASE,
    )
}

pub fn webhook_event(key: &str) -> Key {
    Key::new(format!("{EVENT}{}", bounded(key)), SK_EVENT)
}

pub fn oauth_state(state: &str) -> Key {
    Key::new(format!("{OAUTH}{}", bounded(state)), SK_OAUTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_id(raw: &str) -> TenantId {
        TenantId::parse(raw).expect("valid tenant id")
    }

    #[test]
    fn keys_carry_the_tenant_and_the_id() {
        let t = tenant_id("acme");
        let c = CustomerId::parse("0190").expect("valid");
        assert_eq!(
            customer(&t, &c),
            Key {
                pk: "T#acme#CUST#0190".into(),
                sk: "CUSTOMER".into()
            }
        );
        let source = SourceRef {
            provider: Provider::Hubspot,
            account: ProviderAccountId::parse("62515").expect("valid"),
            kind: ObjectKind::Company,
            source_id: SourceId::parse("512").expect("valid"),
        };
        assert_eq!(
            link(&t, &source).pk,
            "T#acme#LINK#hubspot#62515#company#512"
        );
        assert_eq!(tenant(&t).pk, "T#acme");
        assert_eq!(
            connection(&t, &ConnectionId::parse("c1").expect("valid")).sk,
            "CONN#c1"
        );
    }

    #[test]
    fn one_tenant_prefix_never_prefixes_another_tenants_keys() {
        // "T#ac#" must not prefix "T#acme#...": the separator ends the id.
        let ac = tenant_prefix(&tenant_id("ac"));
        let acme_customer = customer(&tenant_id("acme"), &CustomerId::generate());
        assert!(!acme_customer.pk.starts_with(&ac));
        assert!(
            acme_customer
                .pk
                .starts_with(&tenant_prefix(&tenant_id("acme")))
        );
    }

    #[test]
    fn shards_are_stable_and_spread_ids_evenly() {
        assert_eq!(shard_of("cus_123"), shard_of("cus_123"));
        let mut counts = [0u32; SHARDS as usize];
        for _ in 0..16_000 {
            let id = CustomerId::generate();
            counts[shard_of(id.as_str()) as usize] += 1;
        }
        // 1,000 expected per shard; a fair hash stays well inside +-25%.
        for (shard, count) in counts.iter().enumerate() {
            assert!((750..=1250).contains(count), "shard {shard} got {count}");
        }
    }

    #[test]
    fn sortable_millis_orders_like_the_instants() {
        let times = [-5_000, -1, 0, 1, 999, 1_795_399_200_123, i64::MAX];
        for pair in times.windows(2) {
            let a = sortable_millis(Timestamp::from_millis(pair[0]));
            let b = sortable_millis(Timestamp::from_millis(pair[1]));
            assert!(a < b, "{} should sort before {}", pair[0], pair[1]);
            assert_eq!(a.len(), 16);
        }
    }

    #[test]
    fn long_free_form_values_are_hashed_in_keys() {
        let short = webhook_event("evt_1");
        assert_eq!(short.pk, "EVENT#evt_1");
        let long = webhook_event(&"x".repeat(1000));
        assert_eq!(long.pk.len(), "EVENT#H:".len() + 64);
        assert_ne!(long, webhook_event(&"x".repeat(1001)));
    }
}
