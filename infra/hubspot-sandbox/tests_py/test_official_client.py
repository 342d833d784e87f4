"""The official hubspot-api-client (12.0.0) against the sandbox: where they disagree, the sandbox is wrong."""

import json
import urllib.error
import urllib.parse
import urllib.request

import hubspot
import pytest
from hubspot.crm.companies import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)
from hubspot.crm.companies.exceptions import ApiException, ForbiddenException, UnauthorizedException

from conftest import COMPANIES


def test_get_all_pages_through_every_company(client):
    companies = client.crm.companies.get_all(properties=["name", "domain"])
    ids = [c.id for c in companies]
    assert len(ids) == COMPANIES
    assert len(set(ids)) == COMPANIES
    assert all(c.properties["hs_object_id"] == c.id for c in companies)


def test_get_page_returns_an_after_cursor_until_the_last_page(client):
    page = client.crm.companies.basic_api.get_page(limit=100, properties=["name"])
    assert len(page.results) == 100
    assert page.paging.next.after
    last = client.crm.companies.basic_api.get_page(limit=100, after=str(1_000_001 + 200))
    assert len(last.results) == COMPANIES - 200
    assert last.paging is None


def test_batch_read_returns_the_requested_companies(client):
    wanted = [str(1_000_001 + i) for i in (0, 5, 9)]
    batch = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in wanted], properties=["name", "annualrevenue"],
        properties_with_history=[],
    )
    answer = client.crm.companies.batch_api.read(batch_read_input_simple_public_object_id=batch)
    assert answer.status == "COMPLETE"
    assert sorted(r.id for r in answer.results) == sorted(wanted)
    assert all("name" in r.properties for r in answer.results)


def test_search_filters_by_modified_date_and_pages_by_offset(client):
    request = PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[
            Filter(property_name="hs_lastmodifieddate", operator="GTE", value="1714521600000"),
        ])],
        sorts=["hs_object_id"], properties=["name"], limit=50, after="0",
    )
    first = client.crm.companies.search_api.do_search(public_object_search_request=request)
    assert first.total > 50
    assert first.paging.next.after == "50"


def test_properties_are_readable_with_their_options(client):
    everything = client.crm.properties.core_api.get_all(object_type="companies")
    names = {p.name for p in everything.results}
    assert {"name", "domain", "annualrevenue", "lifecyclestage", "hs_lastmodifieddate"} <= names
    stage = client.crm.properties.core_api.get_by_name(object_type="companies", property_name="lifecyclestage")
    assert stage.type == "enumeration"
    assert "customer" in [o.value for o in stage.options]


def test_owners_and_v4_associations_parse(client):
    owners = client.crm.owners.owners_api.get_page(limit=100)
    assert len(owners.results) == 8
    contact = client.crm.contacts.basic_api.get_page(limit=100, properties=["associatedcompanyid"]).results
    with_company = next(c for c in contact if c.properties.get("associatedcompanyid"))
    page = client.crm.associations.v4.basic_api.get_page(
        object_type="contacts", object_id=with_company.id, to_object_type="companies", limit=500)
    assert with_company.properties["associatedcompanyid"] in [r.to_object_id for r in page.results]


def _authorize(base_url, app, redirect_uri, scope):
    query = urllib.parse.urlencode({"client_id": app["client_id"], "redirect_uri": redirect_uri,
                                    "scope": scope, "state": "st4te"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(f"{base_url}/oauth/authorize?{query}")
    assert redirect.value.code == 302
    location = urllib.parse.urlparse(redirect.value.headers["Location"])
    params = dict(urllib.parse.parse_qsl(location.query))
    assert params["state"] == "st4te"
    return params["code"]


def test_an_oauth_code_is_exchanged_refreshed_and_introspected(sandbox_url, control, app):
    redirect_uri = "http://localhost:8400/oauth/callback"
    code = _authorize(sandbox_url, app, redirect_uri, "oauth crm.objects.companies.read")
    oauth = hubspot.Client.create(host=sandbox_url).oauth
    tokens = oauth.tokens_api.create(grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
                                     client_id=app["client_id"], client_secret=app["client_secret"])
    assert tokens.token_type == "bearer"
    assert tokens.expires_in == 1800
    info = oauth.access_tokens_api.get(token=tokens.access_token)
    assert info.hub_id == app["portal_id"]
    assert info.app_id == app["app_id"]
    assert info.scopes == ["oauth", "crm.objects.companies.read"]
    refreshed = oauth.tokens_api.create(grant_type="refresh_token", refresh_token=tokens.refresh_token,
                                        client_id=app["client_id"], client_secret=app["client_secret"])
    assert refreshed.refresh_token == tokens.refresh_token
    assert refreshed.access_token != tokens.access_token
    refresh_info = oauth.refresh_tokens_api.get(token=tokens.refresh_token)
    assert refresh_info.hub_id == app["portal_id"]


def test_a_revoked_refresh_token_is_bad_refresh_token(sandbox_url, control, app):
    grant = control.token()
    control.call("POST", "/tokens/revoke", {})
    oauth = hubspot.Client.create(host=sandbox_url).oauth
    with pytest.raises(hubspot.oauth.ApiException) as failure:
        oauth.tokens_api.create(grant_type="refresh_token", refresh_token=grant["refresh_token"],
                                client_id=app["client_id"], client_secret=app["client_secret"])
    assert failure.value.status == 400
    body = json.loads(failure.value.body)
    assert body["error"] == "invalid_grant"
    assert body["status"] == "BAD_REFRESH_TOKEN"


def test_a_bad_token_raises_unauthorized(sandbox_url, control):
    client = hubspot.Client.create(access_token="not-a-token", host=sandbox_url)
    with pytest.raises(UnauthorizedException) as failure:
        client.crm.companies.basic_api.get_page()
    assert json.loads(failure.value.body)["category"] == "INVALID_AUTHENTICATION"


def test_an_expired_token_raises_unauthorized_with_expired_authentication(client, control):
    control.call("POST", "/tokens/expire")
    with pytest.raises(UnauthorizedException) as failure:
        client.crm.companies.basic_api.get_page()
    assert json.loads(failure.value.body)["category"] == "EXPIRED_AUTHENTICATION"


def test_a_removed_scope_raises_forbidden(client, control):
    control.call("POST", "/scopes/remove", {"scope": "crm.objects.companies.read"})
    with pytest.raises(ForbiddenException) as failure:
        client.crm.companies.basic_api.get_page()
    assert json.loads(failure.value.body)["category"] == "MISSING_SCOPES"


def test_the_rate_limit_raises_429_with_hubspots_body(client, control):
    # without Retry-After (HubSpot does not always send it) the client gives up at once
    control.call("PUT", "/rate-limits", {"max_per_interval": 2, "send_retry_after": False})
    client.crm.companies.basic_api.get_page()
    client.crm.companies.basic_api.get_page()
    with pytest.raises(ApiException) as failure:
        client.crm.companies.basic_api.get_page()
    assert failure.value.status == 429
    assert failure.value.headers["X-HubSpot-RateLimit-Max"] == "2"
    assert failure.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    body = json.loads(failure.value.body)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["errorType"] == "RATE_LIMIT"
    assert control.call("GET", "/requests")["rate_limited"] == 1


def test_the_client_waits_out_retry_after_and_then_succeeds(client, control):
    # urllib3 (under the official client) honours Retry-After on a 429
    control.call("PUT", "/rate-limits", {"max_per_interval": 2, "interval_ms": 1000})
    for _ in range(3):
        client.crm.companies.basic_api.get_page()
    counts = control.call("GET", "/requests")
    assert counts["rate_limited"] == 1
    assert counts["by_status"]["200"] == 3
