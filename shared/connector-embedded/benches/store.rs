//! Throughput of the embedded store on one file: `cargo bench -p connector-embedded --bench store`.
//! Prints operations per second for customer upserts with links, gets by id, finds by
//! domain and a full paged listing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use connector::model::*;
use connector::ports::*;
use connector_embedded::store::EmbeddedStore;

const CUSTOMERS: usize = 10_000;
const PAGE_SIZE: usize = 100;

fn report(what: &str, ops: usize, took: Duration) {
    let per_sec = ops as f64 / took.as_secs_f64();
    println!(
        "{what:<40} {ops:>6} ops in {:>8.1} ms  {per_sec:>10.0} ops/s",
        took.as_secs_f64() * 1000.0
    );
}

async fn run(store: &EmbeddedStore) {
    let tenant = TenantId::parse("bench-tenant").unwrap();
    let connection = ConnectionId::generate();
    let now = Timestamp::now();

    let customers: Vec<Customer> = (0..CUSTOMERS)
        .map(|i| {
            let mut c = Customer::new(tenant.clone(), format!("Company {i}"), now);
            c.domain = Some(Domain::parse(&format!("company-{i}.example.com")).unwrap());
            c
        })
        .collect();

    let start = Instant::now();
    for (i, c) in customers.iter().enumerate() {
        let link = SourceLink {
            tenant_id: tenant.clone(),
            connection_id: connection.clone(),
            provider: Provider::Hubspot,
            account_id: ProviderAccountId::parse("62515").unwrap(),
            object_kind: ObjectKind::Company,
            source_id: SourceId::parse(i.to_string()).unwrap(),
            target: LinkTarget::Customer(c.id.clone()),
            source_version: SourceVersion(1),
            content_hash: ContentHash::of(&c.name),
            source_gone: false,
            updated_at: now,
            in_step: Default::default(),
        };
        store
            .write_customer(CustomerWrite {
                customer: c,
                expected_version: 0,
                link: Some(&link),
            })
            .await
            .unwrap();
    }
    report("write_customer with link", CUSTOMERS, start.elapsed());

    let start = Instant::now();
    for c in &customers {
        let got = store.get_customer(&tenant, &c.id).await.unwrap();
        assert!(got.is_some());
    }
    report("get_customer by id", CUSTOMERS, start.elapsed());

    let start = Instant::now();
    for c in &customers {
        let domain = c.domain.as_ref().unwrap();
        let found = store
            .find_customers_by_domain(&tenant, domain)
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
    }
    report("find_customers_by_domain", CUSTOMERS, start.elapsed());

    let start = Instant::now();
    let mut listed = 0;
    let mut pages = 0;
    let mut cursor = None;
    loop {
        let page = store
            .list_customers(
                &tenant,
                ArchivedFilter::All,
                PageRequest {
                    limit: PAGE_SIZE,
                    cursor,
                },
            )
            .await
            .unwrap();
        listed += page.items.len();
        pages += 1;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, CUSTOMERS);
    let took = start.elapsed();
    report(
        &format!("list_customers ({pages} pages of {PAGE_SIZE}), items"),
        listed,
        took,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument (a filter) is ignored.
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("bench.sqlite")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("embedded store, {CUSTOMERS} customers, one SQLite file (WAL)");
    runtime.block_on(run(&store));
}
