//! The simulation's outbound tenant: the product writes leads through the records API
//! (creates with an idempotency key, updates, some leads without an email), a write that
//! fails or crashes is sent again later as a product would, and the engine pushes each
//! into the portal in steps. After the settle every lead with an email is exactly one
//! portal contact with its latest values, on its domain's one company and in the list;
//! a lead without one is nowhere; and the portal holds nothing else.

use std::collections::{BTreeMap, BTreeSet};

use connector::engine::records::ContactInput;
use connector::model::*;
use connector::ports::{LogFilter, PageRequest};
use rand::Rng;

use connector::engine::Engine;
use connector::engine::intake::{Change, OwnWrite};

use super::portal::{CONTACT_LIST, Portal, Pushed};
use super::{Checked, Sim};

/// A write the product sent that got no answer (an error or a crash): sent again.
#[derive(Clone, Debug)]
pub enum Unanswered {
    Create { key: String, input: ContactInput },
    Update { id: ContactId, input: ContactInput },
}

pub struct SimOutbound {
    pub id: TenantId,
    pub connection: ConnectionId,
    /// Every lead a create stored and answered.
    pub leads: Vec<ContactId>,
    pub unanswered: Vec<Unanswered>,
    pub created: u64,
    /// Odd seeds push without dedupe by email and push leads without an email too: both
    /// keyed by the contact property we own.
    pub keyed: bool,
    /// Seeds 2 mod 4 sync both ways: portal users edit pushed contacts too, and every
    /// field must end with the later write of the two sides.
    pub two_way: bool,
    /// The product's last answered write of each field of each lead: its stamp and value.
    pub product_writes: BTreeMap<(ContactId, TargetField), (Timestamp, Option<String>)>,
    pub portal_edits: u64,
}

/// The domains leads are at: few, so the company step finds companies it made before.
const DOMAINS: [&str; 3] = ["d0.example.org", "d1.example.org", "d2.example.org"];

fn text(value: String) -> Option<Option<String>> {
    Some(Some(value))
}

impl SimOutbound {
    /// The outbound tenant's connection: connected with write access, pushing with the
    /// company step (Skip) and the list step.
    pub async fn connect(engine: &Engine, portal: &Portal, keyed: bool, two_way: bool) -> Self {
        let id = TenantId::parse("tenant-out").expect("a tenant id");
        let view = engine
            .create_connection(&id, Provider::Hubspot)
            .await
            .expect("an outbound connection is created before faults start");
        engine
            .connect(&id, &view.id, portal.authorized_for_writes())
            .await
            .expect("the outbound connection connects");
        let push = PushSettings {
            company_step: Some(OnStepFailure::Skip),
            list_id: Some(CONTACT_LIST.to_owned()),
            dedupe_by_email: !keyed,
            sync_without_email: keyed,
            ..PushSettings::default()
        };
        let direction = if two_way {
            SyncDirection::TwoWay
        } else {
            SyncDirection::Outbound
        };
        engine
            .set_direction(&id, &view.id, direction, push)
            .await
            .expect("the outbound connection pushes");
        Self {
            id,
            connection: view.id,
            leads: Vec::new(),
            unanswered: Vec::new(),
            created: 0,
            keyed,
            two_way,
            product_writes: BTreeMap::new(),
            portal_edits: 0,
        }
    }
}

impl Sim {
    /// Two-way: each edited field holds the later of the product's last write and the
    /// portal user's last edit (a tie goes to the portal).
    fn check_later_write_won(&mut self, lead: &Contact, portal_id: u64) -> Checked {
        let edits = self.portal.user_edits();
        for (field, property) in [
            (TargetField::FirstName, "firstname"),
            (TargetField::JobTitle, "jobtitle"),
        ] {
            let ours = self
                .outbound
                .product_writes
                .get(&(lead.id.clone(), field.clone()));
            let theirs = edits.get(&(portal_id, property.to_owned()));
            let expected = match (ours, theirs) {
                (Some((ours_at, ours)), Some((theirs, theirs_at))) => {
                    if *theirs_at >= ours_at.as_millis() {
                        Some(theirs.clone())
                    } else {
                        ours.clone()
                    }
                }
                (None, Some((theirs, _))) => Some(theirs.clone()),
                (Some((_, ours)), None) => ours.clone(),
                (None, None) => continue,
            };
            self.score.checks += 1;
            if lead.value_of(&field).map(str::to_owned) != expected {
                return Err(format!(
                    "lead {} {property}: ours {:?}, the later write was {expected:?} (product {ours:?}, portal {theirs:?})",
                    lead.id,
                    lead.value_of(&field)
                ));
            }
        }
        Ok(())
    }

    /// The product writes: a new lead, an update of one, or a write sent again.
    pub(super) async fn product_write(&mut self) {
        let roll = self.rng.gen_range(0..10);
        if roll >= 6 && self.outbound.two_way {
            self.portal_edit();
            return;
        }
        let write = if roll < 2 && !self.outbound.unanswered.is_empty() {
            self.outbound.unanswered.remove(0)
        } else if roll < 5 && !self.outbound.leads.is_empty() {
            // Two-way: often the newest lead, which the portal's users edit most too.
            let at = if self.outbound.two_way && self.rng.gen_bool(0.5) {
                self.outbound.leads.len() - 1
            } else {
                self.rng.gen_range(0..self.outbound.leads.len())
            };
            self.revisions += 1;
            Unanswered::Update {
                id: self.outbound.leads[at].clone(),
                input: ContactInput {
                    first_name: text(format!("Lead rev {}", self.revisions)),
                    job_title: text(format!("Title {}", self.revisions)),
                    ..ContactInput::default()
                },
            }
        } else {
            self.outbound.created += 1;
            let n = self.outbound.created;
            // Every seventh lead has no email: pushed only when the connection is keyed.
            let email =
                (!n.is_multiple_of(7)).then(|| format!("lead{n}@{}", DOMAINS[n as usize % 3]));
            Unanswered::Create {
                key: format!("lead-{n}"),
                input: ContactInput {
                    email: email.map(Some),
                    first_name: text(format!("Lead {n}")),
                    ..ContactInput::default()
                },
            }
        };
        self.send(write).await;
        self.take_queued().await;
    }

    /// A portal user edits a pushed contact (two-way): its webhook goes out with the rest.
    fn portal_edit(&mut self) {
        self.outbound.portal_edits += 1;
        let n = self.outbound.portal_edits;
        let property = if self.rng.gen_bool(0.5) {
            "firstname"
        } else {
            "jobtitle"
        };
        // Often the newest pushed contact, so both sides edit the same fields.
        let pick = if self.rng.gen_bool(0.5) {
            usize::MAX
        } else {
            self.rng.gen_range(0..1000)
        };
        let value = format!("Portal rev {n}");
        let edited = self.portal.edit_pushed_contact(pick, property, &value);
        self.note(format!("portal user: {property} of {edited:?} = {value}"));
        self.take_contact_webhooks();
    }

    /// The webhooks of writes into pushed contacts (a two-way connection's echoes among
    /// them), into flight with the portal's other webhooks.
    pub(super) fn take_contact_webhooks(&mut self) {
        let writes = self.portal.take_contact_writes();
        if !self.outbound.two_way {
            return;
        }
        for write in writes {
            self.events += 1;
            let event =
                WebhookEventId::parse(format!("contact-evt-{}", self.events)).expect("an event id");
            self.in_flight.push(Change {
                provider: Provider::Hubspot,
                account: self.portal.account.clone(),
                event_id: event,
                occurred_at: Timestamp::now(),
                object: ObjectKind::Contact,
                source_id: SourceId::parse(write.contact.to_string()).expect("an id"),
                change: if write.property.is_some() {
                    ChangeKind::Updated
                } else {
                    ChangeKind::Created
                },
                own_write: write.by_us.then(|| OwnWrite {
                    property: write.property.clone(),
                    value: write.value.clone(),
                }),
            });
        }
    }

    /// Remembers, for the two-way check, what an answered write set and when the engine
    /// stamped it.
    async fn note_product_write(&mut self, id: &ContactId, input: &ContactInput) {
        if !self.outbound.two_way {
            return;
        }
        let Ok(Some(stored)) = self.store.get_contact(&self.outbound.id, id).await else {
            return;
        };
        for (field, sent) in [
            (TargetField::FirstName, &input.first_name),
            (TargetField::JobTitle, &input.job_title),
        ] {
            if let (Some(sent), Some(at)) = (sent, stored.written_at.get(&field)) {
                let value = sent.clone().filter(|v| !v.trim().is_empty());
                self.outbound
                    .product_writes
                    .insert((id.clone(), field), (*at, value));
            }
        }
    }

    /// One write through the records use case, crashable as its HTTP invocation is.
    async fn send(&mut self, write: Unanswered) {
        let t = self.outbound.id.clone();
        let answered = match &write {
            Unanswered::Create { key, input } => self
                .crashable(
                    self.engine
                        .create_contact_record(&t, input.clone(), Some(key)),
                )
                .await
                .map(|r| r.map(|w| (w.contact.id, w.created))),
            Unanswered::Update { id, input } => self
                .crashable(self.engine.update_contact_record(&t, id, input.clone()))
                .await
                .map(|r| r.map(|w| (w.contact.id, false))),
        };
        match answered {
            Some(Ok((id, created))) => {
                self.note(format!(
                    "product: {write:?}: stored {id} (created {created})"
                ));
                let input = match &write {
                    Unanswered::Create { input, .. } | Unanswered::Update { input, .. } => input,
                };
                self.note_product_write(&id, input).await;
                if matches!(write, Unanswered::Create { .. }) && !self.outbound.leads.contains(&id)
                {
                    self.outbound.leads.push(id);
                }
            }
            Some(Err(e)) => {
                self.note(format!(
                    "product: {write:?}: refused ({e}); sent again later"
                ));
                self.outbound.unanswered.push(write);
            }
            None => {
                self.note(format!("product: {write:?}: crashed; sent again later"));
                self.outbound.unanswered.push(write);
            }
        }
    }

    /// Faults are off: every unanswered write goes through, the pushes drain, and the
    /// admin presses Retry on each push that ended failed.
    pub(super) async fn settle_outbound(&mut self) -> Checked {
        let unanswered = std::mem::take(&mut self.outbound.unanswered);
        for write in unanswered {
            self.send(write).await;
        }
        if !self.outbound.unanswered.is_empty() {
            return Err(format!(
                "{} product writes are refused with faults off",
                self.outbound.unanswered.len()
            ));
        }
        self.drain().await?;
        let (t, c) = (self.outbound.id.clone(), self.outbound.connection.clone());
        let mut retried = 0;
        for entry in self.failed_pushes().await? {
            self.engine
                .retry_log_entry(&t, &entry)
                .await
                .map_err(|e| format!("retry of push row {entry} at settle: {e}"))?;
            retried += 1;
        }
        self.note(format!(
            "{t}: settle retries {retried} failed pushes of {c}"
        ));
        self.drain().await?;
        // The pushes' own webhooks come back (two-way): each is an echo or changes nothing.
        for _ in 0..8 {
            self.take_contact_webhooks();
            if self.in_flight.is_empty() {
                return Ok(());
            }
            let batch: Vec<Change> = self.in_flight.drain(..).collect();
            self.intake(batch).await;
            self.drain().await?;
        }
        Err("the two-way pushes and their webhooks do not come to rest".into())
    }

    /// The newest row of each lead's pushes, where it is a failure with a Retry (a lead
    /// without an email stays failed: there is nothing to retry into).
    async fn failed_pushes(&self) -> Result<Vec<LogEntryId>, String> {
        let (t, c) = (&self.outbound.id, &self.outbound.connection);
        let mut newest: BTreeSet<ContactId> = BTreeSet::new();
        let mut failed = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let rows = self
                .store
                .list_log(t, c, LogFilter::default(), page.clone(), Timestamp::now())
                .await
                .map_err(|e| e.to_string())?;
            for row in rows.items {
                let Some(contact) = row.contact_id.clone() else {
                    continue;
                };
                let last = matches!(row.status, LogStatus::Pushed | LogStatus::Failed);
                if !last || !newest.insert(contact) {
                    continue;
                }
                if row.status == LogStatus::Failed
                    && row.retry_job.is_some()
                    && row.error_code != Some(ErrorCode::MissingEmail)
                {
                    failed.push(row.id);
                }
            }
            match rows.next {
                Some(next) => page.cursor = Some(next),
                None => return Ok(failed),
            }
        }
    }

    /// Every lead with an email is one portal contact with its values, on its domain's
    /// company and in the list; nothing else was pushed.
    pub(super) async fn check_pushes(&mut self) -> Checked {
        let pushed: Pushed = self.portal.pushed();
        let t = self.outbound.id.clone();
        let mut claimed = BTreeSet::new();
        let mut domains = BTreeSet::new();
        for id in self.outbound.leads.clone() {
            self.score.checks += 1;
            let lead = self
                .store
                .get_contact(&t, &id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("lead {id} was answered but is not stored"))?;
            if lead.email.is_none() && !self.outbound.keyed {
                if !lead.pushed_to.is_empty() {
                    return Err(format!("lead {id} has no email but was pushed"));
                }
                continue;
            }
            let [target] = lead.pushed_to.as_slice() else {
                return Err(format!("lead {id} was pushed to {:?}", lead.pushed_to));
            };
            let n: u64 = target.source_id.as_str().parse().map_err(|_| "an id")?;
            let at = pushed
                .contacts
                .get(&n)
                .filter(|c| !c.deleted)
                .ok_or_else(|| format!("lead {id}'s portal contact {n} is gone"))?;
            if !pushed.list.contains(&n) {
                return Err(format!("lead {id}'s contact {n} is not in the list"));
            }
            claimed.insert(n);
            let Some(email) = &lead.email else {
                let key = at.properties.get(CONTACT_KEY_PROPERTY);
                if key.map(String::as_str) != Some(id.as_str()) || at.company.is_some() {
                    return Err(format!(
                        "lead {id} without an email is portal contact {n} keyed {key:?} on company {:?}",
                        at.company
                    ));
                }
                continue;
            };
            let same: Vec<_> = pushed
                .contacts
                .values()
                .filter(|c| !c.deleted && c.properties.get("email") == Some(email))
                .collect();
            if same.len() != 1 {
                return Err(format!("{} portal contacts have {email}", same.len()));
            }
            for (property, ours) in [
                ("email", &lead.email),
                ("firstname", &lead.first_name),
                ("jobtitle", &lead.job_title),
            ] {
                if at.properties.get(property) != ours.as_ref() {
                    return Err(format!(
                        "lead {id}: portal {property} is {:?}, ours {ours:?}",
                        at.properties.get(property)
                    ));
                }
            }
            if self.outbound.two_way {
                self.check_later_write_won(&lead, n)?;
            }
            let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            let company = pushed.companies.get(domain).map(|(c, _)| *c);
            if company.is_none() || at.company != company {
                return Err(format!(
                    "lead {id} is on company {:?}, its domain's is {company:?}",
                    at.company
                ));
            }
            domains.insert(domain.to_owned());
        }
        let all: BTreeSet<u64> = pushed.contacts.keys().copied().collect();
        if all != claimed {
            return Err(format!(
                "the portal holds pushed contacts no lead claims: {:?}",
                all.difference(&claimed).collect::<Vec<_>>()
            ));
        }
        let companies: BTreeSet<String> = pushed.companies.keys().cloned().collect();
        if companies != domains {
            return Err(format!(
                "pushed companies {companies:?}, but the leads' domains are {domains:?}"
            ));
        }
        Ok(())
    }
}
