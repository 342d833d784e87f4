"""Sandbox responses validate against HubSpot's own OpenAPI response schemas."""

import json
import urllib.error
import urllib.request

import pytest
from jsonschema import Draft202012Validator

from conftest import SPEC_DIR

pytestmark = pytest.mark.skipif(not SPEC_DIR.is_dir(), reason=f"HubSpot OpenAPI specs not found at {SPEC_DIR}")


def _validator(spec_file, schema_name):
    spec = json.loads((SPEC_DIR / spec_file).read_text())
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    return Draft202012Validator(schema)


def _get(base_url, token, path, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{base_url}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


CASES = [
    ("CRM_Companies_424_v3_companies.json", "CollectionResponseSimplePublicObjectWithAssociationsForwardPaging",
     "GET", "/crm/v3/objects/companies?limit=5&associations=contacts&properties=name,domain", None, 200),
    ("CRM_Companies_424_v3_companies.json", "SimplePublicObjectWithAssociations",
     "GET", "/crm/v3/objects/companies/1000001", None, 200),
    ("CRM_Companies_424_v3_companies.json", "BatchResponseSimplePublicObject",
     "POST", "/crm/v3/objects/companies/batch/read", {"inputs": [{"id": "1000001"}], "properties": ["name"]}, 200),
    ("CRM_Companies_424_v3_companies.json", "BatchResponseSimplePublicObjectWithErrors",
     "POST", "/crm/v3/objects/companies/batch/read", {"inputs": [{"id": "1000001"}, {"id": "5"}]}, 207),
    ("CRM_Companies_424_v3_companies.json", "CollectionResponseWithTotalSimplePublicObject",
     "POST", "/crm/v3/objects/companies/search", {"limit": 3}, 200),
    ("CRM_Contacts_424_v3_contacts.json", "CollectionResponseSimplePublicObjectWithAssociationsForwardPaging",
     "GET", "/crm/v3/objects/contacts?limit=5&associations=companies", None, 200),
    ("CRM_Properties_145899_v3_properties.json", "CollectionResponsePropertyNoPaging",
     "GET", "/crm/v3/properties/companies", None, 200),
    ("CRM_Properties_145899_v3_properties.json", "Property",
     "GET", "/crm/v3/properties/contacts/lifecyclestage", None, 200),
    ("CRM_Crm_Owners_146888_v3_crmOwners.json", "CollectionResponsePublicOwnerForwardPaging",
     "GET", "/crm/v3/owners?limit=3", None, 200),
    ("CRM_Lists_144891_v3_lists.json", "ListFetchResponse", "GET", "/crm/v3/lists/1", None, 200),
    ("CRM_Lists_144891_v3_lists.json", "ApiCollectionResponseJoinTimeAndRecordId",
     "GET", "/crm/v3/lists/1/memberships?limit=10", None, 200),
    ("CRM_Lists_144891_v3_lists.json", "ListSearchResponse", "POST", "/crm/v3/lists/search", {"count": 2}, 200),
    ("CRM_Associations_130902_v4_associations.json", "CollectionResponseMultiAssociatedObjectWithLabelForwardPaging",
     "GET", "/crm/v4/objects/companies/1000002/associations/contacts", None, 200),
    ("pipelines.json", "CollectionResponsePipelineNoPaging", "GET", "/crm/v3/pipelines/deals", None, 200),
]


@pytest.mark.parametrize("spec_file,schema,method,path,body,status", CASES, ids=[c[1] + " " + c[3] for c in CASES])
def test_responses_match_hubspots_schemas(sandbox_url, control, spec_file, schema, method, path, body, status):
    token = control.token()["access_token"]
    got_status, payload = _get(sandbox_url, token, path, method, body)
    assert got_status == status, payload
    _validator(spec_file, schema).validate(payload)


def test_error_bodies_match_the_error_schema(sandbox_url, control):
    status, payload = _get(sandbox_url, None, "/crm/v3/objects/companies")
    assert status == 401
    _validator("CRM_Companies_424_v3_companies.json", "Error").validate(payload)


def test_token_info_matches_the_oauth_schema(sandbox_url, control):
    token = control.token()["access_token"]
    status, payload = _get(sandbox_url, None, f"/oauth/v1/access-tokens/{token}")
    assert status == 200
    _validator("Auth_Oauth_155908_v1_oauth.json", "AccessTokenInfoResponse").validate(payload)


def test_token_endpoint_answers_match_the_oauth_schema(sandbox_url, control, app):
    import urllib.parse

    grant = control.token()
    form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": grant["refresh_token"],
                                   "client_id": app["client_id"], "client_secret": app["client_secret"]}).encode()
    request = urllib.request.Request(f"{sandbox_url}/oauth/v1/token", data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    _validator("Auth_Oauth_155908_v1_oauth.json", "AccessTokenResponse").validate(payload)
    status, info = _get(sandbox_url, None, f"/oauth/v1/refresh-tokens/{grant['refresh_token']}")
    assert status == 200
    _validator("Auth_Oauth_155908_v1_oauth.json", "RefreshTokenInfoResponse").validate(info)
