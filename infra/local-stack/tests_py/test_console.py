"""The admin console in a real headless Chromium, on the local stack: the troubleshooting
flow of the help pages, sign-in, CSRF and tenant isolation."""

import re

from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

from conftest import eventually


def panel(browser, provider):
    """The Integrations panel of `provider` (HubSpot or Stripe)."""
    for section in browser.find_elements(By.CSS_SELECTOR, "section.panel"):
        if section.find_element(By.TAG_NAME, "h2").text == provider:
            return section
    raise AssertionError(f"no {provider} panel")


def banner(browser, provider):
    return panel(browser, provider).find_element(By.CSS_SELECTOR, ".banner").get_attribute("data-status")


def click(scope, label):
    """Clicks the button or link labelled `label` and waits for the page it leads to."""
    for element in scope.find_elements(By.CSS_SELECTOR, "button, a"):
        if element.text.strip() == label:
            element.click()
            WebDriverWait(element.parent, 20).until(left_behind(element))
            return
    raise AssertionError(f"nothing labelled {label!r}")


def left_behind(element):
    """True once `element`'s page is gone (Chromium may answer a node of a page being torn
    down with an inspector error rather than a stale reference: both mean gone)."""
    def check(_driver):
        try:
            element.is_enabled()
            return False
        except WebDriverException:
            return True
    return check


def integrations_shows(browser, stack, provider, status):
    def check():
        browser.get(f"{stack.base}/console/integrations")
        return banner(browser, provider) == status
    return check


def open_log(browser, provider, errors_only=False, record=None):
    click(panel(browser, provider), "View log")
    if errors_only:
        box = browser.find_element(By.NAME, "errors_only")
        if not box.is_selected():
            box.click()
    if record is not None:
        field = browser.find_element(By.NAME, "record")
        field.clear()
        field.send_keys(record)
    if errors_only or record is not None:
        click(browser, "Filter")


def forget_session(browser, stack):
    """Drops the session cookie (visible only under /console, so go there first)."""
    browser.get(f"{stack.base}/console/sign-in")
    browser.delete_all_cookies()


def log_rows(browser):
    return [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in browser.find_elements(By.CSS_SELECTOR, "table.log tbody tr")
    ]


def test_the_troubleshooting_flow(stack, browser, shot):
    # 1. Signed in through the one-time link: HubSpot is Connected.
    browser.get(stack.sign_in_link)
    assert browser.current_url.endswith("/console/integrations")
    assert banner(browser, "HubSpot") == "Connected"
    assert banner(browser, "Stripe") == "Connected"
    shot("integrations-connected")

    # The nightly full sync's time, set on the panel (a quarter hour, UTC).
    field = panel(browser, "HubSpot").find_element(By.NAME, "nightly_at")
    assert field.get_attribute("value") == "02:00"
    browser.execute_script("arguments[0].value = '03:15'", field)
    click(panel(browser, "HubSpot"), "Save time")
    assert "Saved" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    assert panel(browser, "HubSpot").find_element(By.NAME, "nightly_at").get_attribute("value") == "03:15"
    hubspot_view = next(c for c in stack.admin("GET", "/admin/connections")["connections"]
                        if c["provider"] == "hubspot")
    assert hubspot_view["nightly_at"] == "03:15"

    # 2. The app is uninstalled at HubSpot; the next change's job is refused there.
    stack.sandbox_call("POST", "/tokens/revoke", {})
    company = stack.sandbox_call("POST", "/objects/companies", {
        "properties": {"name": "Revoked Window Ltd", "domain": "revoked-window.example"},
    })["id"]
    eventually(integrations_shows(browser, stack, "HubSpot", "Reauthorize"), what="Reauthorize")
    assert "Reauthorize" in panel(browser, "HubSpot").text
    shot("integrations-reauthorize")
    # The bell counts the incident; the feed names it and leads to the integration.
    bell = browser.find_element(By.CSS_SELECTOR, "header a.bell")
    assert int(bell.find_element(By.CSS_SELECTOR, ".count").text) >= 1, bell.text
    bell.click()
    eventually(lambda: browser.current_url.endswith("/console/notifications"), what="the feed")
    broken = [n for n in browser.find_elements(By.CSS_SELECTOR, "li.notification.open")
              if "Connection broken" in n.text]
    assert len(broken) == 1 and "HubSpot" in broken[0].text, \
        browser.find_element(By.TAG_NAME, "main").text
    shot("notifications-open")
    broken[0].find_element(By.CSS_SELECTOR, "h2 a").click()
    eventually(lambda: "/console/integrations#c-" in browser.current_url, what="the integration")
    open_log(browser, "HubSpot", errors_only=True)
    rows = log_rows(browser)
    revoked = [r for r in rows if r[2] == "oauth_revoked" and r[3] == company]
    assert revoked, rows
    shot("log-errors-only")
    for row in browser.find_elements(By.CSS_SELECTOR, "table.log tbody tr"):
        if row.find_elements(By.TAG_NAME, "td")[3].text == company:
            row.find_element(By.TAG_NAME, "a").click()
            break
    fix = browser.find_element(By.CSS_SELECTOR, "section.fix").text
    assert "oauth_revoked" in fix and "Reauthorize" in fix
    row_url = browser.current_url
    shot("log-row-oauth-revoked")

    # 3. Reauthorize through OAuth: the callback brings the admin back, Connected.
    browser.get(f"{stack.base}/console/integrations")
    click(panel(browser, "HubSpot"), "Reauthorize")
    eventually(lambda: "Connected" in browser.find_element(By.TAG_NAME, "h1").text, what="the callback page")
    shot("oauth-callback-connected")
    eventually(lambda: browser.current_url.endswith("/console/integrations")
               and banner(browser, "HubSpot") == "Connected", what="back on Integrations")
    shot("integrations-reconnected")
    # Reconnected, the incident closes by itself; Mark all read empties the bell.
    def closed():
        browser.get(f"{stack.base}/console/notifications")
        return not [n for n in browser.find_elements(By.CSS_SELECTOR, "li.notification.open")
                    if "Connection broken" in n.text]

    eventually(closed, what="the notification closed")
    assert "Closed" in browser.find_element(By.CSS_SELECTOR, "li.notification").text
    click(browser, "Mark all read")
    assert not browser.find_elements(By.CSS_SELECTOR, "header a.bell .count")
    assert not browser.find_elements(By.CSS_SELECTOR, "li.notification.unread")
    shot("notifications-closed-read")

    # 4. Errors only, open the row, Retry this record: the company lands.
    browser.get(row_url)
    click(browser, "Retry this record")
    assert "Sent again" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    shot("log-row-retried")

    def applied():
        browser.get(f"{stack.base}/console/integrations")
        open_log(browser, "HubSpot", record=company)
        return any(r[1] == "Applied" for r in log_rows(browser))

    eventually(applied, what="the retried record applied")
    shot("log-record-applied")

    # 5. Resolve a match: a Stripe customer that matched nothing, linked to a customer.
    browser.get(f"{stack.base}/console/matches")
    shot("matches")
    unmatched = [m for m in browser.find_elements(By.CSS_SELECTOR, "section.match")
                 if "Matches no customer." in m.text]
    assert unmatched, browser.find_element(By.TAG_NAME, "main").text
    open_before = len(browser.find_elements(By.CSS_SELECTOR, "section.match"))
    target = next(c for c in stack.admin("GET", "/admin/customers?limit=100")["items"]
                  if c["domain"] and c.get("billing") is None)
    unmatched[0].find_element(By.NAME, "find").send_keys(target["domain"])
    click(unmatched[0], "Link to")
    assert "Resolved" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.match")) == open_before - 1
    shot("match-resolved")

    def linked_to_stripe():
        browser.get(f"{stack.base}/console/customers/{target['id']}")
        return "Stripe" in browser.find_element(By.CSS_SELECTOR, "table.sources").text

    eventually(linked_to_stripe, what="the Stripe customer linked")
    shot("customer-with-stripe")

    # 7. Resync one customer: a rename whose webhook never came shows after the resync.
    browser.get(f"{stack.base}/console/customers")
    shot("customers")
    search = browser.find_element(By.NAME, "q")
    search.send_keys("revoked-window.example")
    click(browser, "Show")
    click(browser, "Revoked Window Ltd")
    customer_url = browser.current_url
    sources = browser.find_element(By.CSS_SELECTOR, "table.sources").text
    assert "HubSpot" in sources and company in sources
    stack.sandbox_call("PUT", "/faults", {"webhook_drop_rate": 1.0})
    try:
        stack.sandbox_call("PATCH", f"/objects/companies/{company}",
                           {"properties": {"name": "Window Resynced Ltd"}})
    finally:
        stack.sandbox_call("PUT", "/faults", {})
    browser.get(customer_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Revoked Window Ltd"
    browser.find_element(By.CSS_SELECTOR, "details.menu summary").click()
    shot("customer-menu")
    click(browser, "Resync from HubSpot")
    assert "Resynced" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    assert browser.find_element(By.TAG_NAME, "h1").text == "Window Resynced Ltd"
    shot("customer-resynced")

    # 9. Another tenant's admin asks for this row and this customer: not found.
    forget_session(browser, stack)
    browser.get(stack.other_tenant_link)
    assert "No connection yet" in browser.find_element(By.TAG_NAME, "main").text
    shot("integrations-empty-other-tenant")
    for foreign in (row_url, customer_url):
        browser.get(foreign)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
        assert company not in browser.page_source
        assert "Window" not in browser.page_source
    shot("not-found-other-tenant")

    # 8. Deleted at HubSpot, the customer is archived; Delete permanently, confirmed.
    forget_session(browser, stack)
    browser.get(f"{stack.base}/console/sign-in")
    browser.find_element(By.NAME, "token").send_keys(stack.token)
    click(browser, "Sign in")
    stack.sandbox_call("DELETE", f"/objects/companies/{company}")

    def archived():
        browser.get(customer_url)
        return "Archived" in browser.find_element(By.CSS_SELECTOR, "main").text

    eventually(archived, what="the customer archived")
    shot("customer-archived")
    browser.find_element(By.CSS_SELECTOR, "details.menu summary").click()
    click(browser, "Delete permanently…")
    assert "cannot be undone" in browser.find_element(By.TAG_NAME, "main").text
    shot("customer-delete-confirm")
    click(browser, "Delete permanently")
    assert "show=archived" in browser.current_url
    assert "Window Resynced Ltd" not in browser.page_source
    browser.get(customer_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"

    # 6. A mapped property is deleted at HubSpot: Validate says which, per field.
    stack.sandbox_call("DELETE", "/properties/companies/annualrevenue")
    browser.get(f"{stack.base}/console/integrations")
    click(panel(browser, "HubSpot"), "Field mapping")
    click(browser, "Validate against HubSpot")
    checks = {row.get_attribute("data-property"): row.find_elements(By.TAG_NAME, "td")[3]
              for row in browser.find_elements(By.CSS_SELECTOR, "table.mapping tbody tr[data-property]")}
    assert checks["annualrevenue"].get_attribute("data-check") == "problem"
    assert "annualrevenue" in browser.find_element(By.CSS_SELECTOR, ".notice").text or \
        checks["annualrevenue"].text
    assert all(cell.get_attribute("data-check") == "ok"
               for name, cell in checks.items() if name != "annualrevenue"), \
        {n: c.text for n, c in checks.items()}
    shot("mapping-validated")
    # A new field naming a property HubSpot lacks is refused on Save, by name.
    browser.find_element(By.NAME, "new_property").send_keys("no_such_property")
    browser.find_element(By.NAME, "new_target").send_keys("custom:nothing")
    click(browser, "Save")
    assert "Not saved" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    refused = browser.find_element(By.CSS_SELECTOR, "tr[data-property='no_such_property']")
    assert refused.find_elements(By.TAG_NAME, "td")[3].get_attribute("data-check") == "problem"
    shot("mapping-refused")
    # Drop both: saved, and the stored mapping no longer names them.
    for name in ("annualrevenue", "no_such_property"):
        browser.find_element(By.CSS_SELECTOR, f"tr[data-property='{name}'] input[type=checkbox]").click()
    click(browser, "Save")
    assert "Saved" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    hubspot = next(c for c in stack.admin("GET", "/admin/connections")["connections"]
                   if c["provider"] == "hubspot")
    stored = stack.admin("GET", f"/admin/connections/{hubspot['id']}/mapping")["entries"]
    assert {e["source_property"] for e in stored}.isdisjoint({"annualrevenue", "no_such_property"})
    shot("mapping-saved")

    # Runs: each pass's ledger balances.
    browser.get(f"{stack.base}/console/integrations")
    click(panel(browser, "HubSpot"), "Runs")
    ledgers = [cell.get_attribute("data-ledger")
               for cell in browser.find_elements(By.CSS_SELECTOR, "table.runs td[data-ledger]")]
    assert ledgers and set(ledgers) == {"balanced"}, ledgers
    shot("runs")

    # Held archives: seven companies vanish without a webhook; the guard holds them.
    vanishing = []
    for c in stack.admin("GET", "/admin/customers?limit=100")["items"]:
        sources = stack.admin("GET", f"/admin/customers/{c['id']}")["sources"]
        vanishing += [s["source_id"] for s in sources if s["provider"] == "hubspot"]
        if len(vanishing) == 7:
            break
    stack.sandbox_call("PUT", "/faults", {"webhook_drop_rate": 1.0})
    try:
        for source_id in vanishing:
            stack.sandbox_call("DELETE", f"/objects/companies/{source_id}")
    finally:
        stack.sandbox_call("PUT", "/faults", {})
    browser.get(f"{stack.base}/console/integrations")
    click(panel(browser, "HubSpot"), "Run sync now")
    assert "sync pass started" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    eventually(lambda: browser.get(f"{stack.base}/console/integrations")
               or "See what is held" in panel(browser, "HubSpot").text, what="archives held")
    shot("integrations-archives-held")
    click(panel(browser, "HubSpot"), "See what is held")
    held = {row.find_elements(By.TAG_NAME, "td")[1].text
            for row in browser.find_elements(By.CSS_SELECTOR, "table.held tbody tr")}
    assert held == set(vanishing), (held, vanishing)
    shot("held-archives")
    click(browser, "Reject archives")
    assert "Rejected" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    assert "See what is held" not in panel(browser, "HubSpot").text
    active = stack.admin("GET", "/admin/customers?limit=200")["items"]
    assert len(active) >= len(vanishing)

    # The company filter, counted at HubSpot before saving: 20 seeded, one created, 8 deleted.
    click(panel(browser, "HubSpot"), "Company filter")
    shot("filter")
    browser.find_element(By.CSS_SELECTOR, "input[name=type][value=all]").click()
    click(browser, "Preview")
    counted = re.search(r"keep (\d+) of the portal's (\d+) companies",
                        browser.find_element(By.CSS_SELECTOR, ".notice").text)
    assert counted and counted.groups() == ("13", "13"), counted
    browser.find_element(By.CSS_SELECTOR, "input[name=type][value=lifecycle_stage]").click()
    browser.find_elements(By.CSS_SELECTOR, "input[name^='stage:']")[0].click()
    click(browser, "Preview")
    counted = re.search(r"keep (\d+) of the portal's (\d+) companies",
                        browser.find_element(By.CSS_SELECTOR, ".notice").text)
    assert counted and int(counted.group(1)) <= 13 and counted.group(2) == "13", counted
    shot("filter-preview")
    # Nothing picked: refused with the reason, nothing saved.
    for box in browser.find_elements(By.CSS_SELECTOR, "input[name^='stage:']:checked"):
        box.click()
    click(browser, "Save")
    assert "filter" in browser.find_element(By.CSS_SELECTOR, ".notice").text.lower()
    assert stack.admin("GET", f"/admin/connections/{hubspot['id']}/filter") == {"type": "all"}


def test_a_failed_oauth_return_says_why_and_leads_back(stack, browser):
    for query, reason in [
        ("code=abc&state=made-up", "unknown, used or expired state"),
        ("error=access_denied&error_description=The+user+declined+the+app", "declined"),
    ]:
        browser.get(f"{stack.base}/oauth/hubspot/callback?{query}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "The connection did not complete"
        assert reason in browser.find_element(By.CSS_SELECTOR, ".notice").text
        assert browser.find_element(By.LINK_TEXT, "Back to Integrations")


def test_a_sign_in_link_works_once_and_a_bad_token_is_refused(stack, browser):
    forget_session(browser, stack)
    browser.get(stack.sign_in_link)  # spent by the flow above, or by this very test
    browser.get(stack.sign_in_link)
    refusal = eventually(lambda: browser.find_element(By.CSS_SELECTOR, ".notice").text,
                         what="the refusal")
    assert "already used" in refusal
    browser.get(f"{stack.base}/console/integrations")
    assert "/console/sign-in" in browser.current_url
    browser.find_element(By.NAME, "token").send_keys("v1.demo.9999999999." + "0" * 64)
    click(browser, "Sign in")
    assert "refused" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    browser.find_element(By.NAME, "token").send_keys(stack.token)
    click(browser, "Sign in")
    assert browser.current_url.endswith("/console/integrations")
    assert banner(browser, "HubSpot") == "Connected"


def test_forms_without_the_sessions_csrf_token_or_from_another_site_are_refused(stack, browser):
    forget_session(browser, stack)
    browser.get(f"{stack.base}/console/sign-in")
    browser.find_element(By.NAME, "token").send_keys(stack.token)
    click(browser, "Sign in")
    cookie = browser.get_cookie("console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    session = {"Cookie": f"console_session={cookie['value']}"}
    csrf = browser.find_element(By.NAME, "csrf").get_attribute("value")
    connection = stack.admin("GET", "/admin/connections")["connections"][0]["id"]
    path = f"/console/connections/{connection}/sync"

    def manual_runs():
        runs = stack.admin("GET", f"/admin/connections/{connection}/runs")["items"]
        return sum(r["trigger"] == "manual" for r in runs)

    before = manual_runs()
    assert stack.post_form(path, {}, session) == 403
    assert stack.post_form(path, {"csrf": "00" * 32}, session) == 403
    assert stack.post_form(path, {"csrf": csrf}, {**session, "Origin": "https://evil.example"}) == 403
    # No session at all: to the sign-in page, nothing done.
    assert stack.post_form(path, {"csrf": csrf}) in (303, 200)
    assert manual_runs() == before


def test_direction_and_push_with_send_test_lead(stack, browser, shot):
    forget_session(browser, stack)
    browser.get(f"{stack.base}/console/sign-in")
    browser.find_element(By.NAME, "token").send_keys(stack.token)
    click(browser, "Sign in")
    click(panel(browser, "HubSpot"), "Direction and push")
    assert browser.find_element(By.CSS_SELECTOR, "input[name=direction][value=inbound]").is_selected()

    # Outbound without write access: refused, naming the scopes.
    browser.find_element(By.CSS_SELECTOR, "input[name=direction][value=outbound]").click()
    click(browser, "Save")
    refused = browser.find_element(By.CSS_SELECTOR, ".notice").text
    assert "crm.objects.contacts.write" in refused, refused

    # Reauthorize with write access, then save outbound with the company and list steps.
    click(browser, "Reauthorize with write access")
    eventually(lambda: browser.current_url.endswith("/console/integrations")
               and banner(browser, "HubSpot") == "Connected", what="back on Integrations")
    click(panel(browser, "HubSpot"), "Direction and push")
    browser.find_element(By.CSS_SELECTOR, "input[name=direction][value=outbound]").click()
    browser.find_element(By.CSS_SELECTOR, "select[name=company_step] option[value=skip]").click()
    browser.find_element(By.NAME, "list_id").send_keys("3")
    click(browser, "Save")
    assert "Saved" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    hubspot = next(c for c in stack.admin("GET", "/admin/connections")["connections"]
                   if c["provider"] == "hubspot")
    assert hubspot["direction"] == "outbound" and hubspot["push"]["list_id"] == "3", hubspot

    # Send test lead: a result per property and per step, then delete the test contact.
    click(browser, "Send test lead")
    assert "every step" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    checks = browser.find_elements(By.CSS_SELECTOR, "table.properties td[data-check]")
    assert checks and all(c.get_attribute("data-check") == "ok" for c in checks)
    results = {row.get_attribute("data-step"): row.find_element(By.CSS_SELECTOR, "td[data-result]").text
               for row in browser.find_elements(By.CSS_SELECTOR, "table.steps tbody tr")}
    assert results == {"Contact": "Created", "Company": "Created", "List": "Added"}, results
    shot("push-test-lead")
    delete = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button")
                  if b.text.startswith("Delete the test contact"))
    contact = delete.text.rsplit(" ", 1)[1]
    click(browser, delete.text)
    assert f"Deleted the test contact {contact}" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    assert stack.sandbox_call("GET", f"/objects/contacts/{contact}")["archived"] is True

    # Back to inbound: the mirror the other tests see.
    browser.find_element(By.CSS_SELECTOR, "input[name=direction][value=inbound]").click()
    click(browser, "Save")
    assert "Saved" in browser.find_element(By.CSS_SELECTOR, ".notice").text


def records_call(stack, token, method, path, body=None):
    from conftest import _call

    return _call(method, f"{stack.base}{path}", body, {"Authorization": f"Bearer {token}"})


def test_two_way_conflicts_are_listed_and_a_losing_value_is_restored(stack, browser, shot):
    forget_session(browser, stack)
    browser.get(f"{stack.base}/console/sign-in")
    browser.find_element(By.NAME, "token").send_keys(stack.token)
    click(browser, "Sign in")
    click(panel(browser, "HubSpot"), "Direction and push")
    click(browser, "Reauthorize with write access")
    eventually(lambda: browser.current_url.endswith("/console/integrations")
               and banner(browser, "HubSpot") == "Connected", what="back on Integrations")
    click(panel(browser, "HubSpot"), "Direction and push")
    browser.find_element(By.CSS_SELECTOR, "input[name=direction][value=two_way]").click()
    click(browser, "Save")
    assert "Saved" in browser.find_element(By.CSS_SELECTOR, ".notice").text

    # A lead pushed, then its first name changed in HubSpot and here before either side
    # saw the other's change: ours is later and wins; HubSpot's goes to the audit.
    token = stack.admin("POST", "/admin/records-token")["token"]
    lead = records_call(stack, token, "POST", "/api/records/contacts",
                        {"email": "two.way@console.io", "first_name": "Tess"})["contact"]["id"]
    pushed = eventually(lambda: records_call(stack, token, "GET", f"/api/records/contacts/{lead}")
                        .get("pushed_to"), what="the lead pushed")
    hubspot = pushed[0]["source_id"]
    stack.sandbox_call("PUT", "/webhooks", {"auto_deliver": False})
    stack.sandbox_call("PATCH", f"/objects/contacts/{hubspot}", {"properties": {"firstname": "Tessa"}})
    records_call(stack, token, "PATCH", f"/api/records/contacts/{lead}", {"first_name": "Tess Ours"})
    eventually(lambda: stack.sandbox_call("GET", f"/objects/contacts/{hubspot}")
               ["properties"].get("firstname") == "Tess Ours", what="our later value in HubSpot")
    stack.sandbox_call("PUT", "/webhooks", {"auto_deliver": True})
    stack.sandbox_call("POST", "/webhooks/flush", {})

    browser.get(f"{stack.base}/console/integrations")
    click(panel(browser, "HubSpot"), "Conflicts")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.conflicts tbody tr")
    assert len(rows) == 1, browser.page_source
    assert rows[0].find_element(By.CSS_SELECTOR, "td[data-winner]").get_attribute("data-winner") == "ours"
    assert "Tessa" in rows[0].text and "Tess Ours" in rows[0].text, rows[0].text
    shot("two-way-conflicts")
    click(browser, "Restore the losing value")
    assert "Restored" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    assert "Restored" in browser.find_element(By.CSS_SELECTOR, "table.conflicts tbody tr").text
    assert records_call(stack, token, "GET", f"/api/records/contacts/{lead}")["first_name"] == "Tessa"
    eventually(lambda: stack.sandbox_call("GET", f"/objects/contacts/{hubspot}")
               ["properties"].get("firstname") == "Tessa", what="the restored value in HubSpot")

    # Back to inbound: the mirror the other tests see.
    click(browser, "Back to Integrations")
    click(panel(browser, "HubSpot"), "Direction and push")
    browser.find_element(By.CSS_SELECTOR, "input[name=direction][value=inbound]").click()
    click(browser, "Save")
    assert "Saved" in browser.find_element(By.CSS_SELECTOR, ".notice").text
