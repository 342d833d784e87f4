"""The official hubspot-api-client's v4 association writes, list membership writes and
date property checks against the sandbox."""

import json

import hubspot
import pytest
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    PublicAssociationMultiArchive,
    PublicAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
    PublicObjectId,
)
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from hubspot.crm.contacts.exceptions import ApiException
from hubspot.crm.lists import ListCreateRequest, MembershipChangeRequest
from hubspot.crm.lists.exceptions import ApiException as ListsApiException

from test_writes import READ_SCOPES, WRITE_SCOPES

LIST_SCOPES = WRITE_SCOPES + ["crm.lists.read", "crm.lists.write"]


@pytest.fixture
def writer(sandbox_url, control):
    token = control.token(LIST_SCOPES)["access_token"]
    return hubspot.Client.create(access_token=token, host=sandbox_url)


def _contact(writer, email):
    return writer.crm.contacts.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(properties={"email": email}),
    ).id


def _company(writer, name):
    return writer.crm.companies.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(properties={"name": name}),
    ).id


def _company_ids(writer, contact_id):
    page = writer.crm.associations.v4.basic_api.get_page("contacts", contact_id, "companies")
    return {row.to_object_id: sorted(t.type_id for t in row.association_types) for row in page.results}


def test_a_default_association_is_answered_in_both_directions(writer):
    contact, company = _contact(writer, "assoc@example.com"), _company(writer, "Assoc Co")
    answer = writer.crm.associations.v4.basic_api.create_default("contacts", contact, "companies", company)
    specs = {(r._from.id, r.to.id): r.association_spec.association_type_id for r in answer.results}
    assert specs == {(contact, company): 279, (company, contact): 280}
    assert _company_ids(writer, contact) == {company: [279]}


def test_a_labeled_write_replaces_the_labels_and_delete_removes_the_pair(writer):
    contact, company = _contact(writer, "label@example.com"), _company(writer, "Label Co")
    primary = [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=1)]
    labeled = writer.crm.associations.v4.basic_api.create("contacts", contact, "companies", company, primary)
    assert labeled is not None, "a 201 the client did not expect returns None"
    assert labeled.labels == ["Primary"] and labeled.to_object_id == company
    assert _company_ids(writer, contact) == {company: [1, 279]}
    contact_record = writer.crm.contacts.basic_api.get_by_id(contact, properties=["associatedcompanyid"])
    assert contact_record.properties["associatedcompanyid"] == company
    # the labeled write replaces: naming only the unlabeled type takes Primary off
    unlabeled = [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=279)]
    relabeled = writer.crm.associations.v4.basic_api.create("contacts", contact, "companies", company, unlabeled)
    assert relabeled.labels == []
    assert _company_ids(writer, contact) == {company: [279]}
    assert writer.crm.associations.v4.basic_api.archive("contacts", contact, "companies", company) is None
    assert _company_ids(writer, contact) == {}
    # removing a pair that is not associated is still a 204
    writer.crm.associations.v4.basic_api.archive("contacts", contact, "companies", company)


def test_an_unknown_association_type_is_refused(writer):
    contact, company = _contact(writer, "badtype@example.com"), _company(writer, "Bad Type Co")
    wrong = [AssociationSpec(association_category="USER_DEFINED", association_type_id=3)]
    with pytest.raises(AssociationsApiException) as refused:
        writer.crm.associations.v4.basic_api.create("contacts", contact, "companies", company, wrong)
    assert refused.value.status == 400
    body = json.loads(refused.value.body)
    assert body["message"] == "One or more associations are invalid"
    assert body["context"]["associationSpec"] == ["USER_DEFINED=3"]


def test_batch_associate_create_and_archive(writer):
    company = _company(writer, "Batch Co")
    contacts = [_contact(writer, f"batch{i}@example.com") for i in range(3)]
    batch = writer.crm.associations.v4.batch_api
    defaulted = batch.create_default("contacts", "companies", BatchInputPublicDefaultAssociationMultiPost(inputs=[
        PublicDefaultAssociationMultiPost(_from=PublicObjectId(id=contacts[0]), to=PublicObjectId(id=company)),
    ]))
    assert len(defaulted.results) == 2
    created = batch.create("contacts", "companies", BatchInputPublicAssociationMultiPost(inputs=[
        PublicAssociationMultiPost(_from=PublicObjectId(id=c), to=PublicObjectId(id=company), types=[
            AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=279)])
        for c in contacts[1:]
    ]))
    assert created is not None and len(created.results) == 2
    page = writer.crm.associations.v4.basic_api.get_page("companies", company, "contacts")
    assert sorted(r.to_object_id for r in page.results) == sorted(contacts)
    assert batch.archive("companies", "contacts", BatchInputPublicAssociationMultiArchive(inputs=[
        PublicAssociationMultiArchive(_from=PublicObjectId(id=company), to=[PublicObjectId(id=c) for c in contacts[:2]]),
    ])) is None
    page = writer.crm.associations.v4.basic_api.get_page("companies", company, "contacts")
    assert [r.to_object_id for r in page.results] == [contacts[2]]


def test_association_writes_need_the_write_scope(sandbox_url, control):
    reader = hubspot.Client.create(access_token=control.token(READ_SCOPES)["access_token"], host=sandbox_url)
    with pytest.raises(AssociationsApiException) as forbidden:
        reader.crm.associations.v4.basic_api.create_default("contacts", "1", "companies", "2")
    assert forbidden.value.status == 403
    assert json.loads(forbidden.value.body)["category"] == "MISSING_SCOPES"


def test_a_static_list_takes_members_and_reports_what_changed(writer):
    created = writer.crm.lists.lists_api.create(ListCreateRequest(
        name="Leads from the product", object_type_id="0-1", processing_type="MANUAL"))
    list_id = created.list.list_id
    assert created.list.processing_type == "MANUAL"
    first, second = _contact(writer, "m1@example.com"), _contact(writer, "m2@example.com")
    added = writer.crm.lists.memberships_api.add(list_id, [first, "999999999"])
    assert added.records_ids_added == [first]
    assert added.record_ids_missing == ["999999999"]
    # already a member: in no array
    again = writer.crm.lists.memberships_api.add(list_id, [first])
    assert (again.records_ids_added, again.record_ids_removed, again.record_ids_missing) == ([], [], [])
    swapped = writer.crm.lists.memberships_api.add_and_remove(
        list_id, MembershipChangeRequest(record_ids_to_add=[second], record_ids_to_remove=[first]))
    assert (swapped.records_ids_added, swapped.record_ids_removed) == ([second], [first])
    page = writer.crm.lists.memberships_api.get_page(list_id)
    assert [m.record_id for m in page.results] == [second]
    removed = writer.crm.lists.memberships_api.remove(list_id, [second])
    assert removed.record_ids_removed == [second]


def test_a_dynamic_list_refuses_membership_writes(writer):
    created = writer.crm.lists.lists_api.create(ListCreateRequest(
        name="Everyone in Berlin", object_type_id="0-1", processing_type="DYNAMIC"))
    contact = _contact(writer, "dyn@example.com")
    with pytest.raises(ListsApiException) as refused:
        writer.crm.lists.memberships_api.add(created.list.list_id, [contact])
    assert refused.value.status == 400
    body = json.loads(refused.value.body)
    assert body["category"] == "VALIDATION_ERROR"
    assert "DYNAMIC" in body["message"]


def test_list_writes_need_read_and_write_list_scopes(sandbox_url, control):
    only_write = control.token(WRITE_SCOPES + ["crm.lists.write"])["access_token"]
    client = hubspot.Client.create(access_token=only_write, host=sandbox_url)
    with pytest.raises(ListsApiException) as forbidden:
        client.crm.lists.memberships_api.add("1", ["1"])
    assert forbidden.value.status == 403
    body = json.loads(forbidden.value.body)
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.lists.read"]


def test_date_properties_take_midnight_utc_and_datetimes_any_instant(writer, control):
    control.call("PUT", "/properties/contacts/jobtitle/type", {"type": "date"})
    control.call("PUT", "/properties/contacts/company/type", {"type": "datetime"})
    ok = writer.crm.contacts.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(properties={
            "email": "dates@example.com", "jobtitle": "2015-05-01", "company": "2015-05-01T10:30:00Z"}),
    )
    assert ok.properties["jobtitle"] == "2015-05-01"
    with pytest.raises(ApiException) as invalid:
        writer.crm.contacts.basic_api.create(
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(properties={
                "email": "dates2@example.com", "jobtitle": "1635535865", "company": "2025-10-23"}),
        )
    assert invalid.value.status == 400
    errors = {e["context"]["propertyName"][0]: e for e in json.loads(invalid.value.body)["errors"]}
    assert errors["jobtitle"]["code"] == "INVALID_DATE"
    assert errors["jobtitle"]["message"] == "1635535865 is at 22:18:55.865 UTC, not midnight!"
    assert errors["company"]["code"] == "INVALID_LONG"
