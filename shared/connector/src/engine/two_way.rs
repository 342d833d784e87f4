//! Two-way contacts, resolved field by field. A field that changed on one side since
//! both last agreed on it takes that side's value. One that changed on both takes the
//! later write, HubSpot's property time against our write time, and the other value
//! goes into the conflict audit (30 days, with Restore).

use std::collections::{BTreeMap, BTreeSet};

use super::EngineError;
use super::apply::id_from_parts;
use super::mapping::{MappedValues, Schema};
use crate::model::{
    CONFLICT_RETENTION, Conflict, ConflictId, Connection, Contact, FieldMappingEntry, InStep,
    ObjectKind, ParseError, Side, SideValue, SyncDirection, TargetField, Timestamp,
};
use crate::ports::{Store, StoreError};
use crate::provider::SourceRecord;

/// The contact fields of a two-way connection that flow both ways: mapped, not narrowed
/// to one direction, and writable at the provider.
pub fn two_way_fields<'a>(
    connection: &'a Connection,
    schema: &'a Schema,
) -> impl Iterator<Item = &'a FieldMappingEntry> {
    connection
        .field_mapping
        .for_object(ObjectKind::Contact)
        .filter(move |e| {
            connection.direction.narrowed_by(e.direction) == SyncDirection::TwoWay
                && schema.get(&e.source_property).is_some_and(|p| !p.read_only)
        })
}

/// What a two-way field's two sides hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sides<'a> {
    pub theirs: Option<&'a str>,
    pub theirs_at: Timestamp,
    pub ours: Option<&'a str>,
    /// `None`: the product never wrote the field (it came from the provider).
    pub ours_at: Option<Timestamp>,
    pub in_step: Option<&'a InStep>,
}

/// The verdict on one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Both sides hold the same value.
    InStep,
    /// Only the provider changed it, or it won a conflict: our side takes its value.
    TakeTheirs { conflict: bool },
    /// Only we changed it, or we won a conflict: the provider gets our value.
    KeepOurs { conflict: bool },
}

pub fn verdict(sides: &Sides<'_>) -> Verdict {
    if sides.theirs == sides.ours {
        return Verdict::InStep;
    }
    let (theirs_changed, ours_changed) = match sides.in_step {
        Some(agreed) => (
            agreed.value.as_deref() != sides.theirs,
            agreed.value.as_deref() != sides.ours,
        ),
        // Never in step: each side that has a value of its own "changed" it.
        None => (sides.theirs.is_some(), sides.ours_at.is_some()),
    };
    match (theirs_changed, ours_changed) {
        (true, false) | (false, false) => Verdict::TakeTheirs { conflict: false },
        (false, true) => Verdict::KeepOurs { conflict: false },
        // Ties go to the provider, the system of record.
        (true, true) => match sides.ours_at {
            Some(ours_at) if ours_at > sides.theirs_at => Verdict::KeepOurs { conflict: true },
            _ => Verdict::TakeTheirs { conflict: true },
        },
    }
}

/// A conflict found, before it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contested {
    pub field: TargetField,
    pub property: String,
    pub ours: SideValue,
    pub theirs: SideValue,
    pub winner: Side,
}

/// The outcome of resolving one contact against its provider record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Fields of ours that take the provider's value.
    pub take: MappedValues,
    /// Provider properties to write with our value (`""` clears).
    pub push: BTreeMap<String, String>,
    /// The agreed value of each two-way field in step or taken from the provider, once
    /// `take` is stored.
    pub in_step: BTreeMap<TargetField, InStep>,
    /// The agreed value of each field we keep, once `push` is written (not before: until
    /// then the provider still holds its older value).
    pub pushed_in_step: BTreeMap<TargetField, InStep>,
    pub conflicts: Vec<Contested>,
}

/// Resolves every two-way field of `contact` against `record`.
pub fn resolve(
    connection: &Connection,
    schema: &Schema,
    contact: &Contact,
    record: &SourceRecord,
    agreed: &BTreeMap<TargetField, InStep>,
    now: Timestamp,
) -> Resolution {
    let mut out = Resolution::default();
    let record_time = Timestamp::from_millis(record.version.0);
    for entry in two_way_fields(connection, schema) {
        let property = &entry.source_property;
        let theirs = record
            .properties
            .get(property)
            .and_then(|v| v.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let sides = Sides {
            theirs,
            theirs_at: record
                .property_times
                .get(property)
                .copied()
                .unwrap_or(record_time),
            ours: contact.value_of(&entry.target),
            ours_at: contact.written_at.get(&entry.target).copied(),
            in_step: agreed.get(&entry.target),
        };
        let verdict = verdict(&sides);
        let theirs_side = SideValue {
            value: sides.theirs.map(str::to_owned),
            written_at: sides.theirs_at,
        };
        let ours_side = SideValue {
            value: sides.ours.map(str::to_owned),
            written_at: sides.ours_at.unwrap_or(contact.created_at),
        };
        let winner = match verdict {
            Verdict::InStep => {
                let by = match sides.in_step {
                    Some(agreed) if agreed.value == theirs_side.value => agreed.by,
                    _ => Side::Theirs,
                };
                out.in_step.insert(
                    entry.target.clone(),
                    InStep {
                        value: theirs_side.value.clone(),
                        at: sides
                            .ours_at
                            .map_or(sides.theirs_at, |o| o.max(sides.theirs_at)),
                        by,
                    },
                );
                continue;
            }
            Verdict::TakeTheirs { conflict } => {
                out.take
                    .values
                    .insert(entry.target.clone(), theirs_side.value.clone());
                out.in_step.insert(
                    entry.target.clone(),
                    InStep {
                        value: theirs_side.value.clone(),
                        at: sides.theirs_at,
                        by: Side::Theirs,
                    },
                );
                conflict.then_some(Side::Theirs)
            }
            Verdict::KeepOurs { conflict } => {
                out.push.insert(
                    property.clone(),
                    ours_side.value.clone().unwrap_or_default(),
                );
                out.pushed_in_step.insert(
                    entry.target.clone(),
                    InStep {
                        value: ours_side.value.clone(),
                        at: sides.ours_at.unwrap_or(now),
                        by: Side::Ours,
                    },
                );
                conflict.then_some(Side::Ours)
            }
        };
        if let Some(winner) = winner {
            out.conflicts.push(Contested {
                field: entry.target.clone(),
                property: property.clone(),
                ours: ours_side,
                theirs: theirs_side,
                winner,
            });
        }
    }
    out
}

/// What an apply writes into our contact: the fields that only flow in, and the two-way
/// fields the provider's side won.
pub fn pulled(
    connection: &Connection,
    schema: &Schema,
    mapped: &MappedValues,
    resolution: &Resolution,
) -> MappedValues {
    let resolved: BTreeSet<&TargetField> = two_way_fields(connection, schema)
        .map(|e| &e.target)
        .collect();
    let mut pulled = MappedValues::default();
    for entry in connection.field_mapping.for_object(ObjectKind::Contact) {
        if !connection.direction.narrowed_by(entry.direction).pulls()
            || resolved.contains(&entry.target)
        {
            continue;
        }
        if let Some(value) = mapped.values.get(&entry.target) {
            pulled.values.insert(entry.target.clone(), value.clone());
        }
    }
    pulled.values.extend(resolution.take.values.clone());
    pulled
}

/// Stores conflicts in the audit; one stored before (the same conflict resolved again)
/// is left as it is.
pub async fn record_conflicts(
    store: &dyn Store,
    connection: &Connection,
    contact: &Contact,
    record: &SourceRecord,
    conflicts: impl IntoIterator<Item = Contested>,
    now: Timestamp,
) -> Result<(), EngineError> {
    for contested in conflicts {
        let conflict = contested.into_conflict(connection, contact, record, now)?;
        match store.put_conflict(&conflict, now).await {
            Ok(_) | Err(StoreError::VersionConflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Contested {
    /// The audit row. Its id is derived from the connection, record, field and both
    /// write times, so resolving the same conflict again (a redelivered job, the push
    /// after the apply) writes the same row.
    pub fn into_conflict(
        self,
        connection: &Connection,
        contact: &Contact,
        record: &SourceRecord,
        now: Timestamp,
    ) -> Result<Conflict, ParseError> {
        let id = ConflictId::parse(id_from_parts(&[
            "conflict",
            connection.id.as_str(),
            record.id.as_str(),
            &self.field.as_string(),
            &self.ours.written_at.as_millis().to_string(),
            &self.theirs.written_at.as_millis().to_string(),
        ]))?;
        Ok(Conflict {
            tenant_id: connection.tenant_id.clone(),
            connection_id: connection.id.clone(),
            id,
            provider: connection.provider,
            at: now,
            contact_id: contact.id.clone(),
            record_id: record.id.clone(),
            field: self.field,
            property: self.property,
            ours: self.ours,
            theirs: self.theirs,
            winner: self.winner,
            restored_at: None,
            expires_at: now.plus(CONFLICT_RETENTION),
            version: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(T.as_millis() + secs * 1000)
    }

    fn agreed(value: &str) -> InStep {
        InStep {
            value: Some(value.to_owned()),
            at: T,
            by: Side::Theirs,
        }
    }

    fn sides<'a>(
        theirs: Option<&'a str>,
        theirs_at: i64,
        ours: Option<&'a str>,
        ours_at: Option<i64>,
        in_step: Option<&'a InStep>,
    ) -> Sides<'a> {
        Sides {
            theirs,
            theirs_at: at(theirs_at),
            ours,
            ours_at: ours_at.map(at),
            in_step,
        }
    }

    #[test]
    fn a_change_on_one_side_flows_to_the_other() {
        let base = agreed("Ann");
        assert_eq!(
            verdict(&sides(Some("Anna"), 5, Some("Ann"), Some(1), Some(&base))),
            Verdict::TakeTheirs { conflict: false }
        );
        assert_eq!(
            verdict(&sides(Some("Ann"), 9, Some("Annie"), Some(5), Some(&base))),
            Verdict::KeepOurs { conflict: false },
            "an older provider time does not matter when only we changed it"
        );
        assert_eq!(
            verdict(&sides(Some("Ann"), 9, None, Some(5), Some(&base))),
            Verdict::KeepOurs { conflict: false },
            "a value we cleared is cleared there too"
        );
        assert_eq!(
            verdict(&sides(Some("Ann"), 9, Some("Ann"), Some(5), Some(&base))),
            Verdict::InStep
        );
    }

    #[test]
    fn a_change_on_both_sides_goes_to_the_later_write_and_ties_to_the_provider() {
        let base = agreed("Ann");
        assert_eq!(
            verdict(&sides(Some("Anna"), 5, Some("Annie"), Some(6), Some(&base))),
            Verdict::KeepOurs { conflict: true }
        );
        assert_eq!(
            verdict(&sides(Some("Anna"), 6, Some("Annie"), Some(5), Some(&base))),
            Verdict::TakeTheirs { conflict: true }
        );
        assert_eq!(
            verdict(&sides(Some("Anna"), 6, Some("Annie"), Some(6), Some(&base))),
            Verdict::TakeTheirs { conflict: true }
        );
    }

    #[test]
    fn never_in_step_a_field_we_never_wrote_takes_the_providers_value() {
        assert_eq!(
            verdict(&sides(Some("Anna"), 5, None, None, None)),
            Verdict::TakeTheirs { conflict: false }
        );
        assert_eq!(
            verdict(&sides(None, 5, Some("Annie"), Some(1), None)),
            Verdict::KeepOurs { conflict: false }
        );
        assert_eq!(
            verdict(&sides(Some("Anna"), 5, Some("Annie"), Some(7), None)),
            Verdict::KeepOurs { conflict: true }
        );
    }
}
