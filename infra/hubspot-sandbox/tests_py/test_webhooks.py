"""Webhooks the sandbox delivers pass the official client's signature validator."""

from hubspot.utils.signature import Signature


def _deliver(control, url, legacy):
    control.call("PUT", "/webhooks", {"target_url": url, "legacy_signature": legacy})
    company = control.call("POST", "/objects/companies", {"properties": {"name": "Café Zürich GmbH"}})
    control.call("PATCH", f"/objects/companies/{company['id']}", {"properties": {"lifecyclestage": "customer"}})
    control.call("DELETE", f"/objects/companies/{company['id']}")
    report = control.call("POST", "/webhooks/flush")
    assert report["delivered"] >= 4
    return company["id"]


def test_v3_and_v1_signatures_validate(control, app, receiver):
    url, received = receiver
    company_id = _deliver(control, url, "v1")
    assert received
    for headers, body in received:
        text = body.decode("utf-8")
        assert Signature.is_valid(
            signature=headers["X-HubSpot-Signature-v3"], client_secret=app["client_secret"],
            request_body=text, http_uri=url, http_method="POST", signature_version="v3",
            timestamp=headers["X-HubSpot-Request-Timestamp"],
        )
        assert headers["X-HubSpot-Signature-Version"] == "v1"
        assert Signature.is_valid(
            signature=headers["X-HubSpot-Signature"], client_secret=app["client_secret"],
            request_body=text, signature_version="v1",
        )
        assert not Signature.is_valid(
            signature=headers["X-HubSpot-Signature"], client_secret="wrong-secret",
            request_body=text, signature_version="v1",
        )
    import json
    events = [e for _, body in received for e in json.loads(body)]
    types = [e["subscriptionType"] for e in events]
    assert types[0] == "company.creation"
    assert "company.deletion" in types
    assert all(e["portalId"] == app["portal_id"] and e["appId"] == app["app_id"] for e in events)
    assert all(e["objectId"] == int(company_id) for e in events)


def test_v2_signatures_validate(control, app, receiver):
    url, received = receiver
    _deliver(control, url, "v2")
    for headers, body in received:
        assert headers["X-HubSpot-Signature-Version"] == "v2"
        assert Signature.is_valid(
            signature=headers["X-HubSpot-Signature"], client_secret=app["client_secret"],
            request_body=body.decode("utf-8"), http_uri=url, http_method="POST", signature_version="v2",
        )
