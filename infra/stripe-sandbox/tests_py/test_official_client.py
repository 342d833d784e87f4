"""The official `stripe` Python client (v16) against the sandbox: where they disagree, the sandbox is wrong."""

import http.server
import json
import threading
import urllib.parse
import urllib.request

import pytest
import stripe

from conftest import CLIENT_ID, PLATFORM_KEY, READ_ONLY_KEY


def test_auto_paging_walks_every_customer_across_pages(fresh):
    report = fresh.control("POST", "/seed", {"customers": 27})
    seen = [c.id for c in stripe.Customer.list(limit=10).auto_paging_iter()]
    assert len(seen) == 27
    assert set(seen) == {c["id"] for c in report["customers"]}
    created = [c.created for c in stripe.Customer.list(limit=100).data]
    assert created == sorted(created, reverse=True)


def test_auto_paging_backwards_with_ending_before(fresh):
    fresh.control("POST", "/seed", {"customers": 12})
    oldest = stripe.Customer.list(limit=100).data[-1]
    newer = [c.id for c in stripe.Customer.list(limit=5, ending_before=oldest.id).auto_paging_iter()]
    assert len(newer) == 11


def test_subscriptions_list_all_statuses_with_expanded_discounts(fresh):
    fresh.control("POST", "/seed", {"customers": 60})
    client = stripe.StripeClient(PLATFORM_KEY, base_addresses={"api": fresh.base_url})
    subs = list(client.v1.subscriptions.list({"status": "all", "limit": 100, "expand": ["data.discounts"]}).auto_paging_iter())
    statuses = {s.status for s in subs}
    assert {"active", "canceled", "trialing", "past_due"} <= statuses
    default = list(stripe.Subscription.list(limit=100).auto_paging_iter())
    assert all(s.status != "canceled" for s in default)
    discounted = [s for s in subs if s.discounts]
    assert discounted and discounted[0].discounts[0].object == "discount"
    item = subs[0]["items"]["data"][0]
    assert item.price.object == "price" and item.current_period_end >= item.current_period_start


def test_a_deleted_customer_retrieves_as_deleted(fresh):
    customer = stripe.Customer.create(name="Gone Inc", email="ap@gone.test", metadata={"hubspot_id": "9"})
    assert customer.metadata["hubspot_id"] == "9"
    deleted = stripe.Customer.delete(customer.id)
    assert deleted.deleted is True
    again = stripe.Customer.retrieve(customer.id)
    assert again.deleted is True and again.id == customer.id
    assert customer.id not in [c.id for c in stripe.Customer.list(limit=100).auto_paging_iter()]


def test_a_rate_limited_request_raises_rate_limit_error(fresh):
    fresh.control("PUT", "/faults", {"rate_limit_burst": 1})
    with pytest.raises(stripe.RateLimitError) as err:
        stripe.Customer.list()
    assert err.value.http_status == 429
    assert err.value.json_body["error"]["code"] == "rate_limit"
    assert err.value.headers["stripe-rate-limited-reason"] == "global-rate"
    assert err.value.request_id.startswith("req_")
    assert stripe.Customer.list().object == "list"


def test_errors_map_to_the_official_exception_classes(fresh):
    with pytest.raises(stripe.AuthenticationError):
        stripe.Customer.list(api_key="sk_test_wrong")
    with pytest.raises(stripe.PermissionError) as perm:
        stripe.Customer.create(name="x", api_key=READ_ONLY_KEY)
    assert "rak_customer_write" in perm.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe.Customer.retrieve("cus_nope")
    assert missing.value.code == "resource_missing" and missing.value.param == "id"
    with pytest.raises(stripe.InvalidRequestError) as deep:
        stripe.Subscription.list(expand=["data.items.data.price.product"])
    assert "4 levels" in deep.value.user_message
    with pytest.raises(stripe.IdempotencyError):
        stripe.Customer.create(name="a", idempotency_key="same")
        stripe.Customer.create(name="b", idempotency_key="same")


def test_server_errors_raise_api_error(fresh):
    fresh.control("PUT", "/faults", {"server_error_rate": 1.0, "server_error_should_retry": False})
    with pytest.raises(stripe.APIError) as err:
        stripe.Customer.list()
    assert err.value.http_status == 500


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["content-length"]))
        _Receiver.received.append((self.headers["stripe-signature"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_delivered_webhooks_pass_construct_event_with_either_rotated_secret(fresh):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received = []
    try:
        fresh.control(
            "PUT",
            "/webhooks",
            {
                "url": f"http://127.0.0.1:{server.server_port}/hook",
                "secrets": ["whsec_new_secret", "whsec_old_secret"],
                "auto_deliver": False,
            },
        )
        customer = stripe.Customer.create(name="Zoë Ltd")
        stripe.Customer.modify(customer.id, metadata={"tier": "gold"})
        stripe.Customer.delete(customer.id)
        report = fresh.control("POST", "/webhooks/flush", {})
        assert [d["type"] for d in report["delivered"]] == ["customer.created", "customer.updated", "customer.deleted"]
        assert len(_Receiver.received) == 3
        for header, body in _Receiver.received:
            for secret in ("whsec_new_secret", "whsec_old_secret"):
                event = stripe.Webhook.construct_event(body, header, secret)
                assert event.data.object.id == customer.id
            with pytest.raises(stripe.SignatureVerificationError):
                stripe.Webhook.construct_event(body, header, "whsec_someone_else")
        updated = json.loads(_Receiver.received[1][1])
        assert updated["data"]["previous_attributes"] == {"metadata": {"tier": None}}
    finally:
        server.shutdown()


def test_events_list_filters_by_type_and_created(fresh):
    customer = stripe.Customer.create(name="Evented")
    stripe.Customer.modify(customer.id, name="Evented 2")
    events = list(stripe.Event.list(types=["customer.updated"], created={"gte": 0}).auto_paging_iter())
    assert [e.type for e in events] == ["customer.updated"]
    assert events[0].data.previous_attributes["name"] == "Evented"
    assert stripe.Event.retrieve(events[0].id).id == events[0].id


def _authorize(base_url: str, **extra) -> dict:
    url = stripe.OAuth.authorize_url(client_id=CLIENT_ID, scope="read_write", state="csrf-1", redirect_uri="http://app.test/cb", **extra)
    assert url.startswith(base_url + "/oauth/authorize?")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url)
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 302
        location = redirect.headers["location"]
        return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(location).query))
    raise AssertionError("no redirect")


def test_oauth_token_exchange_refresh_rotation_and_deauthorize(fresh):
    params = _authorize(fresh.base_url)
    assert params["state"] == "csrf-1" and params["code"].startswith("ac_")
    token = stripe.OAuth.token(grant_type="authorization_code", code=params["code"])
    assert token.token_type == "bearer" and token.scope == "read_write" and token.livemode is False
    account = token.stripe_user_id
    with pytest.raises(stripe.oauth_error.InvalidGrantError):
        stripe.OAuth.token(grant_type="authorization_code", code=params["code"])
    rotated = stripe.OAuth.token(grant_type="refresh_token", refresh_token=token.refresh_token)
    assert rotated.refresh_token != token.refresh_token
    with pytest.raises(stripe.oauth_error.InvalidGrantError):
        stripe.OAuth.token(grant_type="refresh_token", refresh_token=token.refresh_token)
    tenant = stripe.Customer.create(name="Tenant Co", api_key=rotated.access_token)
    seen = stripe.Customer.retrieve(tenant.id, stripe_account=account)
    assert seen.name == "Tenant Co"
    assert stripe.OAuth.deauthorize(client_id=CLIENT_ID, stripe_user_id=account).stripe_user_id == account
    with pytest.raises(stripe.AuthenticationError):
        stripe.Customer.list(api_key=rotated.access_token)
    with pytest.raises(stripe.PermissionError):
        stripe.Customer.list(stripe_account=account)


def test_oauth_unsupported_grant_type_maps_to_its_error(fresh):
    with pytest.raises(stripe.oauth_error.UnsupportedGrantTypeError):
        stripe.OAuth.token(grant_type="password", code="x")


def test_seeding_explicit_companies_for_hubspot_matching(fresh):
    companies = [
        {"name": "Acme Corp", "email": "billing@acme.test", "metadata": {"hubspot_company_id": "101"}},
        {"name": "Globex", "email": "ap@globex.test", "metadata": {"hubspot_company_id": "102"}},
    ]
    report = fresh.control("POST", "/seed", {"companies": companies})
    assert [c["name"] for c in report["customers"]] == ["Acme Corp", "Globex"]
    found = stripe.Customer.search(query="metadata['hubspot_company_id']:'102'")
    assert [c.email for c in found.data] == ["ap@globex.test"]
    by_email = stripe.Customer.list(email="billing@acme.test").data
    assert [c.metadata["hubspot_company_id"] for c in by_email] == ["101"]
