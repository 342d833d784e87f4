//! The state store conformance suite, run once per adapter: every check in
//! `integration_tests::conformance::store` becomes `embedded::<check>` and
//! `dynamodb::<check>`.

macro_rules! store_conformance {
    ($($check:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let store = integration_tests::adapters::embedded_store();
                    integration_tests::conformance::store::$check(&*store).await;
                }
            )+
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let store = integration_tests::adapters::dynamodb_store().await;
                    integration_tests::conformance::store::$check(&store).await;
                }
            )+
        }
    };
}

store_conformance!(
    conditional_writes_check_the_stored_version,
    version_races_have_one_winner,
    an_older_source_version_never_overwrites_a_newer_one,
    a_failed_customer_write_leaves_no_link,
    archive_and_restore_round_trip,
    delete_permanently_needs_an_archived_customer_and_takes_its_links_and_contacts,
    customers_are_found_by_domain_name_and_link,
    paging_covers_every_item_exactly_once,
    pending_matches_are_single_open_and_resolve_once,
    the_log_is_newest_first_filtered_paged_and_hides_expired_rows,
    events_are_recorded_once_until_they_expire,
    a_batch_of_events_is_checked_and_recorded_together,
    one_pass_per_connection_holds_the_lease,
    oauth_state_is_taken_once_and_expires,
    sync_runs_are_versioned_and_count_every_concurrent_add,
    pending_archives_are_kept_per_run_listed_once_and_expire,
    listed_ids_are_kept_per_run_and_kind_in_chunk_order_and_expire,
    notifications_are_versioned_listed_per_tenant_and_expire_once_closed,
    conflicts_are_versioned_listed_newest_first_and_expire,
    no_read_crosses_into_another_tenant,
    connections_are_routed_by_provider_account,
    every_connection_of_every_tenant_is_listed_once,
);
