//! [`HubSpotProvider`]: CRM reads on behalf of one connection, and the engine's
//! [`SourceProvider`] over them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use connector::crypto::TokenCipher;
use connector::ports::Store;
use connector::provider::{
    Fetched, PropertySchema, ProviderError, ProviderResult, SourcePage, SourceProvider,
    SourceRecord,
};
use connector::rate_limit::RateLimiter;
use connector::{
    CompanyFilter, Connection, ConnectionId, ErrorCode, FilterChoice, FilterChoices, ObjectKind,
    PipelineChoice, Provider, SourceId, SourceVersion, SyncDirection, Timestamp,
};
use serde_json::json;
use tokio::time::Instant;

use crate::config::HubSpotConfig;
use crate::error;
use crate::http::{Api, Budget, Call, ErrorStyle, Reply, is_auth_error};
use crate::oauth::StoredTokens;
use crate::wire::{
    AssociatedObject, AssociationBatchResponse, AssociationPage, BatchReadResponse, CrmObject,
    Filter, FilterGroup, ListSearchPage, MembershipPage, ObjectPage, OwnerPage, Paging,
    PipelineList, PropertyList, PropertyWithOptions, RecordMemberships, SearchRequest, Sort,
    id_text,
};

/// Records per list page and per batch read (HubSpot's maximum).
const PAGE_SIZE: usize = 100;
const HISTORY_PAGE_SIZE: usize = 50;
/// Search's maximum page.
const SEARCH_PAGE_SIZE: u32 = 200;
/// Ids per v4 association batch read.
const ASSOCIATION_BATCH: usize = 1000;
/// List memberships per page (HubSpot's maximum).
const MEMBERSHIP_PAGE: u32 = 250;
/// Lists per search page (HubSpot's maximum).
const LIST_SEARCH_PAGE: u32 = 500;
/// Up to this many ids, list membership is asked per record instead of reading the list.
const PER_RECORD_MEMBERSHIP_MAX: usize = 5;

pub const MODIFIED_PROPERTY: &str = "hs_lastmodifieddate";
pub const MERGED_IDS_PROPERTY: &str = "hs_merged_object_ids";
pub const LIFECYCLE_PROPERTY: &str = "lifecyclestage";
pub const PIPELINE_PROPERTY: &str = "hs_pipeline";
pub const PIPELINE_STAGE_PROPERTY: &str = "hs_pipeline_stage";
/// v4 association type: contact -> company, primary.
const PRIMARY_CONTACT_TO_COMPANY: i64 = 1;
const PRIMARY_CONTACT_TO_COMPANY_LABEL: &str = "contact_to_company";
const COMPANIES_OBJECT_TYPE_ID: &str = "0-2";

/// A filter list's id as it goes into a URL path: ILS ids are numbers, so nothing else
/// can reach the path.
pub(crate) fn list_path_id(list_id: &str) -> ProviderResult<&str> {
    if !list_id.is_empty() && list_id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(list_id)
    } else {
        Err(ProviderError::new(
            ErrorCode::FilterInvalid,
            format!("the company filter's list {list_id:?} is not a list id: pick another list"),
        ))
    }
}

fn list_gone(list_id: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::FilterInvalid,
        format!(
            "the company filter's list {list_id} no longer exists in HubSpot: pick another list"
        ),
    )
}

/// A mutex whose guard survives a panic elsewhere (the data is plain maps).
#[derive(Default)]
pub(crate) struct Shared<T>(Mutex<T>);

impl<T> Shared<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type ListKey = (ConnectionId, String);
/// A list's membership and when it was read.
type CachedMembers = (Instant, Arc<BTreeSet<SourceId>>);

pub(crate) struct Inner {
    pub(crate) config: HubSpotConfig,
    pub(crate) api: Api,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cipher: TokenCipher,
    pub(crate) refresh_locks: Shared<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>,
    /// Tokens this process refreshed, for callers still holding the older connection.
    pub(crate) tokens: Shared<HashMap<ConnectionId, StoredTokens>>,
    lists: Shared<HashMap<ListKey, CachedMembers>>,
    /// The company key properties known to exist, per portal.
    pub(crate) key_properties: Shared<HashSet<(String, String)>>,
}

/// The HubSpot client for every connection of this process. Cheap to clone: clones share
/// the HTTP pool, the rate limiters and the refresh locks.
#[derive(Clone)]
pub struct HubSpotProvider {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for HubSpotProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSpotProvider")
            .field("api_base", &self.inner.config.api_base)
            .field("client_id", &self.inner.config.client_id)
            .finish_non_exhaustive()
    }
}

/// A HubSpot owner (`hubspot_owner_id` on records is its `id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub archived: bool,
}

pub(crate) fn plural(kind: ObjectKind) -> ProviderResult<&'static str> {
    match kind {
        ObjectKind::Company => Ok("companies"),
        ObjectKind::Contact => Ok("contacts"),
        other => Err(error::internal(format!("HubSpot has no {other} records"))),
    }
}

pub(crate) fn account_key(connection: &Connection) -> &str {
    connection
        .account_id
        .as_ref()
        .map_or(connection.id.as_str(), |a| a.as_str())
}

pub(crate) fn parse_source_id(raw: &str) -> ProviderResult<SourceId> {
    SourceId::parse(raw).map_err(|e| error::internal(format!("HubSpot sent an unusable id: {e}")))
}

/// A datetime property: ISO-8601, or epoch milliseconds as text.
pub(crate) fn parse_time(raw: &str) -> Option<Timestamp> {
    let raw = raw.trim();
    raw.parse::<i64>()
        .ok()
        .map(Timestamp::from_millis)
        .or_else(|| Timestamp::parse_rfc3339(raw).ok())
}

/// The properties whose write times a read asks for: a two-way connection resolves its
/// contacts field by field, by when each side wrote the field.
fn history_of<'a>(
    connection: &Connection,
    kind: ObjectKind,
    properties: &[&'a str],
) -> Vec<&'a str> {
    if kind == ObjectKind::Contact && connection.direction == SyncDirection::TwoWay {
        // Not the properties every read adds for itself (`requested_properties`).
        properties
            .iter()
            .copied()
            .filter(|p| ![MODIFIED_PROPERTY, MERGED_IDS_PROPERTY].contains(p))
            .collect()
    } else {
        Vec::new()
    }
}

/// The properties to ask for: the engine's, plus what every record needs.
fn requested_properties<'a>(properties: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = properties.to_vec();
    for p in [MODIFIED_PROPERTY, MERGED_IDS_PROPERTY].iter().chain(extra) {
        if !all.contains(p) {
            all.push(p);
        }
    }
    all
}

fn to_record(
    kind: ObjectKind,
    object: CrmObject,
    wanted: &[&str],
    associated_companies: Vec<SourceId>,
) -> ProviderResult<SourceRecord> {
    let id = parse_source_id(&object.id)?;
    let modified = object
        .updated_at
        .as_deref()
        .and_then(parse_time)
        .or_else(|| {
            object
                .properties
                .get(MODIFIED_PROPERTY)
                .and_then(|v| v.as_deref())
                .and_then(parse_time)
        })
        .ok_or_else(|| error::internal(format!("HubSpot record {id} has no modification time")))?;
    let merged_from = object
        .properties
        .get(MERGED_IDS_PROPERTY)
        .and_then(|v| v.as_deref())
        .map(|raw| {
            raw.split(';')
                .filter_map(|s| SourceId::parse(s.trim()).ok())
                .filter(|m| *m != id)
                .collect()
        })
        .unwrap_or_default();
    let properties = if wanted.is_empty() {
        object.properties
    } else {
        wanted
            .iter()
            .map(|name| {
                let value = object.properties.get(*name).cloned().flatten();
                ((*name).to_owned(), value)
            })
            .collect()
    };
    let property_times = object
        .properties_with_history
        .iter()
        .filter_map(|(name, writes)| {
            let last = writes
                .iter()
                .filter_map(|w| parse_time(&w.timestamp))
                .max()?;
            Some((name.clone(), last))
        })
        .collect();
    Ok(SourceRecord {
        kind,
        id,
        version: SourceVersion(modified.as_millis()),
        archived: object.archived,
        properties,
        associated_companies,
        merged_from,
        property_times,
    })
}

/// Primary first, then by id as a number.
fn order_companies(to: &[AssociatedObject]) -> Vec<SourceId> {
    primary_first(to.iter().filter_map(|a| {
        let id = id_text(&a.to_object_id)?;
        let primary = a.association_types.iter().any(|t| {
            t.type_id == Some(PRIMARY_CONTACT_TO_COMPANY)
                || t.label
                    .as_deref()
                    .is_some_and(|l| l.eq_ignore_ascii_case("primary"))
        });
        Some((id, primary))
    }))
}

/// A contact's companies from its list row's inline block, primary first (v3 names the
/// primary `contact_to_company`, the others `contact_to_company_unlabeled`); `None` when
/// the block has more pages than the row carries.
fn inline_companies(object: &CrmObject) -> Option<Vec<SourceId>> {
    let Some(block) = object.associations.get("companies") else {
        return Some(Vec::new());
    };
    if Paging::next_after(block.paging.as_ref()).is_some() {
        return None;
    }
    Some(primary_first(block.results.iter().filter_map(|a| {
        Some((id_text(&a.id)?, a.label == PRIMARY_CONTACT_TO_COMPANY_LABEL))
    })))
}

/// Company ids, each once, primary first, then by id as a number.
fn primary_first(associated: impl Iterator<Item = (String, bool)>) -> Vec<SourceId> {
    let mut seen: BTreeMap<String, bool> = BTreeMap::new();
    for (id, primary) in associated {
        *seen.entry(id).or_default() |= primary;
    }
    let mut ordered: Vec<(bool, u64, String)> = seen
        .into_iter()
        .map(|(id, primary)| (!primary, id.parse().unwrap_or(u64::MAX), id))
        .collect();
    ordered.sort();
    ordered
        .into_iter()
        .filter_map(|(_, _, id)| SourceId::parse(id).ok())
        .collect()
}

impl HubSpotProvider {
    /// Fails only if the HTTP client cannot be built (no TLS backend): a client built
    /// without its settings would be worse than none.
    pub fn new(
        config: HubSpotConfig,
        store: Arc<dyn Store>,
        cipher: TokenCipher,
    ) -> ProviderResult<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("connector-hubspot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| error::internal(format!("cannot build the HTTP client: {e}")))?;
        let api = Api {
            http,
            base: config.api_base.trim_end_matches('/').to_owned(),
            limiter: RateLimiter::new(config.rate_limit),
            search_limiter: RateLimiter::new(config.search_rate_limit),
            retry: config.retry,
            timeout: config.request_timeout,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                api,
                store,
                cipher,
                refresh_locks: Shared::default(),
                tokens: Shared::default(),
                lists: Shared::default(),
                key_properties: Shared::default(),
            }),
        })
    }

    pub fn config(&self) -> &HubSpotConfig {
        &self.inner.config
    }

    /// One authenticated call: refreshes the token when due, and once more on a 401;
    /// a second 401 with a fresh token means the grant is gone.
    pub(crate) async fn call(
        &self,
        connection: &Connection,
        budget: Budget,
        call: &Call,
    ) -> ProviderResult<Reply> {
        let key = account_key(connection);
        let token = self.access_token(connection).await?;
        let api = &self.inner.api;
        match api
            .send(key, budget, Some(&token), call, ErrorStyle::Api)
            .await
        {
            Err(e) if is_auth_error(&e) => {
                tracing::info!(connection_id = %connection.id, status = e.status, "HubSpot refused the access token, refreshing");
                let token = self.refresh(connection, &token).await?;
                api.send(key, budget, Some(&token), call, ErrorStyle::Api)
                    .await
                    .map_err(|mut e| {
                        if is_auth_error(&e) {
                            e.code = ErrorCode::OauthRevoked;
                            e.message =
                                format!("a freshly refreshed token was refused: {}", e.message);
                        }
                        e
                    })
            }
            other => other,
        }
    }

    async fn batch_read(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        ids: &[&str],
        properties: &[&str],
        archived: bool,
    ) -> ProviderResult<Vec<CrmObject>> {
        let call = Call::post_json(
            format!("/crm/v3/objects/{}/batch/read", plural(kind)?),
            json!({
                "properties": properties,
                "propertiesWithHistory": history_of(connection, kind, properties),
                "inputs": ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>(),
            }),
        )
        .query("archived", archived.to_string());
        match self.call(connection, Budget::General, &call).await {
            Ok(reply) => Ok(reply.json::<BatchReadResponse>()?.results),
            // Some portals answer a batch of only unknown ids with 404.
            Err(e) if e.code == ErrorCode::SourceDeleted => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// One record by id; `None` if HubSpot has no such record. A merged-away id answers
    /// with the surviving record (another id).
    async fn get_one(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        id: &str,
        properties: &[&str],
    ) -> ProviderResult<Option<CrmObject>> {
        let mut call = Call::get(format!("/crm/v3/objects/{}/{}", plural(kind)?, id))
            .query("properties", properties.join(","));
        let history = history_of(connection, kind, properties);
        if !history.is_empty() {
            call = call.query("propertiesWithHistory", history.join(","));
        }
        match self.call(connection, Budget::General, &call).await {
            Ok(reply) => Ok(Some(reply.json()?)),
            Err(e) if e.code == ErrorCode::SourceDeleted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The companies of each contact, primary first.
    async fn companies_of_contacts(
        &self,
        connection: &Connection,
        contacts: &[&str],
    ) -> ProviderResult<HashMap<String, Vec<SourceId>>> {
        let mut out = HashMap::new();
        for chunk in contacts.chunks(ASSOCIATION_BATCH) {
            let call = Call::post_json(
                "/crm/v4/associations/contacts/companies/batch/read",
                json!({ "inputs": chunk.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>() }),
            );
            let response: AssociationBatchResponse =
                match self.call(connection, Budget::General, &call).await {
                    Ok(reply) => reply.json()?,
                    // None of them has any association.
                    Err(e) if e.code == ErrorCode::SourceDeleted => continue,
                    Err(e) => return Err(e),
                };
            for result in response.results {
                let Some(from) = id_text(&result.from.id) else {
                    continue;
                };
                let mut to = result.to;
                if let Some(after) = Paging::next_after(result.paging.as_ref()) {
                    to.extend(
                        self.associated(connection, "contacts", &from, "companies", Some(after))
                            .await?,
                    );
                }
                out.insert(from, order_companies(&to));
            }
        }
        Ok(out)
    }

    /// Every association of one record to another object type (v4), from `after`.
    async fn associated(
        &self,
        connection: &Connection,
        from_type: &str,
        from_id: &str,
        to_type: &str,
        mut after: Option<String>,
    ) -> ProviderResult<Vec<AssociatedObject>> {
        let mut all = Vec::new();
        loop {
            let mut call = Call::get(format!(
                "/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}"
            ))
            .query("limit", "500");
            if let Some(after) = &after {
                call = call.query("after", after.clone());
            }
            let page: AssociationPage = self
                .call(connection, Budget::General, &call)
                .await?
                .json()?;
            all.extend(page.results);
            after = Paging::next_after(page.paging.as_ref());
            if after.is_none() {
                return Ok(all);
            }
        }
    }

    /// The contacts associated with a company.
    pub async fn associations(
        &self,
        connection: &Connection,
        company: &SourceId,
    ) -> ProviderResult<Vec<SourceId>> {
        let to = self
            .associated(connection, "companies", company.as_str(), "contacts", None)
            .await?;
        let ids: BTreeSet<String> = to.iter().filter_map(|a| id_text(&a.to_object_id)).collect();
        ids.iter().map(|id| parse_source_id(id)).collect()
    }

    /// Ids of the records of `kind` modified in `[since, until)`, through search.
    ///
    /// Search stops at `search_result_cap` results per query, and many records can share
    /// one modification time, so instead of offset paging alone this pages by ascending
    /// `hs_object_id` and restarts the query past the last id seen before the cap.
    pub async fn modified_since(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        since: Timestamp,
        until: Timestamp,
    ) -> ProviderResult<Vec<SourceId>> {
        let path = format!("/crm/v3/objects/{}/search", plural(kind)?);
        let cap = u64::from(self.inner.config.search_result_cap.max(1));
        let limit = SEARCH_PAGE_SIZE.min(self.inner.config.search_result_cap.max(1));
        let mut ids = Vec::new();
        let mut seen = BTreeSet::new();
        let mut past_id: Option<String> = None;
        let mut offset: u64 = 0;
        loop {
            let mut filters = vec![
                Filter {
                    property_name: MODIFIED_PROPERTY.to_owned(),
                    operator: "GTE",
                    value: since.as_millis().to_string(),
                },
                Filter {
                    property_name: MODIFIED_PROPERTY.to_owned(),
                    operator: "LT",
                    value: until.as_millis().to_string(),
                },
            ];
            if let Some(past) = &past_id {
                filters.push(Filter {
                    property_name: "hs_object_id".to_owned(),
                    operator: "GT",
                    value: past.clone(),
                });
            }
            let request = SearchRequest {
                filter_groups: vec![FilterGroup { filters }],
                sorts: vec![Sort {
                    property_name: "hs_object_id",
                    direction: "ASCENDING",
                }],
                properties: vec!["hs_object_id"],
                limit,
                after: offset.to_string(),
            };
            let body =
                serde_json::to_value(&request).map_err(|e| error::internal(e.to_string()))?;
            let page: ObjectPage = self
                .call(
                    connection,
                    Budget::Search,
                    &Call::post_json(path.clone(), body),
                )
                .await?
                .json()?;
            let last = page.results.last().map(|o| o.id.clone());
            for object in page.results {
                if seen.insert(object.id.clone()) {
                    ids.push(parse_source_id(&object.id)?);
                }
            }
            let Some(next) = Paging::next_after(page.paging.as_ref()) else {
                return Ok(ids);
            };
            let next: u64 = next.parse().map_err(|_| {
                error::internal(format!("search paging offset {next:?} is not a number"))
            })?;
            if next + u64::from(limit) > cap {
                // The next page would cross the cap: start a new query after the last id.
                match last {
                    Some(last) => past_id = Some(last),
                    None => return Ok(ids),
                }
                offset = 0;
            } else {
                offset = next;
            }
        }
    }

    /// The portal's owners (active ones), for mapping `hubspot_owner_id`.
    pub async fn owners(&self, connection: &Connection) -> ProviderResult<Vec<Owner>> {
        let mut owners = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut call = Call::get("/crm/v3/owners").query("limit", "100");
            if let Some(after) = &after {
                call = call.query("after", after.clone());
            }
            let page: OwnerPage = self
                .call(connection, Budget::General, &call)
                .await?
                .json()?;
            owners.extend(page.results.into_iter().filter_map(|o| {
                Some(Owner {
                    id: id_text(&o.id)?,
                    email: o.email,
                    first_name: o.first_name,
                    last_name: o.last_name,
                    archived: o.archived,
                })
            }));
            after = Paging::next_after(page.paging.as_ref());
            if after.is_none() {
                return Ok(owners);
            }
        }
    }

    /// Company lists, lifecycle stages and company pipelines, for the company filter.
    pub async fn company_filter_choices(
        &self,
        connection: &Connection,
    ) -> ProviderResult<FilterChoices> {
        let mut lists = Vec::new();
        let mut offset = 0u64;
        loop {
            let body = json!({
                "objectTypeId": COMPANIES_OBJECT_TYPE_ID,
                "count": LIST_SEARCH_PAGE,
                "offset": offset,
            });
            let page: ListSearchPage = self
                .call(
                    connection,
                    Budget::General,
                    &Call::post_json("/crm/v3/lists/search", body),
                )
                .await?
                .json()?;
            lists.extend(page.lists.into_iter().filter_map(|l| {
                let companies = l.object_type_id.as_deref() == Some(COMPANIES_OBJECT_TYPE_ID);
                let id = id_text(&l.list_id).filter(|_| companies)?;
                Some(FilterChoice { id, label: l.name })
            }));
            match page.offset {
                Some(next) if page.has_more && next > offset => offset = next,
                _ => break,
            }
        }
        let stages: PropertyWithOptions = self
            .call(
                connection,
                Budget::General,
                &Call::get(format!("/crm/v3/properties/companies/{LIFECYCLE_PROPERTY}")),
            )
            .await?
            .json()?;
        let pipelines: PipelineList = self
            .call(
                connection,
                Budget::General,
                &Call::get("/crm/v3/pipelines/companies"),
            )
            .await?
            .json()?;
        Ok(FilterChoices {
            lists,
            lifecycle_stages: stages
                .options
                .into_iter()
                .filter(|o| !o.hidden)
                .map(|o| FilterChoice {
                    id: o.value,
                    label: o.label,
                })
                .collect(),
            pipelines: pipelines
                .results
                .into_iter()
                .filter(|p| !p.archived)
                .map(|p| PipelineChoice {
                    id: p.id,
                    label: p.label,
                    stages: p
                        .stages
                        .into_iter()
                        .filter(|s| !s.archived)
                        .map(|s| FilterChoice {
                            id: s.id,
                            label: s.label,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// Fails with `filter_invalid` unless the filter's list exists now: a list deleted at
    /// HubSpot must never read as "this company left the list", which archives it.
    async fn require_list(&self, connection: &Connection, list_id: &str) -> ProviderResult<()> {
        let call = Call::get(format!("/crm/v3/lists/{}", list_path_id(list_id)?));
        match self.call(connection, Budget::General, &call).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::SourceDeleted => Err(list_gone(list_id)),
            Err(e) => Err(e),
        }
    }

    /// Every record in a list (its current membership).
    pub async fn list_members(
        &self,
        connection: &Connection,
        list_id: &str,
    ) -> ProviderResult<BTreeSet<SourceId>> {
        let path = format!("/crm/v3/lists/{}/memberships", list_path_id(list_id)?);
        let mut members = BTreeSet::new();
        let mut after: Option<String> = None;
        loop {
            let mut call = Call::get(path.clone()).query("limit", MEMBERSHIP_PAGE.to_string());
            if let Some(after) = &after {
                call = call.query("after", after.clone());
            }
            let page: MembershipPage = match self.call(connection, Budget::General, &call).await {
                Ok(reply) => reply.json()?,
                Err(e) if e.code == ErrorCode::SourceDeleted => return Err(list_gone(list_id)),
                Err(e) => return Err(e),
            };
            for entry in &page.results {
                if let Some(id) = entry.record_id() {
                    members.insert(parse_source_id(&id)?);
                }
            }
            after = Paging::next_after(page.paging.as_ref());
            if after.is_none() {
                return Ok(members);
            }
        }
    }

    async fn list_members_cached(
        &self,
        connection: &Connection,
        list_id: &str,
    ) -> ProviderResult<Arc<BTreeSet<SourceId>>> {
        let key = (connection.id.clone(), list_id.to_owned());
        let ttl = self.inner.config.list_membership_ttl;
        if let Some((at, members)) = self.inner.lists.lock().get(&key)
            && at.elapsed() < ttl
        {
            return Ok(Arc::clone(members));
        }
        let members = Arc::new(self.list_members(connection, list_id).await?);
        self.inner
            .lists
            .lock()
            .insert(key, (Instant::now(), Arc::clone(&members)));
        Ok(members)
    }

    /// Whether one company is in a list, asked of HubSpot now (the webhook path).
    async fn in_list(
        &self,
        connection: &Connection,
        list_id: &str,
        company: &SourceId,
    ) -> ProviderResult<bool> {
        let call = Call::get(format!(
            "/crm/v3/lists/records/{COMPANIES_OBJECT_TYPE_ID}/{}/memberships",
            company.as_str()
        ));
        match self.call(connection, Budget::General, &call).await {
            Ok(reply) => {
                let memberships: RecordMemberships = reply.json()?;
                Ok(memberships
                    .results
                    .iter()
                    .any(|m| id_text(&m.list_id).as_deref() == Some(list_id)))
            }
            Err(e) if e.code == ErrorCode::SourceDeleted => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads one property of each company; missing companies get `None`.
    async fn company_properties(
        &self,
        connection: &Connection,
        ids: &[SourceId],
        properties: &[&str],
    ) -> ProviderResult<HashMap<String, BTreeMap<String, Option<String>>>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(PAGE_SIZE) {
            let chunk: Vec<&str> = chunk.iter().map(SourceId::as_str).collect();
            for object in self
                .batch_read(connection, ObjectKind::Company, &chunk, properties, false)
                .await?
            {
                out.insert(object.id, object.properties);
            }
        }
        Ok(out)
    }
}

fn property_is(values: &BTreeMap<String, Option<String>>, name: &str, allowed: &[String]) -> bool {
    values
        .get(name)
        .and_then(|v| v.as_deref())
        .is_some_and(|v| allowed.iter().any(|a| a == v))
}

#[async_trait]
impl SourceProvider for HubSpotProvider {
    fn provider(&self) -> Provider {
        Provider::Hubspot
    }

    async fn list_page(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        properties: &[&str],
        cursor: Option<&str>,
    ) -> ProviderResult<SourcePage> {
        let asked = requested_properties(properties, &[]);
        let history = history_of(connection, kind, properties);
        // HubSpot pages at most 50 records with their property history.
        let limit = if history.is_empty() {
            PAGE_SIZE
        } else {
            HISTORY_PAGE_SIZE
        };
        let mut call = Call::get(format!("/crm/v3/objects/{}", plural(kind)?))
            .query("limit", limit.to_string())
            .query("archived", "false")
            .query("properties", asked.join(","));
        if !history.is_empty() {
            call = call.query("propertiesWithHistory", history.join(","));
        }
        if kind == ObjectKind::Contact {
            // Inline, so the listing needs no association read of its own.
            call = call.query("associations", "companies");
        }
        if let Some(cursor) = cursor {
            call = call.query("after", cursor);
        }
        let page: ObjectPage = self
            .call(connection, Budget::General, &call)
            .await?
            .json()?;
        let mut companies = HashMap::new();
        let mut paged = Vec::new();
        if kind == ObjectKind::Contact {
            for o in &page.results {
                match inline_companies(o) {
                    Some(ids) => {
                        companies.insert(o.id.clone(), ids);
                    }
                    None => paged.push(o.id.as_str()),
                }
            }
        }
        if !paged.is_empty() {
            companies.extend(self.companies_of_contacts(connection, &paged).await?);
        }
        let next_cursor = Paging::next_after(page.paging.as_ref());
        let records = page
            .results
            .into_iter()
            .map(|o| {
                let associated = companies.remove(&o.id).unwrap_or_default();
                to_record(kind, o, properties, associated)
            })
            .collect::<ProviderResult<_>>()?;
        Ok(SourcePage {
            records,
            next_cursor,
        })
    }

    async fn fetch(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        ids: &[SourceId],
        properties: &[&str],
    ) -> ProviderResult<Vec<(SourceId, Fetched)>> {
        let asked = requested_properties(properties, &[]);
        let unique: BTreeSet<&str> = ids.iter().map(SourceId::as_str).collect();
        let unique: Vec<&str> = unique.into_iter().collect();
        let mut found: HashMap<String, CrmObject> = HashMap::new();
        // Merged-away ids answer with their survivor.
        let mut survivors: HashMap<String, CrmObject> = HashMap::new();
        for chunk in unique.chunks(PAGE_SIZE) {
            for o in self
                .batch_read(connection, kind, chunk, &asked, false)
                .await?
            {
                found.insert(o.id.clone(), o);
            }
            let misses: Vec<&str> = chunk
                .iter()
                .copied()
                .filter(|id| !found.contains_key(*id))
                .collect();
            if misses.is_empty() {
                continue;
            }
            for mut o in self
                .batch_read(connection, kind, &misses, &asked, true)
                .await?
            {
                o.archived = true;
                found.insert(o.id.clone(), o);
            }
            let still_missing: Vec<&str> = misses
                .into_iter()
                .filter(|id| !found.contains_key(*id))
                .collect();
            for id in still_missing {
                if let Some(o) = self.get_one(connection, kind, id, &asked).await? {
                    if o.id == id {
                        found.insert(o.id.clone(), o);
                    } else {
                        survivors.insert(id.to_owned(), o);
                    }
                }
            }
        }

        let mut companies = HashMap::new();
        if kind == ObjectKind::Contact {
            let live: BTreeSet<&str> = found
                .values()
                .chain(survivors.values())
                .filter(|o| !o.archived)
                .map(|o| o.id.as_str())
                .collect();
            let live: Vec<&str> = live.into_iter().collect();
            companies = self.companies_of_contacts(connection, &live).await?;
        }

        ids.iter()
            .map(|id| {
                let object = found
                    .get(id.as_str())
                    .or_else(|| survivors.get(id.as_str()));
                let outcome = match object {
                    Some(o) => {
                        let associated = companies.get(&o.id).cloned().unwrap_or_default();
                        Fetched::Found(to_record(kind, o.clone(), properties, associated)?)
                    }
                    None => Fetched::Gone,
                };
                Ok((id.clone(), outcome))
            })
            .collect()
    }

    async fn filter_members(
        &self,
        connection: &Connection,
        ids: &[SourceId],
    ) -> ProviderResult<BTreeMap<SourceId, bool>> {
        match &connection.company_filter {
            CompanyFilter::All => Ok(ids.iter().map(|id| (id.clone(), true)).collect()),
            CompanyFilter::List { list_id } => {
                let mut out = BTreeMap::new();
                if ids.len() <= PER_RECORD_MEMBERSHIP_MAX {
                    for id in ids {
                        out.insert(id.clone(), self.in_list(connection, list_id, id).await?);
                    }
                    // A record's memberships cannot tell "left the list" from "the list is
                    // gone": a company found outside is only believed if the list exists.
                    if out.values().any(|member| !member) {
                        self.require_list(connection, list_id).await?;
                    }
                } else {
                    let members = self.list_members_cached(connection, list_id).await?;
                    out.extend(ids.iter().map(|id| (id.clone(), members.contains(id))));
                }
                Ok(out)
            }
            CompanyFilter::LifecycleStage { stages } => {
                let values = self
                    .company_properties(connection, ids, &[LIFECYCLE_PROPERTY])
                    .await?;
                Ok(ids
                    .iter()
                    .map(|id| {
                        let member = values
                            .get(id.as_str())
                            .is_some_and(|v| property_is(v, LIFECYCLE_PROPERTY, stages));
                        (id.clone(), member)
                    })
                    .collect())
            }
            CompanyFilter::Pipeline {
                pipeline_id,
                stage_ids,
            } => {
                let values = self
                    .company_properties(
                        connection,
                        ids,
                        &[PIPELINE_PROPERTY, PIPELINE_STAGE_PROPERTY],
                    )
                    .await?;
                let pipeline = std::slice::from_ref(pipeline_id);
                Ok(ids
                    .iter()
                    .map(|id| {
                        let member = values.get(id.as_str()).is_some_and(|v| {
                            property_is(v, PIPELINE_PROPERTY, pipeline)
                                && (stage_ids.is_empty()
                                    || property_is(v, PIPELINE_STAGE_PROPERTY, stage_ids))
                        });
                        (id.clone(), member)
                    })
                    .collect())
            }
        }
    }

    async fn filter_choices(&self, connection: &Connection) -> ProviderResult<FilterChoices> {
        self.company_filter_choices(connection).await
    }

    async fn properties(
        &self,
        connection: &Connection,
        kind: ObjectKind,
    ) -> ProviderResult<Vec<PropertySchema>> {
        let call = Call::get(format!("/crm/v3/properties/{}", plural(kind)?));
        let list: PropertyList = self
            .call(connection, Budget::General, &call)
            .await?
            .json()?;
        Ok(list
            .results
            .into_iter()
            .filter(|p| !p.archived)
            .map(|p| PropertySchema {
                read_only: p.calculated || p.modification.is_some_and(|m| m.read_only_value),
                name: p.name,
                property_type: p.property_type,
                label: p.label,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AssociationType;

    fn object(json: serde_json::Value) -> CrmObject {
        serde_json::from_value(json).expect("valid object")
    }

    #[test]
    fn each_propertys_time_is_its_latest_write_in_the_history() {
        let o = object(json!({
            "id": "101",
            "properties": { "firstname": "Leah" },
            "updatedAt": "2026-12-03T10:00:05.000Z",
            "propertiesWithHistory": {
                "firstname": [
                    { "value": "Leah", "timestamp": "2026-12-03T10:00:04.000Z", "sourceType": "CRM_UI" },
                    { "value": "Lea", "timestamp": "2026-12-03T09:00:00.000Z", "sourceType": "INTEGRATION" }
                ],
                "lastname": []
            }
        }));
        let r =
            to_record(ObjectKind::Contact, o, &["firstname", "lastname"], vec![]).expect("valid");
        assert_eq!(r.property_times.len(), 1, "{:?}", r.property_times);
        assert_eq!(
            r.property_times["firstname"],
            parse_time("2026-12-03T10:00:04.000Z").expect("a time")
        );
    }

    #[test]
    fn a_record_is_versioned_by_updated_at_and_keeps_only_the_asked_properties() {
        let o = object(json!({
            "id": "512",
            "properties": { "name": "Acme", "domain": null, "hs_lastmodifieddate": "2024-09-13T20:23:03.333Z",
                            "hs_merged_object_ids": "77;88;512" },
            "createdAt": "2020-01-09T20:11:27.309Z",
            "updatedAt": "2024-09-13T20:23:03.333Z",
            "archived": false
        }));
        let r = to_record(
            ObjectKind::Company,
            o,
            &["name", "domain", "website"],
            vec![],
        )
        .expect("valid");
        assert_eq!(r.id.as_str(), "512");
        assert_eq!(r.version, SourceVersion(1_726_258_983_333));
        assert_eq!(r.properties.len(), 3);
        assert_eq!(r.properties["name"].as_deref(), Some("Acme"));
        assert_eq!(r.properties["domain"], None);
        assert_eq!(r.properties["website"], None);
        let merged: Vec<&str> = r.merged_from.iter().map(SourceId::as_str).collect();
        assert_eq!(merged, ["77", "88"]);
    }

    #[test]
    fn without_updated_at_the_modified_property_versions_the_record() {
        let o =
            object(json!({ "id": "1", "properties": { "hs_lastmodifieddate": "1700000000000" } }));
        let r = to_record(ObjectKind::Company, o, &[], vec![]).expect("valid");
        assert_eq!(r.version, SourceVersion(1_700_000_000_000));
        let bad = object(json!({ "id": "1", "properties": {} }));
        assert!(to_record(ObjectKind::Company, bad, &[], vec![]).is_err());
    }

    #[test]
    fn the_primary_company_comes_first_then_by_number() {
        let assoc = |id: u64, types: &[i64]| AssociatedObject {
            to_object_id: json!(id),
            association_types: types
                .iter()
                .map(|t| AssociationType {
                    type_id: Some(*t),
                    label: None,
                })
                .collect(),
        };
        let ordered = order_companies(&[
            assoc(30, &[279]),
            assoc(100, &[279]),
            assoc(9, &[279]),
            assoc(20, &[279, 1]),
        ]);
        let ids: Vec<&str> = ordered.iter().map(SourceId::as_str).collect();
        assert_eq!(ids, ["20", "9", "30", "100"]);
    }

    #[test]
    fn a_list_row_names_its_companies_inline_primary_first_unless_they_page() {
        let row = |block: serde_json::Value| object(json!({"id": "7", "associations": block}));
        let inline = row(json!({"companies": {"results": [
            {"id": "30", "type": "contact_to_company_unlabeled"},
            {"id": "9", "type": "contact_to_company_unlabeled"},
            {"id": "30", "type": "contact_to_company"}
        ]}}));
        let ids: Vec<String> = inline_companies(&inline)
            .expect("one page")
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect();
        assert_eq!(ids, ["30", "9"]);
        assert_eq!(
            inline_companies(&object(json!({"id": "8"}))),
            Some(Vec::new())
        );
        let paged = row(json!({"companies": {
            "results": [{"id": "1", "type": "contact_to_company"}],
            "paging": {"next": {"after": "MQ=="}}
        }}));
        assert_eq!(
            inline_companies(&paged),
            None,
            "more pages: read them through v4"
        );
    }

    #[test]
    fn only_companies_and_contacts_are_hubspot_kinds() {
        assert_eq!(plural(ObjectKind::Company).ok(), Some("companies"));
        assert_eq!(plural(ObjectKind::Contact).ok(), Some("contacts"));
        assert!(plural(ObjectKind::Subscription).is_err());
    }
}
