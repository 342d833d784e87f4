//! A simulated HubSpot portal behind the engine's provider trait: companies with versions,
//! soft deletes, restores and merges, lists and lifecycle stages for the company filter,
//! and provider faults (5xx, 429 with and without Retry-After) drawn from the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use connector::engine::Engine;
use connector::engine::admin::AdminError;
use connector::engine::connect::Authorized;
use connector::provider::{
    ContactKey, Fetched, ListAdd, OwnKey, PropertySchema, ProviderError, ProviderResult,
    RecordWriter, Refusal, SourcePage, SourceProvider, SourceRecord, Written,
};
use connector::{
    CompanyFilter, Connection, ErrorCode, FilterChoice, FilterChoices, ObjectKind, Provider,
    ProviderAccountId, PushSettings, SealedCredentials, SourceId, SourceVersion, SyncDirection,
    TenantId, Timestamp,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Records per listing page: small, so passes span many pages and checkpoints.
const PAGE: usize = 7;
pub const STAGES: [&str; 3] = ["lead", "opportunity", "customer"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCompany {
    pub name: String,
    pub domain: String,
    pub stage: &'static str,
    pub version: i64,
    pub deleted: bool,
    pub merged_into: Option<u64>,
    pub merged_from: Vec<u64>,
}

impl SimCompany {
    pub fn alive(&self) -> bool {
        !self.deleted && self.merged_into.is_none()
    }
}

/// A contact an outbound connection pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimContact {
    pub properties: BTreeMap<String, String>,
    pub version: i64,
    pub deleted: bool,
    /// The company it is associated with.
    pub company: Option<u64>,
    /// When each property was last written (the engine's clock: two-way resolution
    /// compares it with our write times).
    pub times: BTreeMap<String, i64>,
}

/// A write into a pushed contact, as its webhook tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactWrite {
    pub contact: u64,
    /// `None`: the contact was created.
    pub property: Option<String>,
    pub value: Option<String>,
    /// Made with our app's token (the echo of a push), or by a portal user.
    pub by_us: bool,
}

/// What outbound connections wrote: contacts, companies by their key property, and the
/// one static contact list's members. Kept apart from the mirrored companies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    pub contacts: BTreeMap<u64, SimContact>,
    /// Company key (`sync_company_key`) -> the company's id and properties.
    pub companies: BTreeMap<String, (u64, BTreeMap<String, String>)>,
    pub list: BTreeSet<u64>,
}

/// The static contact list pushes add to.
pub const CONTACT_LIST: &str = "900";

struct State {
    clock: i64,
    next_id: u64,
    companies: BTreeMap<u64, SimCompany>,
    pushed: Pushed,
    lists: BTreeMap<String, BTreeSet<u64>>,
    fault_rate: f64,
    /// A company whose read panics (a provider bug the worker must contain).
    panics_on: Option<u64>,
    rng: StdRng,
    faults_injected: u64,
    reads: Reads,
    /// The last property time handed out (property times never repeat).
    last_write_ms: i64,
    /// Writes into pushed contacts whose webhooks the simulation has not taken yet.
    contact_writes: Vec<ContactWrite>,
    /// Each pushed contact property's last edit by a portal user: value and time.
    user_edits: BTreeMap<(u64, String), (String, i64)>,
}

/// How many calls the engine made to the portal, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    pub fetches: u64,
    /// The ids those fetches asked for.
    pub fetched_ids: u64,
    pub membership: u64,
}

pub struct Portal {
    pub account: ProviderAccountId,
    state: Mutex<State>,
}

impl Portal {
    pub fn new(account: &str, seed: u64) -> Self {
        Self {
            account: ProviderAccountId::parse(account).expect("a portal id"),
            state: Mutex::new(State {
                clock: 1_000_000,
                next_id: 100,
                companies: BTreeMap::new(),
                pushed: Pushed::default(),
                lists: BTreeMap::new(),
                fault_rate: 0.0,
                panics_on: None,
                rng: StdRng::seed_from_u64(seed ^ 0x5eed_9a7e),
                faults_injected: 0,
                reads: Reads::default(),
                last_write_ms: 0,
                contact_writes: Vec::new(),
                user_edits: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the portal's consent grants a connection (the portal ignores credentials).
    pub fn authorized(&self) -> Authorized {
        Authorized {
            account_id: self.account.clone(),
            scopes: vec!["crm.objects.companies.read".into(), "crm.lists.read".into()],
            credentials: SealedCredentials("sim-credentials".into()),
        }
    }

    /// The consent of an app that also asked for the write scopes.
    pub fn authorized_for_writes(&self) -> Authorized {
        let mut authorized = self.authorized();
        authorized
            .scopes
            .extend(WRITE_SCOPES.iter().map(|s| (*s).to_owned()));
        authorized
    }

    pub fn pushed(&self) -> Pushed {
        self.lock().pushed.clone()
    }

    /// The writes into pushed contacts since the last call, for their webhooks.
    pub fn take_contact_writes(&self) -> Vec<ContactWrite> {
        std::mem::take(&mut self.lock().contact_writes)
    }

    /// Each pushed contact property a portal user edited last: value and time.
    pub fn user_edits(&self) -> BTreeMap<(u64, String), (String, i64)> {
        self.lock().user_edits.clone()
    }

    /// A portal user edits the first name or job title of the `pick`th live pushed
    /// contact (`usize::MAX`: the newest); its webhook waits in `take_contact_writes`.
    pub fn edit_pushed_contact(&self, pick: usize, property: &str, value: &str) -> Option<u64> {
        let mut s = self.lock();
        let live: Vec<u64> = s
            .pushed
            .contacts
            .iter()
            .filter(|(_, c)| !c.deleted)
            .map(|(id, _)| *id)
            .collect();
        let id = if pick == usize::MAX {
            *live.last()?
        } else {
            *live.get(pick % live.len().max(1))?
        };
        s.clock += 1_000;
        let version = s.clock;
        let at = s.write_time();
        let contact = s.pushed.contacts.get_mut(&id)?;
        contact
            .properties
            .insert(property.to_owned(), value.to_owned());
        contact.times.insert(property.to_owned(), at);
        contact.version = version;
        s.user_edits
            .insert((id, property.to_owned()), (value.to_owned(), at));
        s.contact_writes.push(ContactWrite {
            contact: id,
            property: Some(property.to_owned()),
            value: Some(value.to_owned()),
            by_us: false,
        });
        Some(id)
    }

    /// A new connection of `tenant`, connected to this portal.
    pub async fn connect_new(
        &self,
        engine: &Engine,
        tenant: &TenantId,
    ) -> Result<Connection, AdminError> {
        let view = engine.create_connection(tenant, Provider::Hubspot).await?;
        engine.connect(tenant, &view.id, self.authorized()).await
    }

    pub fn set_fault_rate(&self, rate: f64) {
        self.lock().fault_rate = rate;
    }

    pub fn panic_on_read_of(&self, id: u64) {
        self.lock().panics_on = Some(id);
    }

    pub fn reads(&self) -> Reads {
        self.lock().reads
    }

    pub fn faults_injected(&self) -> u64 {
        self.lock().faults_injected
    }

    pub fn companies(&self) -> BTreeMap<u64, SimCompany> {
        self.lock().companies.clone()
    }

    pub fn lists(&self) -> BTreeMap<String, BTreeSet<u64>> {
        self.lock().lists.clone()
    }

    pub fn create(&self) -> u64 {
        let mut s = self.lock();
        s.clock += 1_000;
        let id = s.next_id;
        s.next_id += 1;
        let stage = STAGES[(id % 3) as usize];
        let version = s.clock;
        s.companies.insert(
            id,
            SimCompany {
                name: format!("Company {id}"),
                domain: format!("c{id}.example.com"),
                stage,
                version,
                deleted: false,
                merged_into: None,
                merged_from: Vec::new(),
            },
        );
        id
    }

    /// Applies `change` to company `id` when it is alive; false when it is not.
    fn touch(&self, id: u64, change: impl FnOnce(&mut SimCompany)) -> bool {
        let mut s = self.lock();
        s.clock += 1_000;
        let now = s.clock;
        match s.companies.get_mut(&id) {
            Some(c) if c.alive() => {
                change(c);
                c.version = now;
                true
            }
            _ => false,
        }
    }

    pub fn rename(&self, id: u64, revision: u64) -> bool {
        self.touch(id, |c| c.name = format!("Company {id} rev {revision}"))
    }

    pub fn set_stage(&self, id: u64, stage: &'static str) -> bool {
        self.touch(id, |c| c.stage = stage)
    }

    pub fn delete(&self, id: u64) -> bool {
        self.touch(id, |c| c.deleted = true)
    }

    pub fn restore(&self, id: u64) -> bool {
        let mut s = self.lock();
        s.clock += 1_000;
        let now = s.clock;
        match s.companies.get_mut(&id) {
            Some(c) if c.deleted && c.merged_into.is_none() => {
                c.deleted = false;
                c.version = now;
                true
            }
            _ => false,
        }
    }

    /// Merges `loser` into `survivor` (both alive); the loser never comes back.
    pub fn merge(&self, survivor: u64, loser: u64) -> bool {
        let mut s = self.lock();
        let alive = |s: &State, id| s.companies.get(&id).is_some_and(SimCompany::alive);
        if survivor == loser || !alive(&s, survivor) || !alive(&s, loser) {
            return false;
        }
        s.clock += 1_000;
        let now = s.clock;
        if let Some(l) = s.companies.get_mut(&loser) {
            l.merged_into = Some(survivor);
            l.version = now;
        }
        if let Some(w) = s.companies.get_mut(&survivor) {
            w.merged_from.push(loser);
            w.version = now;
        }
        for members in s.lists.values_mut() {
            members.remove(&loser);
        }
        true
    }

    pub fn create_list(&self, members: BTreeSet<u64>) -> String {
        let mut s = self.lock();
        let id = (1 + s.lists.len() as u64 * 7).to_string();
        s.lists.insert(id.clone(), members);
        id
    }

    pub fn move_in_list(&self, list: &str, id: u64, member: bool) {
        let mut s = self.lock();
        if let Some(members) = s.lists.get_mut(list) {
            if member {
                members.insert(id);
            } else {
                members.remove(&id);
            }
        }
    }

    pub fn delete_list(&self, list: &str) -> bool {
        self.lock().lists.remove(list).is_some()
    }

    /// Whether a company passes `filter`, as HubSpot would answer; `None` when the filter
    /// names a list the portal does not have.
    pub fn passes(&self, filter: &CompanyFilter, id: u64) -> Option<bool> {
        let s = self.lock();
        let company = s.companies.get(&id)?;
        match filter {
            CompanyFilter::All => Some(true),
            CompanyFilter::List { list_id } => s.lists.get(list_id).map(|m| m.contains(&id)),
            CompanyFilter::LifecycleStage { stages } => {
                Some(stages.iter().any(|st| st == company.stage))
            }
            CompanyFilter::Pipeline { .. } => Some(false),
        }
    }

    /// A write that landed but whose answer was lost (a timeout after HubSpot applied
    /// it), when the seed says so: the caller sees a 502 and cannot tell.
    fn answer_lost(s: &mut State) -> ProviderResult<()> {
        let rate = s.fault_rate / 2.0;
        if rate <= 0.0 || !s.rng.gen_bool(rate) {
            return Ok(());
        }
        s.faults_injected += 1;
        let mut e = ProviderError::new(
            ErrorCode::ProviderUnavailable,
            "simulated timeout after the write landed",
        );
        e.status = Some(504);
        Err(e)
    }

    /// A provider fault, when the seed says this call gets one.
    fn fault(&self) -> ProviderResult<()> {
        let mut s = self.lock();
        let rate = s.fault_rate;
        if rate <= 0.0 || !s.rng.gen_bool(rate) {
            return Ok(());
        }
        s.faults_injected += 1;
        let mut error = match s.rng.gen_range(0..3) {
            0 => ProviderError::new(ErrorCode::ProviderUnavailable, "simulated 502"),
            1 => {
                let mut e = ProviderError::new(ErrorCode::RateLimited, "simulated 429");
                e.retry_after = Some(Duration::from_secs(1));
                e
            }
            _ => ProviderError::new(ErrorCode::RateLimited, "simulated 429, no Retry-After"),
        };
        error.status = Some(if error.code == ErrorCode::RateLimited {
            429
        } else {
            502
        });
        Err(error)
    }

    fn record(id: u64, c: &SimCompany) -> SourceRecord {
        let mut properties = BTreeMap::new();
        properties.insert("name".to_owned(), Some(c.name.clone()));
        properties.insert("domain".to_owned(), Some(c.domain.clone()));
        properties.insert("lifecyclestage".to_owned(), Some(c.stage.to_owned()));
        SourceRecord {
            kind: ObjectKind::Company,
            id: source_id(id),
            version: SourceVersion(c.version),
            archived: c.deleted,
            properties,
            associated_companies: Vec::new(),
            merged_from: c.merged_from.iter().map(|m| source_id(*m)).collect(),
            property_times: Default::default(),
        }
    }
}

const WRITE_SCOPES: [&str; 3] = [
    "crm.objects.contacts.write",
    "crm.objects.companies.write",
    "crm.lists.write",
];

impl State {
    /// A property write's time on the engine's clock, later than every earlier one.
    fn write_time(&mut self) -> i64 {
        self.last_write_ms = Timestamp::now().as_millis().max(self.last_write_ms + 1);
        self.last_write_ms
    }

    /// Notes our writes of `properties` into contact `id` (their times and webhooks).
    fn note_our_writes(&mut self, id: u64, properties: &BTreeMap<String, String>, created: bool) {
        let at = self.write_time();
        let Some(contact) = self.pushed.contacts.get_mut(&id) else {
            return;
        };
        for name in properties.keys() {
            contact.times.insert(name.clone(), at);
        }
        if created {
            self.contact_writes.push(ContactWrite {
                contact: id,
                property: None,
                value: None,
                by_us: true,
            });
        }
        for (name, value) in properties {
            self.contact_writes.push(ContactWrite {
                contact: id,
                property: Some(name.clone()),
                value: Some(value.clone()),
                by_us: true,
            });
        }
    }

    fn contact_record(&self, id: u64, properties: &[&str]) -> Option<SourceRecord> {
        let c = self.pushed.contacts.get(&id)?;
        let mut values: BTreeMap<String, Option<String>> =
            properties.iter().map(|p| ((*p).to_owned(), None)).collect();
        for (name, value) in &c.properties {
            values.insert(name.clone(), Some(value.clone()).filter(|v| !v.is_empty()));
        }
        Some(SourceRecord {
            kind: ObjectKind::Contact,
            id: source_id(id),
            version: SourceVersion(c.version),
            archived: c.deleted,
            properties: values,
            associated_companies: c.company.map(source_id).into_iter().collect(),
            merged_from: Vec::new(),
            property_times: c
                .times
                .iter()
                .map(|(name, at)| (name.clone(), Timestamp::from_millis(*at)))
                .collect(),
        })
    }
}

fn written(id: u64, created: bool, version: i64) -> Written {
    Written {
        id: source_id(id),
        created,
        version: SourceVersion(version),
    }
}

fn same_email(contact: &SimContact, email: &str) -> bool {
    !contact.deleted
        && contact
            .properties
            .get("email")
            .is_some_and(|e| e.eq_ignore_ascii_case(email))
}

#[async_trait]
impl RecordWriter for Portal {
    fn write_scopes(&self, _direction: SyncDirection, settings: &PushSettings) -> Vec<String> {
        let mut scopes = vec![WRITE_SCOPES[0]];
        if settings.company_step.is_some() {
            scopes.push(WRITE_SCOPES[1]);
        }
        if settings.list_id.is_some() {
            scopes.push(WRITE_SCOPES[2]);
        }
        scopes.into_iter().map(str::to_owned).collect()
    }

    async fn write_contact(
        &self,
        _connection: &Connection,
        key: ContactKey,
        properties: &BTreeMap<String, String>,
    ) -> ProviderResult<Written> {
        self.fault()?;
        let mut s = self.lock();
        s.clock += 1_000;
        let now = s.clock;
        let live = |s: &State, pick: &dyn Fn(&SimContact) -> bool| {
            s.pushed
                .contacts
                .iter()
                .find(|(_, c)| !c.deleted && pick(c))
                .map(|(id, _)| *id)
        };
        let email = properties.get("email").cloned();
        let by_email = |s: &State| {
            email
                .as_deref()
                .and_then(|e| live(s, &|c: &SimContact| same_email(c, e)))
        };
        let by_own = |s: &State, own: &OwnKey| {
            live(s, &|c: &SimContact| {
                c.properties.get(&own.property) == Some(&own.value)
            })
        };
        let (existing, own) = match &key {
            ContactKey::Id(id) => match company_number(id) {
                Some(n) if s.pushed.contacts.get(&n).is_some_and(|c| !c.deleted) => (Some(n), None),
                _ => {
                    return Err(ProviderError::new(
                        ErrorCode::SourceDeleted,
                        "simulated 404: no such contact",
                    ));
                }
            },
            ContactKey::Email => (by_email(&s), None),
            ContactKey::Own(own) => (by_own(&s, own), Some(own)),
            ContactKey::Phone(own) => {
                let phone = properties.get("phone").cloned();
                let by_phone = phone.and_then(|p| {
                    live(&s, &|c: &SimContact| c.properties.get("phone") == Some(&p))
                });
                (by_phone.or_else(|| by_own(&s, own)), Some(own))
            }
        };
        if let Some(id) = existing {
            let changed: BTreeMap<String, String> = match s.pushed.contacts.get_mut(&id) {
                Some(c) => {
                    let changed = properties
                        .iter()
                        .filter(|(k, v)| c.properties.get(*k) != Some(*v))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    c.properties.extend(properties.clone());
                    c.version = now;
                    changed
                }
                None => BTreeMap::new(),
            };
            s.note_our_writes(id, &changed, false);
            Self::answer_lost(&mut s)?;
            return Ok(written(id, false, now));
        }
        if let Some(taken) = by_email(&s) {
            let mut e = ProviderError::new(
                ErrorCode::ContactExists,
                format!("Contact already exists. Existing ID: {taken}"),
            );
            e.status = Some(409);
            e.refusal = Some(Box::new(Refusal {
                invalid_values: Vec::new(),
                existing_id: Some(source_id(taken)),
            }));
            return Err(e);
        }
        let mut properties = properties.clone();
        if let Some(own) = own {
            properties.insert(own.property.clone(), own.value.clone());
        }
        let id = s.next_id;
        s.next_id += 1;
        s.pushed.contacts.insert(
            id,
            SimContact {
                properties,
                version: now,
                deleted: false,
                company: None,
                times: BTreeMap::new(),
            },
        );
        let written_now = s.pushed.contacts[&id].properties.clone();
        s.note_our_writes(id, &written_now, true);
        Self::answer_lost(&mut s)?;
        Ok(written(id, true, now))
    }

    async fn write_company(
        &self,
        _connection: &Connection,
        _key_property: &str,
        key: &str,
        properties: &BTreeMap<String, String>,
    ) -> ProviderResult<Written> {
        self.fault()?;
        let mut s = self.lock();
        s.clock += 1_000;
        let now = s.clock;
        if let Some((id, props)) = s.pushed.companies.get_mut(key) {
            props.extend(properties.clone());
            return Ok(written(*id, false, now));
        }
        let id = s.next_id;
        s.next_id += 1;
        s.pushed
            .companies
            .insert(key.to_owned(), (id, properties.clone()));
        Self::answer_lost(&mut s)?;
        Ok(written(id, true, now))
    }

    async fn associate_company(
        &self,
        _connection: &Connection,
        contact: &SourceId,
        company: &SourceId,
    ) -> ProviderResult<()> {
        self.fault()?;
        let mut s = self.lock();
        let company = company_number(company);
        match company_number(contact).and_then(|n| s.pushed.contacts.get_mut(&n)) {
            Some(c) => {
                c.company = company;
                Ok(())
            }
            None => Err(ProviderError::new(
                ErrorCode::Internal,
                "simulated 400: the contact does not exist",
            )),
        }
    }

    async fn add_to_list(
        &self,
        _connection: &Connection,
        list_id: &str,
        contact: &SourceId,
    ) -> ProviderResult<ListAdd> {
        self.fault()?;
        if list_id != CONTACT_LIST {
            return Err(ProviderError::new(
                ErrorCode::FieldMappingInvalid,
                format!("simulated 404: list {list_id} does not exist"),
            ));
        }
        let mut s = self.lock();
        let id = company_number(contact).unwrap_or_default();
        Ok(if s.pushed.list.insert(id) {
            ListAdd::Added
        } else {
            ListAdd::AlreadyMember
        })
    }

    async fn archive_contact(&self, _connection: &Connection, id: &SourceId) -> ProviderResult<()> {
        self.fault()?;
        let mut s = self.lock();
        if let Some(c) = company_number(id).and_then(|n| s.pushed.contacts.get_mut(&n)) {
            c.deleted = true;
        }
        Ok(())
    }
}

pub fn source_id(id: u64) -> SourceId {
    SourceId::parse(id.to_string()).expect("a number is an id")
}

fn company_number(id: &SourceId) -> Option<u64> {
    id.as_str().parse().ok()
}

#[async_trait]
impl SourceProvider for Portal {
    fn provider(&self) -> Provider {
        Provider::Hubspot
    }

    async fn list_page(
        &self,
        _connection: &Connection,
        kind: ObjectKind,
        _properties: &[&str],
        cursor: Option<&str>,
    ) -> ProviderResult<SourcePage> {
        self.fault()?;
        if kind != ObjectKind::Company {
            return Ok(SourcePage {
                records: Vec::new(),
                next_cursor: None,
            });
        }
        let after: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let s = self.lock();
        let page: Vec<SourceRecord> = s
            .companies
            .range(after + 1..)
            .filter(|(_, c)| c.alive())
            .take(PAGE + 1)
            .map(|(id, c)| Self::record(*id, c))
            .collect();
        let more = page.len() > PAGE;
        let records: Vec<SourceRecord> = page.into_iter().take(PAGE).collect();
        let next_cursor = more
            .then(|| records.last().map(|r| r.id.to_string()))
            .flatten();
        Ok(SourcePage {
            records,
            next_cursor,
        })
    }

    async fn fetch(
        &self,
        _connection: &Connection,
        kind: ObjectKind,
        ids: &[SourceId],
        properties: &[&str],
    ) -> ProviderResult<Vec<(SourceId, Fetched)>> {
        self.fault()?;
        let mut s = self.lock();
        s.reads.fetches += 1;
        s.reads.fetched_ids += ids.len() as u64;
        if kind == ObjectKind::Contact {
            return Ok(ids
                .iter()
                .map(|asked| {
                    let found = company_number(asked)
                        .and_then(|n| s.contact_record(n, properties))
                        .map_or(Fetched::Gone, Fetched::Found);
                    (asked.clone(), found)
                })
                .collect());
        }
        let panics_on = s.panics_on.map(source_id);
        if let Some(id) = panics_on.filter(|p| ids.contains(p)) {
            drop(s);
            panic!("simulated provider bug reading company {id}");
        }
        Ok(ids
            .iter()
            .map(|asked| {
                let found = company_number(asked)
                    .filter(|_| kind == ObjectKind::Company)
                    .and_then(|mut n| {
                        // A merged-away id answers with its survivor, as HubSpot does.
                        for _ in 0..8 {
                            match s.companies.get(&n)?.merged_into {
                                Some(next) => n = next,
                                None => break,
                            }
                        }
                        s.companies.get(&n).map(|c| Self::record(n, c))
                    });
                (asked.clone(), found.map_or(Fetched::Gone, Fetched::Found))
            })
            .collect())
    }

    async fn filter_members(
        &self,
        connection: &Connection,
        ids: &[SourceId],
    ) -> ProviderResult<BTreeMap<SourceId, bool>> {
        self.fault()?;
        self.lock().reads.membership += 1;
        let mut out = BTreeMap::new();
        for id in ids {
            let member = match company_number(id) {
                Some(n) => self.passes(&connection.company_filter, n).ok_or_else(|| {
                    ProviderError::new(
                        ErrorCode::FilterInvalid,
                        "the company filter's list no longer exists",
                    )
                })?,
                None => false,
            };
            out.insert(id.clone(), member);
        }
        Ok(out)
    }

    async fn filter_choices(&self, _connection: &Connection) -> ProviderResult<FilterChoices> {
        let s = self.lock();
        Ok(FilterChoices {
            lists: s
                .lists
                .keys()
                .map(|id| FilterChoice {
                    id: id.clone(),
                    label: format!("List {id}"),
                })
                .collect(),
            lifecycle_stages: STAGES
                .iter()
                .map(|st| FilterChoice {
                    id: (*st).to_owned(),
                    label: st.to_uppercase(),
                })
                .collect(),
            pipelines: Vec::new(),
        })
    }

    async fn properties(
        &self,
        _connection: &Connection,
        kind: ObjectKind,
    ) -> ProviderResult<Vec<PropertySchema>> {
        let schema = |name: &str, ty: &str| PropertySchema {
            name: name.to_owned(),
            property_type: ty.to_owned(),
            label: None,
            read_only: false,
        };
        Ok(match kind {
            ObjectKind::Company => vec![
                schema("name", "string"),
                schema("domain", "string"),
                schema("hubspot_owner_id", "enumeration"),
                schema("annualrevenue", "number"),
                schema("lifecyclestage", "enumeration"),
            ],
            _ => ["email", "firstname", "lastname", "phone", "jobtitle"]
                .iter()
                .map(|n| schema(n, "string"))
                .collect(),
        })
    }
}
