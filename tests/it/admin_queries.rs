//! The admin's use cases on the real embedded store: the log search the console's View log
//! runs, the held archives it lists, and a reauthorization into the wrong account.

use std::collections::BTreeSet;
use std::time::Duration;

use connector::engine::EngineSettings;
use connector::engine::admin::{AdminError, LOG_PAGES_PER_SEARCH, LogQuery};
use connector::engine::connect::Authorized;
use connector::model::*;
use connector::ports::PageRequest;
use integration_tests::bare_rig::BareRig;

/// 60 rows a second apart, newest first by index: every third `oauth_revoked`, every
/// third `rate_limited`, the rest applied; records r0..r9 in turn.
async fn sixty_rows(rig: &BareRig, connection: &Connection) -> Vec<LogEntry> {
    let now = Timestamp::now();
    let mut rows = Vec::new();
    for i in 0..60u64 {
        let failed = i % 3 != 2;
        let mut entry = LogEntry::new(
            connection.tenant_id.clone(),
            connection.id.clone(),
            Provider::Hubspot,
            if failed {
                LogStatus::Failed
            } else {
                LogStatus::Applied
            },
            now.minus(Duration::from_secs(i)),
        );
        entry.object_kind = Some(ObjectKind::Company);
        entry.record_id = Some(SourceId::parse(format!("r{}", i % 10)).unwrap());
        entry.error_code = match i % 3 {
            0 => Some(ErrorCode::OauthRevoked),
            1 => Some(ErrorCode::RateLimited),
            _ => None,
        };
        rig.store.append_log(&entry).await.unwrap();
        rows.push(entry);
    }
    rows
}

/// Every page of a search, followed by its cursors.
async fn search_all(
    rig: &BareRig,
    connection: &Connection,
    query: &LogQuery,
    limit: usize,
) -> Vec<LogEntryId> {
    let engine = rig.engine(EngineSettings::default());
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let page = engine
            .admin_log(
                &connection.tenant_id,
                &connection.id,
                query,
                PageRequest { limit, cursor },
            )
            .await
            .unwrap();
        assert!(page.items.len() <= limit);
        found.extend(page.items.into_iter().map(|e| e.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return found,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_search_by_code_or_record_pages_through_every_match_once_newest_first() {
    let rig = BareRig::new();
    let connection = rig.connected().await;
    let rows = sixty_rows(&rig, &connection).await;
    let ids = |keep: &dyn Fn(&LogEntry) -> bool| -> Vec<LogEntryId> {
        rows.iter()
            .filter(|e| keep(e))
            .map(|e| e.id.clone())
            .collect()
    };

    let revoked = LogQuery {
        code: Some(ErrorCode::OauthRevoked),
        ..LogQuery::default()
    };
    assert_eq!(
        search_all(&rig, &connection, &revoked, 4).await,
        ids(&|e| e.error_code == Some(ErrorCode::OauthRevoked))
    );

    let r3_errors = LogQuery {
        errors_only: true,
        record_id: Some("r3".into()),
        ..LogQuery::default()
    };
    assert_eq!(
        search_all(&rig, &connection, &r3_errors, 50).await,
        ids(&|e| e.record_id.as_ref().is_some_and(|r| r.as_str() == "r3") && e.is_error())
    );

    let everything = search_all(&rig, &connection, &LogQuery::default(), 7).await;
    assert_eq!(everything.len(), 60);
    assert_eq!(everything.iter().collect::<BTreeSet<_>>().len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_match_stops_the_search_after_its_page_budget_and_the_cursor_resumes_it() {
    let rig = BareRig::new();
    let connection = rig.connected().await;
    sixty_rows(&rig, &connection).await;
    let engine = rig.engine(EngineSettings::default());
    // r9 with oauth_revoked: rows 9 and 39 only. One row per store page, so the search
    // after row 9 spends its budget on rows 10..19 and hands back an empty page and a cursor.
    let query = LogQuery {
        code: Some(ErrorCode::OauthRevoked),
        record_id: Some("r9".into()),
        ..LogQuery::default()
    };
    let page = |cursor| {
        let engine = &engine;
        let (connection, query) = (&connection, &query);
        async move {
            engine
                .admin_log(
                    &connection.tenant_id,
                    &connection.id,
                    query,
                    PageRequest { limit: 1, cursor },
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(LOG_PAGES_PER_SEARCH, 10);
    let first = page(None).await;
    assert_eq!(first.items.len(), 1, "row 9 is within the first ten");
    let second = page(first.next.clone()).await;
    assert!(second.items.is_empty(), "rows 10..19 hold no match");
    assert!(
        second.next.is_some(),
        "the search was cut short, not finished"
    );
    let found = search_all(&rig, &connection, &query, 1).await;
    assert_eq!(found.len(), 2, "rows 9 and 39, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_log_and_held_archives_are_not_found() {
    let rig = BareRig::new();
    let connection = rig.connected().await;
    sixty_rows(&rig, &connection).await;
    let engine = rig.engine(EngineSettings::default());
    let stranger = TenantId::parse("tenant-b").unwrap();
    let log = engine
        .admin_log(
            &stranger,
            &connection.id,
            &LogQuery::default(),
            PageRequest::first(10),
        )
        .await;
    assert!(matches!(log, Err(AdminError::NotFound(_))), "{log:?}");
    let held = engine
        .held_archives(&stranger, &connection.id, PageRequest::first(10))
        .await;
    assert!(matches!(held, Err(AdminError::NotFound(_))), "{held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_held_archives_are_the_stopped_runs_and_none_once_the_flag_is_cleared() {
    let rig = BareRig::new();
    let mut connection = rig.connected().await;
    let engine = rig.engine(EngineSettings::default());
    let now = Timestamp::now();
    let mut run = SyncRun::start(
        connection.tenant_id.clone(),
        connection.id.clone(),
        SyncTrigger::Scheduled,
        now,
    );
    run.status = SyncRunStatus::Completed;
    run.finished_at = Some(now);
    run.checkpoint.held = 2;
    let run = rig.store.put_sync_run(&run).await.unwrap();
    let archives: Vec<PendingArchive> = ["c1", "c2"]
        .into_iter()
        .map(|id| PendingArchive {
            source_id: SourceId::parse(id).unwrap(),
            reason: ArchiveReason::SourceDeleted,
        })
        .collect();
    rig.store
        .put_pending_archives(
            &connection.tenant_id,
            &connection.id,
            &run.id,
            &archives,
            now.plus(Duration::from_secs(3600)),
        )
        .await
        .unwrap();

    let not_flagged = engine
        .held_archives(
            &connection.tenant_id,
            &connection.id,
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(not_flagged.run, None);
    assert!(not_flagged.archives.items.is_empty());

    connection.flags.archives_held = true;
    rig.store.put_connection(&connection).await.unwrap();
    let held = engine
        .held_archives(
            &connection.tenant_id,
            &connection.id,
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(held.run, Some(run.id));
    assert_eq!(held.archives.items, archives);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthorizing_into_another_portal_is_refused_and_changes_nothing() {
    let rig = BareRig::new();
    let connection = rig.connected().await;
    let engine = rig.engine(EngineSettings::default());
    let other_portal = Authorized {
        account_id: ProviderAccountId::parse("99999").unwrap(),
        scopes: vec!["crm.objects.companies.read".into()],
        credentials: SealedCredentials("other-portal".into()),
    };
    let refused = engine
        .connect(&connection.tenant_id, &connection.id, other_portal)
        .await;
    match refused {
        Err(AdminError::Conflict(why)) => {
            assert!(why.contains("62515") && why.contains("99999"), "{why}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let after = rig
        .store
        .get_connection(&connection.tenant_id, &connection.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.account_id, connection.account_id);
    assert_eq!(after.credentials, connection.credentials);
    assert_eq!(after.version, connection.version);
}
