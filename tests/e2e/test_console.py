"""The web console in headless Chromium (Debian's `chromium` and `chromium-driver`, driven
by Selenium; nothing is downloaded): the seed's console steps done in the browser, then a
real boto3 client syncs and the console shows what the trigger did.

Screenshots of every page at desktop and phone width are written to
$SYNCTRIG_SCREENSHOTS (default target/console-screenshots) for a reviewer to look at, and
axe-core (tests/js/node_modules, from npm) checks each at both widths: no serious or
critical accessibility violation."""

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ROOT, Server, records, sync

SHOTS = Path(os.environ.get("SYNCTRIG_SCREENSHOTS", ROOT / "target" / "console-screenshots"))
AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP, PHONE = (1280, 900), (390, 844)


def chromium_paths():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    assert browser and Path(driver).exists(), "install Debian's chromium and chromium-driver (tests/install-system-packages.sh)"
    return browser, driver


@pytest.fixture
def browser():
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver and browser: Selenium Manager has nothing to download.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Console:
    def __init__(self, driver, url):
        self.d, self.url = driver, url

    def wait(self, condition, timeout=30):
        try:
            # A condition that reads an element the page has just redrawn tries again.
            return WebDriverWait(self.d, timeout, ignored_exceptions=[StaleElementReferenceException]).until(condition)
        except TimeoutException:
            # What the page showed, to say why.
            SHOTS.mkdir(parents=True, exist_ok=True)
            self.d.save_screenshot(str(SHOTS / "failure.png"))
            raise AssertionError(f"timed out at {self.d.current_url}; the page shows:\n{self.text()}") from None

    def go(self, hash_):
        target = f"{self.url}/console/{hash_}"
        # The same URL again is no navigation at all: reload, as a user would.
        if self.d.current_url == target:
            self.d.refresh()
        else:
            self.d.get(target)

    def find(self, css, timeout=30):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout)

    def heading(self, text, timeout=30):
        self.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main h1"), text), timeout)

    def text(self):
        return self.d.find_element(By.TAG_NAME, "body").text

    def error_text(self, css="main .error", timeout=30):
        """A shown error's text, read again if the page redraws it meanwhile."""
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css).text or False, timeout)

    def sign_in(self, key, secret):
        self.go("#/signin")
        fields = self.find("#access-key"), self.find("#secret-key")
        for field in fields:
            field.clear()
        fields[0].send_keys(key)
        # Submitted with the keyboard.
        fields[1].send_keys(secret, Keys.ENTER)
        self.heading("Identity pools")
        self.wait(EC.visibility_of_element_located((By.ID, "nav")))

    def sign_out(self):
        self.d.find_element(By.ID, "signout").click()
        self.heading("Sign in")

    def idle(self, timeout=120):
        """Waits until no operation is in progress and nothing is loading."""
        self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "#status progress, button[aria-busy]")
                  and "Loading…" not in d.find_element(By.TAG_NAME, "main").text, timeout)

    def shoot(self, name):
        # The page's content security policy (no inline script or style) is never violated.
        blocked = [e["message"] for e in self.d.get_log("browser") if "Content Security Policy" in e["message"]]
        assert not blocked, blocked
        SHOTS.mkdir(parents=True, exist_ok=True)
        for label, (w, h) in (("desktop", DESKTOP), ("phone", PHONE)):
            self.d.set_window_size(w, h)
            height = self.d.execute_script("return document.documentElement.scrollHeight")
            self.d.set_window_size(w, min(max(h, height + 140), 4000))
            # A plot is redrawn for the new width (a moment after the resize settles).
            self.wait(lambda d: d.execute_script("""
                const svg = document.querySelector(".plot svg");
                if (!svg) return true;
                const want = Math.round(Math.min(Math.max(document.getElementById("main").clientWidth - 64, 280), 1060));
                return svg.viewBox.baseVal.width === want;"""))
            path = SHOTS / f"{name}-{label}.png"
            assert self.d.save_screenshot(str(path)), path
            if label == "phone":
                # Readable on a phone: nothing wider than the screen but scrollable tables.
                overflow = self.d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"{name} is {overflow}px wider than a phone"
            serious = [v for v in self.axe() if v["impact"] in ("serious", "critical")]
            assert not serious, f"{name} at {label} width: {json.dumps(serious, indent=1)}"
        self.d.set_window_size(*DESKTOP)

    def axe(self):
        """axe-core's violations on the page as it is now."""
        assert AXE.exists(), f"{AXE} is missing: run `npm ci --prefix tests/js`"
        if not self.d.execute_script("return typeof axe !== 'undefined'"):
            self.d.execute_script(AXE.read_text())
        found = self.d.execute_async_script("""
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] })
              .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                                                          nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }))))
              .catch((e) => done([{ id: "axe-error", impact: "critical", help: String(e), nodes: [] }]));""")
        return found


def developer(server, name):
    creds = server.admin("create-tenant", name)
    return creds["accessKeyId"], creds["secretAccessKey"]


_KEYS = {}


def developer_keys(server, name):
    """A tenant's developer keys, creating the tenant once."""
    if (server, name) not in _KEYS:
        _KEYS[(server, name)] = developer(server, name)
    return _KEYS[(server, name)]


def test_the_seeds_console_steps_in_the_browser(server, browser):
    acme_key, acme_secret = developer(server, "acme")
    globex_key, globex_secret = developer(server, "globex")
    c = Console(browser, server.url)
    c.go("")
    c.heading("Sign in")
    c.shoot("sign-in")

    # A wrong secret is refused with the API's error name.
    c.find("#access-key").send_keys(acme_key)
    c.find("#secret-key").send_keys("wrong", Keys.ENTER)
    assert "NotAuthorizedException" in c.find(".error").text
    c.sign_in(acme_key, acme_secret)

    # Identity pools → Create new identity pool. A bad name first: the error is named.
    c.find("#pool-name").send_keys("bad/name")
    c.d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    assert "InvalidParameterException" in c.find("main .error").text
    name = c.find("#pool-name")
    name.clear()
    name.send_keys("game")
    c.d.find_element(By.ID, "pool-unauth").click()
    c.d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    c.heading("game")
    pool = c.find("main p.mono").text
    c.idle()

    # Functions → Create function from the cognito-sync-trigger blueprint (the default).
    c.go("#/functions")
    c.heading("Functions")
    c.idle()
    c.shoot("functions")
    c.find("#function-name").send_keys("sample")
    c.d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    # A deploy pre-initialises and compiles: progress is shown while it runs.
    c.find("#status progress", timeout=10)
    c.heading("sample", timeout=180)
    c.idle()
    assert "ModifyValue1" in c.find("#code-editor").get_attribute("value")
    assert "1 (latest)" in c.text()

    # Test: the seed's event, run as `run` does, shows the validated response and figures.
    c.find("#test-event")
    c.wait(lambda d: "SampleKey1" in d.find_element(By.ID, "test-event").get_attribute("value"))
    c.d.find_element(By.ID, "test-button").click()
    response = json.loads(c.find("#test-response", timeout=60).text)
    records_out = response["datasetRecords"]
    assert records_out["SampleKey1"]["newValue"] == "ModifyValue1"
    assert records_out["SampleKey2"]["op"] == "remove"
    assert records_out["SampleKey3"]["newValue"] == "ModifyValue3"
    assert "Loading function" not in c.find("#test-log").text  # the top level ran at deploy
    assert "Wall time" in c.text() and "Fuel" in c.text() and "Peak memory" in c.text()
    c.shoot("function")

    # A broken event gets a named error and runs nothing.
    editor = c.d.find_element(By.ID, "test-event")
    editor.clear()
    editor.send_keys('{"version": 2}')
    c.d.find_element(By.ID, "test-button").click()
    assert "InvalidParameterException" in c.find("#test-result .error").text

    # The pool's dashboard → Edit identity pool → Cognito Events → Sync Trigger → Save Changes.
    c.go(f"#/pools/{pool}")
    c.heading("game")
    c.idle()
    c.d.find_element(By.XPATH, "//button[text()='Edit identity pool']").click()
    c.find("#cognito-events summary").click()
    Select(c.find("#sync-trigger")).select_by_visible_text("sample (latest)")
    c.shoot("edit-identity-pool")
    c.d.find_element(By.XPATH, "//button[text()='Save Changes']").click()
    assert "the Sync Trigger is sample" in c.find("#status .success").text

    # The seed's result, through boto3 as an app's user.
    acme = server.client("cognito-sync", acme_key, acme_secret)
    assert acme.get_cognito_events(IdentityPoolId=pool)["Events"] == {"SyncTrigger": "sample"}
    ident = server.client("cognito-identity", "unused", "unused")
    identity_id = ident.get_id(IdentityPoolId=pool)["IdentityId"]
    creds = ident.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    user = server.client("cognito-sync", creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])
    sync(user, pool, identity_id, "game", [
        {"Op": "replace", "Key": "SampleKey1", "Value": "newValue1", "SyncCount": 0},
        {"Op": "replace", "Key": "SampleKey2", "Value": "newValue2", "SyncCount": 0},
    ])
    stored, _ = records(user, pool, identity_id, "game")
    assert stored["SampleKey1"][0] == "ModifyValue1" and stored["SampleKey3"][0] == "ModifyValue3"

    # The identity browser shows it: pool → identity → dataset → records, by clicking.
    c.go(f"#/pools/{pool}")
    c.heading("game")
    c.idle()
    c.wait(EC.element_to_be_clickable((By.LINK_TEXT, identity_id))).click()
    c.find("#datasets-heading")
    c.d.find_element(By.LINK_TEXT, "game").click()
    c.find("#records-heading")
    value = lambda key: c.d.find_element(By.CSS_SELECTOR, f"tr[data-key={key}] td:nth-child(2)").text
    assert value("SampleKey1") == "ModifyValue1"
    assert value("SampleKey3") == "ModifyValue3"
    assert "newValue" not in c.find("main").text
    shown = {r.get_attribute("data-key") for r in c.d.find_elements(By.CSS_SELECTOR, "tr[data-key]")}
    assert "SampleKey2" not in shown or value("SampleKey2") == "deleted"
    assert int(c.find("#dataset-sync-count").text) >= 1
    c.shoot("identity-pool")

    # Invocations: the update's invocation is listed, filterable by outcome, and plotted.
    c.go("#/invocations/sample")
    c.heading("Invocations")
    row = c.find("tr[data-outcome=ok]")
    assert "ms" in row.text
    assert len(c.d.find_elements(By.CSS_SELECTOR, ".plot svg circle")) >= 1
    Select(c.find("#outcome-filter")).select_by_value("ok")
    assert c.d.find_elements(By.CSS_SELECTOR, "tr[data-outcome=ok]")
    c.shoot("invocations")

    # The function's page with its versions, after the update.
    c.go("#/functions/sample")
    c.heading("sample")
    c.idle()
    c.shoot("function-versions")

    # Another tenant's developer sees none of it.
    c.sign_out()
    c.sign_in(globex_key, globex_secret)
    c.idle()
    assert "No identity pools yet." in c.text() and "game" not in c.find("main").text
    c.shoot("identity-pools")
    c.go(f"#/pools/{pool}")
    assert c.error_text().split(":")[0] in ("ResourceNotFoundException", "NotAuthorizedException")
    assert "ModifyValue" not in c.text()
    # The next page's error, not the one this page showed (the page redraws its main part).
    shown = c.find("main .error")
    c.go("#/functions/sample")
    c.wait(EC.staleness_of(shown))
    assert "ResourceNotFoundException" in c.error_text()
    c.go("#/functions")
    c.heading("Functions")
    c.idle()
    assert "No functions yet." in c.text()
    c.go(f"#/pools/{pool}?identity={identity_id}&dataset=game")
    c.find("main .error")
    assert "ModifyValue" not in c.text()


def test_versions_publish_and_roll_back_in_the_browser(server, browser):
    key, secret = developer(server, "acme")
    c = Console(browser, server.url)
    c.sign_in(key, secret)
    # Keyboard only: Tab to the Functions link, Enter; then Tab into the form.
    c.idle()
    for _ in range(12):
        ActionChains(c.d).send_keys(Keys.TAB).perform()
        if c.d.switch_to.active_element.text == "Functions":
            break
    assert c.d.switch_to.active_element.text == "Functions"
    ActionChains(c.d).send_keys(Keys.ENTER).perform()
    c.heading("Functions")
    c.idle()
    c.find("#function-name").send_keys("award")
    c.d.find_element(By.CSS_SELECTOR, "input[name=kind][value=js]").click()
    c.find("#function-file").send_keys(str(ROOT / "examples" / "js" / "award-on-level.js"))
    c.d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    c.heading("award", timeout=180)
    c.idle()
    # Publish an edited version from the code view.
    editor = c.find("#code-editor")
    original = editor.get_attribute("value")
    c.d.execute_script("arguments[0].value = arguments[0].value + '\\n// v2\\n';", editor)
    assert c.find("#function-environment").get_attribute("value") == ""
    c.find("#function-environment").send_keys("BONUS=3")
    c.d.find_element(By.XPATH, "//button[text()='Publish new version']").click()
    c.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#status .success"), "Published version 2"), 180)
    # The page is drawn again from the server: version 2 is the latest and its code is shown.
    c.wait(lambda d: "2 (latest)" in d.find_element(By.TAG_NAME, "main").text
           and "Version 2 ·" in d.find_element(By.TAG_NAME, "main").text)
    c.idle()
    assert c.find("#code-editor").get_attribute("value") == original + "\n// v2\n"
    assert c.find("#function-environment").get_attribute("value") == "BONUS=3"
    # Roll back to 1: version 3 has version 1's code.
    c.d.find_element(By.XPATH, "//button[text()='Roll back to 1']").click()
    c.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#status .success"), "Version 3 is version 1's code"), 180)
    c.wait(lambda d: "3 (latest)" in d.find_element(By.TAG_NAME, "main").text
           and "Version 3 ·" in d.find_element(By.TAG_NAME, "main").text)
    c.idle()
    assert c.find("#code-editor").get_attribute("value") == original
    assert c.find("#function-environment").get_attribute("value") == ""  # version 1's: none
    # "Create function" with an existing name does not replace the live code.
    from conftest import guest
    c.go("#/functions")
    c.idle()
    c.find("#function-name").send_keys("award")
    c.d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    assert "ResourceConflictException" in c.find("main form .error", timeout=180).text
    c.go("#/functions/award")
    c.heading("award")
    c.idle()
    assert "3 (latest)" in c.text()
    # A .wasm component uploads too.
    c.go("#/functions")
    c.idle()
    c.find("#function-name").send_keys("rusty")
    c.d.find_element(By.CSS_SELECTOR, "input[name=kind][value=wasm]").click()
    c.find("#function-file").send_keys(str(guest("sample_trigger")))
    c.d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    c.heading("rusty", timeout=180)
    c.idle()
    assert "WebAssembly component" in c.find("main").text
    c.d.find_element(By.ID, "test-button").click()
    assert json.loads(c.find("#test-response", timeout=60).text)["datasetRecords"]["SampleKey3"]["newValue"] == "ModifyValue3"


def sign_in(url, key, secret, headers=None):
    return post(url, "/console/session", {"AccessKeyId": key, "SecretAccessKey": secret},
                headers={"content-type": "application/json", "x-synctrig-console": "1"} if headers is None else headers)


def post(url, path, body=None, headers=None, method="POST"):
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(), method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"{}")


def test_a_console_session_is_only_the_credential_that_signed_in(server):
    key, secret = developer(server, "acme")
    # Only the console's script signs in: a form post (no header, no JSON type) cannot.
    for refused in ({}, {"x-synctrig-console": "1", "content-type": "text/plain"}, {"content-type": "application/json"}):
        assert sign_in(server.url, key, secret, headers=refused)[2]["__type"] == "NotAuthorizedException", refused
    status, headers, _ = sign_in(server.url, key, secret)
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    ok = {"Cookie": cookie, "x-synctrig-console": "1"}
    assert post(server.url, "/synctrig/functions", headers=ok, method="GET")[0] == 200
    # Without the console's header (a cross-site form), the cookie authorises nothing.
    status, _, body = post(server.url, "/synctrig/functions", headers={"Cookie": cookie}, method="GET")
    assert (status, body["__type"]) == (403, "NotAuthorizedException")
    # Two session cookies (one planted by another site on this host): neither counts.
    two = {"Cookie": f"{cookie}; {cookie}", "x-synctrig-console": "1"}
    assert post(server.url, "/synctrig/functions", headers=two, method="GET")[2]["__type"] == "NotAuthorizedException"
    # A forged or edited cookie is refused.
    name, value = cookie.split("=", 1)
    parts = value.split(".")
    for forged in (f"v1.{parts[1]}.{int(parts[2]) + 3600}.{parts[3]}", f"v1.AKIAROOTTEST.{parts[2]}.{parts[3]}", "v1.x.y.z", "garbage"):
        status, _, body = post(server.url, "/synctrig/functions", headers={"Cookie": f"{name}={forged}", "x-synctrig-console": "1"}, method="GET")
        assert body["__type"] == "NotAuthorizedException", forged
    # Identity credentials cannot sign in; neither can a wrong secret or an unknown key.
    for k, s in ((key, secret + "x"), ("AKIANOSUCHKEY", secret)):
        assert sign_in(server.url, k, s)[2]["__type"] == "NotAuthorizedException"
    pool = server.admin("create-pool", "--tenant", "acme", "--name", "p")["identityPoolId"]
    ident = server.client("cognito-identity", "unused", "unused")
    identity_id = ident.get_id(IdentityPoolId=pool)["IdentityId"]
    c = ident.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    status, _, body = sign_in(server.url, c["AccessKeyId"], c["SecretKey"])
    assert body["__type"] == "NotAuthorizedException"
    # The session is the developer: another tenant's pool is out of reach through it.
    developer_keys(server, "globex")
    other = server.admin("create-pool", "--tenant", "globex", "--name", "theirs")["identityPoolId"]
    status, _, body = post(server.url, "/", {"IdentityPoolId": other}, headers={
        **ok, "x-amz-target": "AWSCognitoIdentityService.DescribeIdentityPool", "content-type": "application/x-amz-json-1.1"})
    assert body["__type"] == "ResourceNotFoundException"
    status, _, body = post(server.url, f"/identitypools/{other}/events", {"Events": {"SyncTrigger": ""}}, headers=ok)
    assert body["__type"] == "NotAuthorizedException"
    # Every read the console's pages make, aimed at the other tenant's pool, identity and
    # dataset through the session, is refused.
    globex = server.client("cognito-sync", *developer_keys(server, "globex"))
    theirs = ident.get_id(IdentityPoolId=other)["IdentityId"]
    tc = ident.get_credentials_for_identity(IdentityId=theirs)["Credentials"]
    them = server.client("cognito-sync", tc["AccessKeyId"], tc["SecretKey"], tc["SessionToken"])
    token = them.list_records(IdentityPoolId=other, IdentityId=theirs, DatasetName="d")["SyncSessionToken"]
    them.update_records(IdentityPoolId=other, IdentityId=theirs, DatasetName="d", SyncSessionToken=token,
                        RecordPatches=[{"Op": "replace", "Key": "secret", "Value": "theirs", "SyncCount": 0}])
    base = f"/identitypools/{other}/identities/{theirs}"
    for path in (f"/identitypools/{other}", f"{base}/datasets", f"{base}/datasets/d", f"{base}/datasets/d/records",
                 f"/synctrig/identitypools/{other}/export"):
        status, _, body = post(server.url, path, headers=ok, method="GET")
        assert status >= 400 and body["__type"] == "NotAuthorizedException" and "theirs" not in json.dumps(body), path
    for op, req in (("ListIdentities", {"IdentityPoolId": other, "MaxResults": 60}),
                    ("DescribeIdentity", {"IdentityId": theirs}),
                    ("UpdateIdentityPool", {"IdentityPoolId": other, "IdentityPoolName": "x", "AllowUnauthenticatedIdentities": True})):
        status, _, body = post(server.url, "/", req, headers={
            **ok, "x-amz-target": f"AWSCognitoIdentityService.{op}", "content-type": "application/x-amz-json-1.1"})
        assert body["__type"] in ("ResourceNotFoundException", "NotAuthorizedException"), (op, body)
    assert globex.get_cognito_events(IdentityPoolId=other)["Events"] == {}
    # The operator's root key signs in too; functions belong to tenants, so it is told so.
    from conftest import ROOT_KEY, ROOT_SECRET
    status, headers, body = sign_in(server.url, ROOT_KEY, ROOT_SECRET)
    assert (status, body["Principal"]) == (200, "root")
    root = {"Cookie": headers["Set-Cookie"].split(";")[0], "x-synctrig-console": "1"}
    status, _, body = post(server.url, "/", {"MaxResults": 60}, headers={
        **root, "x-amz-target": "AWSCognitoIdentityService.ListIdentityPools", "content-type": "application/x-amz-json-1.1"})
    assert {p["IdentityPoolId"] for p in body["IdentityPools"]} >= {pool, other}
    assert post(server.url, "/synctrig/functions", headers=root, method="GET")[2]["__type"] == "NotAuthorizedException"
    # Signing out clears the cookie.
    status, headers, _ = post(server.url, "/console/session", headers=ok, method="DELETE")
    assert status == 200 and "Max-Age=0" in headers["Set-Cookie"]


def test_the_console_as_a_person_uses_it(server, browser):
    """Two tabs, a phone's width, the keyboard, the errors a person meets."""
    key, secret = developer(server, "acme")
    c = Console(browser, server.url)
    c.go("")
    c.heading("Sign in")
    # Nothing but the sign-in form before signing in: the sections' links are not shown.
    assert not c.d.find_element(By.ID, "nav").is_displayed()
    assert all(not a.is_displayed() for a in c.d.find_elements(By.CSS_SELECTOR, "#nav a"))
    c.sign_in(key, secret)

    # A success notice is shown on the page it belongs to, not on every later one.
    c.find("#pool-name").send_keys("game")
    c.d.find_element(By.ID, "pool-unauth").click()
    c.d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    c.heading("game")
    c.idle()
    pool = c.find("main p.mono").text
    c.go("#/functions")
    c.heading("Functions")
    c.idle()
    c.find("#function-name").send_keys("sample")
    c.d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    c.heading("sample", timeout=180)
    assert "Deployed sample version 1" in c.find("#status .success").text
    c.idle()
    c.go("#/pools")
    c.heading("Identity pools")
    c.idle()
    assert not c.d.find_elements(By.CSS_SELECTOR, "#status .success"), "the notice lingers"
    # A notice with no navigation after it (Save Changes) lasts only as long as its page.
    c.go(f"#/pools/{pool}")
    c.heading("game")
    c.idle()
    c.d.find_element(By.XPATH, "//button[text()='Edit identity pool']").click()
    c.d.find_element(By.XPATH, "//button[text()='Save Changes']").click()
    assert "Saved" in c.find("#status .success").text
    c.go("#/functions")
    c.heading("Functions")
    c.idle()
    assert not c.d.find_elements(By.CSS_SELECTOR, "#status .success"), "the Saved notice lingers"

    # The code editor numbers its lines; a deploy error naming a line takes the cursor there.
    c.go("#/functions/sample")
    c.heading("sample")
    c.idle()
    editor = c.find("#code-editor")
    source = editor.get_attribute("value")
    numbers = c.d.find_elements(By.XPATH, "//textarea[@id='code-editor']/preceding-sibling::pre[@class='gutter']/span")
    assert [n.text for n in numbers[:3]] == ["1", "2", "3"] and len(numbers) == source.count("\n") + 1
    broken = source.replace("exports.handler", "exports.handler = ;\nexports.other", 1)
    c.d.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));", editor, broken)
    c.d.find_element(By.XPATH, "//button[text()='Publish new version']").click()
    error = c.find("#code-editor ~ * .error, main .card .error", timeout=180)
    line = next(i + 1 for i, l in enumerate(broken.split("\n")) if "exports.handler = ;" in l)
    go = error.find_element(By.XPATH, f".//button[text()='Go to line {line}']")
    go.send_keys(Keys.ENTER)
    assert c.d.switch_to.active_element.get_attribute("id") == "code-editor"
    at = c.d.execute_script("const a = document.getElementById('code-editor'); return a.value.slice(0, a.selectionStart).split('\\n').length;")
    assert at == line

    # An oversized script gets the same helpful words as an oversized component.
    big = Path(os.environ.get("TMPDIR", "/tmp")) / f"synctrig-big-{os.getpid()}.js"
    big.write_text("// " + "x" * (3 * 1024 * 1024) + "\nexports.handler = async (e) => e;\n")
    try:
        c.go("#/functions")
        c.heading("Functions")
        c.idle()
        c.find("#function-name").send_keys("big")
        c.d.find_element(By.CSS_SELECTOR, "input[name=kind][value=js]").click()
        c.find("#function-file").send_keys(str(big))
        c.d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        message = c.find("main form .error").text
        assert "LimitExceededException" in message and "up to 3 MiB" in message and "admin deploy --js" in message, message
    finally:
        big.unlink()

    # At a phone's width short words stay whole and the plot's labels stay readable.
    sync_client = server.client("cognito-sync", key, secret)
    ident = server.client("cognito-identity", "unused", "unused")
    identity_id = ident.get_id(IdentityPoolId=pool)["IdentityId"]
    sync(sync_client, pool, identity_id, "game", [{"Op": "replace", "Key": "SampleKey3", "Value": "v", "SyncCount": 0}])
    sync_client.set_cognito_events(IdentityPoolId=pool, Events={"SyncTrigger": "sample"})
    creds = ident.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    user = server.client("cognito-sync", creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])
    sync(user, pool, identity_id, "game", [{"Op": "replace", "Key": "SampleKey1", "Value": "x", "SyncCount": 0}])
    c.d.set_window_size(*PHONE)
    c.go(f"#/pools/{pool}?identity={identity_id}&dataset=game")
    c.find("#records-heading")
    for text in ("game", "SampleKey3"):
        cell = c.d.find_element(By.XPATH, f"//td[.//text()='{text}' or text()='{text}']")
        # The lines its text takes: one rect per line of the text node.
        lines = c.d.execute_script(
            "const t = document.createTreeWalker(arguments[0], NodeFilter.SHOW_TEXT).nextNode();"
            "const r = document.createRange(); r.selectNodeContents(t); return r.getClientRects().length;", cell)
        assert lines == 1, f"{text!r} is broken over {lines} lines at a phone's width"
    c.go("#/invocations/sample")
    c.heading("Invocations")
    c.find(".plot svg circle")
    label_sizes = "return [...document.querySelectorAll('.plot svg text')].map((t) => t.getBoundingClientRect().height);"
    sizes = c.d.execute_script(label_sizes)
    assert sizes and min(sizes) >= 10, sizes
    # Drawn on a wide window, then narrowed (a phone turned, a window resized): redrawn.
    c.d.set_window_size(*DESKTOP)
    c.go("#/invocations/sample")
    c.find(".plot svg circle")
    c.d.set_window_size(*PHONE)
    c.wait(lambda d: min(d.execute_script(label_sizes) or [0]) >= 10)
    c.d.set_window_size(*DESKTOP)

    # Signed out in a second tab: the first one follows, and a stale action shows the sign-in form.
    first = c.d.current_window_handle
    c.d.switch_to.new_window("tab")
    c.go("#/pools")
    c.heading("Identity pools")
    c.sign_out()
    c.d.switch_to.window(first)
    c.heading("Sign in")
    assert "missing Authorization header" not in c.text()
    assert not c.d.find_element(By.ID, "nav").is_displayed()
    # Signing in again in the first tab signs the other in too.
    c.sign_in(key, secret)
    other = [h for h in c.d.window_handles if h != first][0]
    c.d.switch_to.window(other)
    c.heading("Identity pools")
    c.d.close()
    c.d.switch_to.window(first)
    # A session that ends with no word from another tab (the cookie expired, or was
    # cleared): the next action shows the sign-in form, not a refusal.
    c.d.delete_all_cookies()
    c.d.find_element(By.CSS_SELECTOR, "#nav a[data-section=functions]").click()
    c.heading("Sign in")
    assert "NotAuthorizedException" not in c.text()
    c.sign_in(key, secret)

    # The operator's root key is not offered pages that belong to tenants.
    from conftest import ROOT_KEY, ROOT_SECRET
    c.sign_out()
    c.sign_in(ROOT_KEY, ROOT_SECRET)
    shown = [a.text for a in c.d.find_elements(By.CSS_SELECTOR, "#nav a") if a.is_displayed()]
    assert shown == ["Identity pools"], shown
    c.go("#/functions")
    c.heading("Functions")
    assert "belong to a tenant" in c.find("main").text and not c.d.find_elements(By.CSS_SELECTOR, "main .error")
    c.shoot("root-functions")


def test_the_functions_api_is_signed_like_every_other_call(server):
    """The console's Functions pages use operations any SigV4 client can call: botocore's
    signer reaches them with the developer's keys, and only the developer's tenant."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    key, secret = developer(server, "acme")
    other_key, other_secret = developer(server, "globex")

    def signed(method, path, body=None, creds=(key, secret)):
        data = None if body is None else json.dumps(body).encode()
        req = AWSRequest(method=method, url=server.url + path, data=data, headers={"content-type": "application/json"})
        SigV4Auth(Credentials(*creds), "cognito-sync", "us-east-1").add_auth(req)
        return post(server.url, path, body, headers=dict(req.headers.items()), method=method)

    script = (ROOT / "examples" / "js" / "sample-trigger.js").read_text()
    status, _, out = signed("POST", "/synctrig/functions/sample/versions", {"Script": script, "Handler": "index.handler"})
    assert (status, out["Version"]) == (200, 1), out
    status, _, out = signed("GET", "/synctrig/functions")
    assert [f["Name"] for f in out["Functions"]] == ["sample"] and out["Functions"][0]["Script"] is True
    event = (ROOT / "examples" / "seed-event.json").read_text()
    status, _, out = signed("POST", "/synctrig/functions/sample/test", {"Event": event})
    assert json.loads(out["Response"])["datasetRecords"]["SampleKey1"]["newValue"] == "ModifyValue1"
    assert out["Fuel"] > 0 and out["PeakMemoryBytes"] > 0 and out["WallMicros"] > 0
    # Bad input: named errors, nothing stored.
    for body, error in (
        ({"Script": "exports.handler = ;", "Handler": "index.handler"}, "InvalidConfigurationException"),
        ({"Script": script, "Handler": "nodot"}, "InvalidConfigurationException"),
        ({"Component": "not base64!"}, "InvalidParameterException"),
        ({"Component": "AGFzbQ=="}, "InvalidConfigurationException"),
        ({"FromVersion": 7}, "ResourceNotFoundException"),
        ({}, "InvalidParameterException"),
        ({"Script": script, "FromVersion": 1}, "InvalidParameterException"),
        ({"Script": script, "ExpectedLatestVersion": 0}, "ResourceConflictException"),
        ({"FromVersion": 1, "ExpectedLatestVersion": 2}, "ResourceConflictException"),
    ):
        status, _, out = signed("POST", "/synctrig/functions/sample/versions", body)
        assert out["__type"] == error, (body, out)
    status, _, out = signed("GET", "/synctrig/functions/sample")
    assert [v["Version"] for v in out["Versions"]] == [1]
    status, _, out = signed("POST", "/synctrig/functions/bad%20name/test", {"Event": event})
    assert out["__type"] == "InvalidParameterException"
    # Another tenant's developer: none of it exists.
    for method, path, body in (
        ("GET", "/synctrig/functions/sample", None),
        ("GET", "/synctrig/functions/sample/versions/1", None),
        ("POST", "/synctrig/functions/sample/test", {"Event": event}),
        ("POST", "/synctrig/functions/sample/versions", {"FromVersion": 1}),
    ):
        status, _, out = signed(method, path, body, creds=(other_key, other_secret))
        assert out["__type"] == "ResourceNotFoundException", (path, out)
    assert signed("GET", "/synctrig/functions", creds=(other_key, other_secret))[2]["Functions"] == []


def test_an_alias_and_its_rollout_in_the_browser(server, browser):
    key, secret = developer(server, "acme")
    for _ in range(2):
        server.admin("deploy", "--tenant", "acme", "--name", "award", "--js", str(ROOT / "examples" / "js" / "award-on-level.js"))
    c = Console(browser, server.url)
    c.sign_in(key, secret)
    c.go("#/functions/award")
    c.heading("award")
    c.idle()
    assert "No aliases." in c.find("#aliases").text
    c.find("#alias-name").send_keys("live")
    Select(c.find("#alias-version")).select_by_value("1")
    Select(c.find("#alias-second")).select_by_value("2")
    weight = c.find("#alias-weight")
    weight.clear()
    weight.send_keys("20")
    c.find("#alias-promote").send_keys("100")
    # Saved from the keyboard: the button has focus after a Tab from the last field.
    c.find("#alias-margin").send_keys(Keys.TAB)
    assert c.d.switch_to.active_element.get_attribute("id") == "alias-save"
    ActionChains(c.d).send_keys(Keys.ENTER).perform()
    c.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#status .success"), "Alias live points to version 1"), 60)
    c.wait(lambda d: "20% to version 2" in d.find_element(By.ID, "aliases").text)
    c.idle()
    assert "rolling out: promote after 100 runs" in c.find("#aliases").text
    c.shoot("function-aliases")
    alias = server.admin("aliases", "--tenant", "acme", "--name", "award")["aliases"][0]
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.2}} and alias["Rollout"]["PromoteAfterInvocations"] == 100
    c.d.find_element(By.XPATH, "//button[text()='Delete live']").click()
    c.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#status .success"), "Alias live deleted"), 60)
    assert server.admin("aliases", "--tenant", "acme", "--name", "award")["aliases"] == []


def test_recording_and_a_replay_with_its_diffs_in_the_browser(server, browser, tmp_path):
    key, secret = developer(server, "acme")
    pool = server.admin("create-pool", "--tenant", "acme", "--name", "game")["identityPoolId"]
    for i, source in enumerate([
        "exports.handler = async (e) => { e.datasetRecords.seen = { newValue: 'v1', op: 'replace' }; return e; };",
        "exports.handler = async (e) => { e.datasetRecords.seen = { newValue: 'v2', op: 'replace' }; return e; };",
    ]):
        path = tmp_path / f"v{i}.js"
        path.write_text(source)
        server.admin("deploy", "--tenant", "acme", "--name", "seen", "--js", str(path))
    dev = server.client("cognito-sync", key, secret)
    dev.set_cognito_events(IdentityPoolId=pool, Events={"SyncTrigger": "seen:1"})
    c = Console(browser, server.url)
    c.sign_in(key, secret)
    c.go("#/functions/seen")
    c.heading("seen")
    c.idle()
    assert "Off: nothing is recorded." in c.find("#recording").text
    # Turned on with the keyboard: Space ticks the box, Enter on the button saves.
    c.find("#recording-enabled").send_keys(Keys.SPACE)
    c.find("#recording-count").send_keys(Keys.BACKSPACE * 4, "50")
    Select(c.find("#recording-shadow")).select_by_value("2")
    c.find("#recording-save").send_keys(Keys.ENTER)
    c.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#status .success"), "Recording the last 50 invocations"), 60)
    c.wait(lambda d: "version 2 runs in the shadow" in d.find_element(By.ID, "recording-state").text)

    ident = server.client("cognito-identity", "unused", "unused")
    for n in range(2):
        identity = ident.get_id(IdentityPoolId=pool)["IdentityId"]
        creds = ident.get_credentials_for_identity(IdentityId=identity)["Credentials"]
        user = server.client("cognito-sync", creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])
        sync(user, pool, identity, f"d{n}", [{"Op": "replace", "Key": "n", "Value": str(n), "SyncCount": 0}])
        assert records(user, pool, identity, f"d{n}")[0]["seen"][0] == "v1"

    # Recorded off the syncs' path, once the shadow has run.
    for _ in range(300):
        listed = server.admin("recordings", "--tenant", "acme", "--name", "seen")["recordings"]
        if len(listed) == 2:
            break
        time.sleep(0.1)
    c.go("#/replay/seen")
    c.heading("Replay seen")
    c.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "table[aria-label='Latest recordings'] tbody tr")) == 2)
    c.idle()
    Select(c.find("#replay-candidate")).select_by_value("2")
    c.find("#replay-run").send_keys(Keys.ENTER)
    c.wait(EC.visibility_of_element_located((By.ID, "replay-report")), 60)
    report = c.find("#replay-report").text
    assert "Candidate: version 2." in report and report.count("different") >= 2, report
    assert 'replace "v1"' in report and 'replace "v2"' in report, report
    c.shoot("replay")
    c.find("#shadow-report").send_keys(Keys.ENTER)
    c.wait(EC.text_to_be_present_in_element((By.ID, "replay-report"), "Candidate: shadow: version 2."), 60)
    # The shadow only compared: the datasets still hold version 1's answer (checked above),
    # and deleting the recordings empties the page.
    c.find("#recordings-delete").send_keys(Keys.ENTER)
    c.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#status .success"), "2 recordings deleted"), 60)
    c.wait(lambda d: "Nothing recorded" in d.find_element(By.TAG_NAME, "main").text)


def test_cognito_streams_and_push_sync_in_the_browser(tmp_path, browser, broker):
    """Edit identity pool → Cognito Streams and Push synchronization, with the keyboard: a
    bad stream name gets the API's error and changes nothing; the saved settings are what
    boto3 reads; a sync reaches the stream; Bulk publish starts and shows its status."""
    server = Server(tmp_path / "data", ["--nats", broker.url]).start()
    try:
        t = server.tenant("acme")
        c = Console(browser, server.url)
        c.sign_in(t.key, t.secret)
        c.go(f"#/pools/{t.pool}?edit=1")
        c.heading("acme-pool")
        c.idle()
        c.find("#cognito-streams summary").send_keys(Keys.ENTER)
        assert "Not started" in c.find("#bulk-state").text
        name = c.find("#stream-name")
        name.send_keys("bad.name")
        c.d.find_element(By.ID, "stream-enabled").send_keys(Keys.SPACE)
        c.d.find_element(By.XPATH, "//button[text()='Save Changes']").send_keys(Keys.ENTER)
        assert "InvalidParameterException" in c.find("#edit-pool .error").text
        assert "CognitoStreams" not in t.dev.get_identity_pool_configuration(IdentityPoolId=t.pool)
        name.clear()
        name.send_keys("game-changes")
        c.find("#push-sync summary").send_keys(Keys.ENTER)
        arn = "arn:aws:sns:us-east-1:123456789012:app/GCM/game"
        c.find("#push-arns").send_keys(arn)
        c.shoot("edit-identity-pool-streams")
        c.d.find_element(By.XPATH, "//button[text()='Save Changes']").send_keys(Keys.ENTER)
        assert "Saved" in c.find("#status .success").text
        got = t.dev.get_identity_pool_configuration(IdentityPoolId=t.pool)
        assert got["CognitoStreams"] == {"StreamName": "game-changes", "StreamingStatus": "ENABLED"}, got
        assert got["PushSync"]["ApplicationArns"] == [arn]

        identity, user = t.identity()
        sync(user, t.pool, identity, "game", [{"Op": "replace", "Key": "level", "Value": "3", "SyncCount": 0}])
        deadline = time.monotonic() + 30
        while broker.count("game-changes") < 1:
            assert time.monotonic() < deadline, "the sync never reached the stream"
            time.sleep(0.2)

        # A second tab shows the saved settings; Bulk publish from there.
        c.d.switch_to.new_window("tab")
        c.go(f"#/pools/{t.pool}?edit=1")
        c.heading("acme-pool")
        c.idle()
        c.find("#cognito-streams summary").click()
        assert c.find("#stream-name").get_attribute("value") == "game-changes"
        assert c.d.find_element(By.ID, "stream-enabled").is_selected()
        c.find("#bulk-publish").send_keys(Keys.ENTER)
        assert "Bulk publish started" in c.find("#status .success").text
        assert any(s in c.find("#bulk-state").text for s in ("In progress", "Succeeded"))
        # Once a day: a second start gets the model's error, shown on the page.
        deadline = time.monotonic() + 30
        while t.dev.get_bulk_publish_details(IdentityPoolId=t.pool)["BulkPublishStatus"] != "SUCCEEDED":
            assert time.monotonic() < deadline, "the bulk publish never finished"
            time.sleep(0.2)
        c.find("#bulk-publish").click()
        assert "AlreadyStreamedException" in c.find("#cognito-streams .error").text
    finally:
        server.stop(signal.SIGKILL)
