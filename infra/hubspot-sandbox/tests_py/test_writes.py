"""The official hubspot-api-client's write calls against the sandbox: create, update,
archive, the batch forms, upsert by email, HubSpot's error bodies and write scopes, and
the webhooks our own writes cause."""

import json

import hubspot
import pytest
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException

READ_SCOPES = [
    "oauth", "crm.objects.companies.read", "crm.objects.contacts.read",
    "crm.schemas.companies.read", "crm.schemas.contacts.read",
]
WRITE_SCOPES = READ_SCOPES + ["crm.objects.contacts.write", "crm.objects.companies.write"]


@pytest.fixture
def writer(sandbox_url, control):
    token = control.token(WRITE_SCOPES)["access_token"]
    return hubspot.Client.create(access_token=token, host=sandbox_url)


def _body(error: ApiException) -> dict:
    return json.loads(error.body)


def test_a_contact_is_created_updated_by_email_and_archived(writer):
    created = writer.crm.contacts.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
            properties={"email": "a+x@example.com", "firstname": "Ada", "lifecyclestage": "lead"},
        ),
    )
    assert created is not None, "a 201 the client did not expect returns None"
    assert created.properties["email"] == "a+x@example.com"
    assert created.properties["hs_object_id"] == created.id
    # the client percent-encodes the email in the path
    updated = writer.crm.contacts.basic_api.update(
        contact_id="a+x@example.com", id_property="email",
        simple_public_object_input=SimplePublicObjectInput(properties={"lastname": "Lovelace"}),
    )
    assert updated.id == created.id
    assert updated.properties["lastname"] == "Lovelace"
    read = writer.crm.contacts.basic_api.get_by_id(contact_id=created.id, properties=["lastname"])
    assert read.properties["lastname"] == "Lovelace"
    assert writer.crm.contacts.basic_api.archive(contact_id=created.id) is None
    # archiving again, or an id that never existed, is still a 204
    writer.crm.contacts.basic_api.archive(contact_id=created.id)
    writer.crm.contacts.basic_api.archive(contact_id="999999999")
    with pytest.raises(ApiException) as gone:
        writer.crm.contacts.basic_api.get_by_id(contact_id=created.id)
    assert gone.value.status == 404


def test_a_second_contact_with_the_same_email_is_a_409_naming_the_first(writer):
    first = writer.crm.contacts.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
            properties={"email": "dup@example.com"}),
    )
    with pytest.raises(ApiException) as conflict:
        writer.crm.contacts.basic_api.create(
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
                properties={"email": "DUP@example.com"}),
        )
    assert conflict.value.status == 409
    body = _body(conflict.value)
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {first.id}"


def test_every_invalid_property_is_listed_in_one_validation_error(writer):
    with pytest.raises(ApiException) as invalid:
        writer.crm.contacts.basic_api.create(
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(properties={
                "email": "example.lcom",
                "lifecyclestage": "Nope",
                "no_such_property": "x",
                "hs_object_id": "5",
            }),
        )
    assert invalid.value.status == 400
    body = _body(invalid.value)
    assert body["category"] == "VALIDATION_ERROR"
    codes = {e["context"]["propertyName"][0]: e["code"] for e in body["errors"]}
    assert codes == {
        "email": "INVALID_EMAIL",
        "lifecyclestage": "INVALID_OPTION",
        "no_such_property": "PROPERTY_DOESNT_EXIST",
        "hs_object_id": "READ_ONLY_VALUE",
    }
    # the older form: the same details as JSON inside the message
    prefix = "Property values were not valid: "
    assert body["message"].startswith(prefix)
    details = json.loads(body["message"][len(prefix):])
    assert {d["name"]: d["error"] for d in details} == codes
    assert 'value: "customer"' in next(d["message"] for d in details if d["name"] == "lifecyclestage")


def test_batch_upsert_by_email_creates_and_updates(writer):
    writer.crm.contacts.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
            properties={"email": "old@example.com", "firstname": "Old"}),
    )
    batch = BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        SimplePublicObjectBatchInputUpsert(id="old@example.com", id_property="email",
                                           properties={"firstname": "Renamed"}),
        SimplePublicObjectBatchInputUpsert(id="new@example.com", id_property="email",
                                           properties={"firstname": "New"}),
    ])
    answer = writer.crm.contacts.batch_api.upsert(batch_input_simple_public_object_batch_input_upsert=batch)
    assert answer is not None
    assert answer.status == "COMPLETE"
    by_email = {r.properties["email"]: r for r in answer.results}
    assert by_email["old@example.com"].new is False
    assert by_email["old@example.com"].properties["firstname"] == "Renamed"
    assert by_email["new@example.com"].new is True


def test_an_untraced_upsert_with_one_bad_key_writes_nothing(writer):
    batch = BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        SimplePublicObjectBatchInputUpsert(id="fine@example.com", id_property="email",
                                           properties={"firstname": "Fine"}),
        SimplePublicObjectBatchInputUpsert(id="not-an-email", id_property="email",
                                           properties={"firstname": "Bad"}),
    ])
    with pytest.raises(ApiException) as refused:
        writer.crm.contacts.batch_api.upsert(batch_input_simple_public_object_batch_input_upsert=batch)
    assert refused.value.status == 400
    assert [e["code"] for e in _body(refused.value)["errors"]] == ["INVALID_EMAIL"]
    with pytest.raises(ApiException):
        writer.crm.contacts.basic_api.get_by_id(contact_id="fine@example.com", id_property="email")


def test_batch_create_with_trace_ids_reports_each_failure_in_a_207(writer):
    batch = BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        SimplePublicObjectBatchInputForCreate(properties={"email": "ok@example.com"},
                                         object_write_trace_id="t-ok"),
        SimplePublicObjectBatchInputForCreate(properties={"missing": "x"}, object_write_trace_id="t-bad"),
    ])
    answer = writer.crm.contacts.batch_api.create(batch_input_simple_public_object_batch_input_for_create=batch)
    assert answer.num_errors == 1
    assert [r.properties["email"] for r in answer.results] == ["ok@example.com"]
    assert answer.errors[0].context == {"objectWriteTraceId": ["t-bad"]}
    # without trace ids one bad input fails the request and nothing is created
    untraced = BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        SimplePublicObjectBatchInputForCreate(properties={"email": "kept-out@example.com"}),
        SimplePublicObjectBatchInputForCreate(properties={"missing": "x"}),
    ])
    with pytest.raises(ApiException) as refused:
        writer.crm.contacts.batch_api.create(batch_input_simple_public_object_batch_input_for_create=untraced)
    assert refused.value.status == 400
    with pytest.raises(ApiException):
        writer.crm.contacts.basic_api.get_by_id(contact_id="kept-out@example.com", id_property="email")


def test_batch_update_refuses_email_as_the_id_property(writer, app):
    batch = BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id="a@example.com", id_property="email", properties={"firstname": "A"}),
    ])
    with pytest.raises(ApiException) as refused:
        writer.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input=batch)
    assert refused.value.status == 400
    assert _body(refused.value)["message"] == (
        f"Unable to perform update/upsert by non-unique 0-1 property email in portal ID {app['portal_id']}"
    )


def test_a_write_without_the_write_scope_is_a_403_naming_it(sandbox_url, control):
    reader = hubspot.Client.create(access_token=control.token(READ_SCOPES)["access_token"], host=sandbox_url)
    with pytest.raises(ApiException) as forbidden:
        reader.crm.contacts.basic_api.create(
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
                properties={"email": "no@example.com"}),
        )
    assert forbidden.value.status == 403
    body = _body(forbidden.value)
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.write"]


def test_our_own_writes_come_back_marked_as_the_app_s(writer, control, app, receiver):
    url, received = receiver
    control.call("PUT", "/webhooks", {"target_url": url})
    created = writer.crm.contacts.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
            properties={"email": "echo@example.com"}),
    )
    control.call("POST", "/webhooks/flush")
    events = [e for _, body in received for e in json.loads(body)]
    ours = [e for e in events if e["objectId"] == int(created.id)]
    assert any(e["subscriptionType"] == "contact.creation" for e in ours)
    assert all(e["changeSource"] == "INTEGRATION" and e["sourceId"] == str(app["app_id"]) for e in ours)


def test_property_history_shows_each_propertys_last_write_and_its_source(writer, control):
    """Two-way sync reads `propertiesWithHistory`: the official client asks for it and the
    sandbox answers the latest write of each property, when and by what."""
    created = writer.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "hist@newco.io", "firstname": "Lea"})
    )
    control.call("PATCH", f"/objects/contacts/{created.id}", {"properties": {"firstname": "Leah"}})
    read = writer.crm.contacts.basic_api.get_by_id(
        created.id, properties=["firstname"], properties_with_history=["firstname", "email"]
    )
    first = read.properties_with_history["firstname"]
    assert [h.value for h in first] == ["Leah"]
    assert first[0].source_type == "CRM_UI"
    assert first[0].timestamp >= read.created_at
    assert read.properties_with_history["email"][0].source_type == "INTEGRATION"
    writer.crm.contacts.basic_api.update(
        created.id, SimplePublicObjectInput(properties={"firstname": "Lee"})
    )
    batch = writer.crm.contacts.batch_api.read(
        {"inputs": [{"id": created.id}], "properties": ["firstname"],
         "propertiesWithHistory": ["firstname"]}
    )
    history = batch.results[0].properties_with_history["firstname"]
    assert history[0].value == "Lee" and history[0].source_type == "INTEGRATION"
