"""The web console on :9002, in a real headless Chromium (Debian's `chromium`, driven by Playwright).

The browser comes from the system (CI installs it with apt); Playwright never downloads one.
The browser tests take a screenshot of each page: into the directory named by
NEBULAIO_SCREENSHOTS_DIR when set (`NEBULAIO_SCREENSHOTS_DIR=docs/console` refreshes the README's
pictures), else into the test's temporary directory.

The tests marked `large` (a bucket of 100,000 keys, a 1 GiB upload) take minutes on a small
machine; `-m "not large"` leaves them out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import ROOT_PASSWORD, ROOT_USER, Node, S3Connection, empty_bucket, make_client, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
UI_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def console_url(node) -> str:
    return f"{node.scheme}://127.0.0.1:{node.ports['console']}"


def login(console_url: str, user: str = ROOT_USER, secret: str = ROOT_PASSWORD) -> tuple[requests.Session, str]:
    """A logged-in HTTP session and its CSRF token."""
    http = requests.Session()
    answer = http.post(f"{console_url}/session", json={"accessKey": user, "secretKey": secret})
    assert answer.status_code == 200, answer.text
    return http, answer.json()["csrf"]


# --- HTTP: assets, session, CSRF --------------------------------------------------------------


def test_page_and_assets_carry_security_headers_etags_and_cache_rules(console_url):
    page = requests.get(console_url + "/")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-cache"
    assert requests.get(console_url + "/", headers={"If-None-Match": page.headers["ETag"]}).status_code == 304
    script = requests.get(console_url + "/static/app.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in script.headers["Cache-Control"]
    assert f"/static/app.js?v={script.headers['ETag'].strip(chr(34))}" in page.text
    assert requests.get(console_url + "/static/nothing.js").status_code == 404


def test_without_a_session_nothing_is_reachable(console_url):
    for path in ("/session", "/api/v1/buckets", "/api/v1/cluster/status", "/metrics", "/s3/"):
        assert requests.get(console_url + path).status_code == 401, path
    forged = {"nebulaio_session": "AAAA" + "x" * 200}
    assert requests.get(console_url + "/api/v1/buckets", cookies=forged).status_code == 401
    refused = requests.post(console_url + "/session", json={"accessKey": ROOT_USER, "secretKey": "wrong"})
    assert refused.status_code == 401
    assert "Set-Cookie" not in refused.headers


def test_session_cookie_is_httponly_strict_and_writes_need_the_csrf_token(console_url):
    http, csrf = login(console_url)
    cookie = next(c for c in http.cookies if c.name == "nebulaio_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Strict"
    name = f"console-{uuid.uuid4().hex[:12]}"
    assert http.put(f"{console_url}/s3/{name}").status_code == 403
    crossed = http.put(f"{console_url}/s3/{name}", headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    assert crossed.status_code == 403
    assert http.put(f"{console_url}/s3/{name}", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert http.get(f"{console_url}/api/v1/buckets/{name}").json()["name"] == name
    assert http.delete(f"{console_url}/api/v1/buckets/{name}", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert http.delete(f"{console_url}/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert http.get(f"{console_url}/api/v1/buckets").status_code == 401


def test_a_logged_out_cookie_is_refused_even_when_replayed(console_url):
    http, csrf = login(console_url)
    stolen = dict(http.cookies)
    assert http.delete(f"{console_url}/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert requests.get(f"{console_url}/s3/", cookies=stolen).status_code == 401


def test_an_active_session_outlives_its_first_token(node_factory):
    ttl = 4
    short = node_factory(extra_env={"NEBULAIO_ADMIN_TOKEN_TTL": str(ttl)})
    console_url = f"{short.scheme}://127.0.0.1:{short.ports['console']}"
    http, _ = login(console_url)
    first_expiry = time.time() + ttl

    def still_in_after_expiry() -> bool:
        answer = http.get(f"{console_url}/api/v1/buckets")
        assert answer.status_code == 200, answer.text
        return time.time() > first_expiry + 1

    wait_for(still_in_after_expiry, 30, "the first token to expire while the session goes on", interval=0.2)


def test_share_links_are_presigned_urls_that_s3_serves(console_url, s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir/a b+c.txt", Body=b"shared bytes")
    http, csrf = login(console_url)
    answer = http.post(
        f"{console_url}/share",
        json={"bucket": bucket, "key": "dir/a b+c.txt", "expires": 60},
        headers={"X-CSRF-Token": csrf},
    )
    assert answer.status_code == 200, answer.text
    assert requests.get(answer.json()["url"]).content == b"shared bytes"
    too_long = http.post(
        f"{console_url}/share", json={"bucket": bucket, "key": "k", "expires": 10**9}, headers={"X-CSRF-Token": csrf}
    )
    assert too_long.status_code == 400


def test_object_bytes_are_served_sandboxed_as_attachments(console_url, s3, bucket):
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<script>alert(1)</script>", ContentType="text/html")
    http, _ = login(console_url)
    answer = http.get(f"{console_url}/s3/{bucket}/page.html")
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"] == "attachment"
    assert answer.headers["Content-Security-Policy"].startswith("sandbox")


def test_a_user_without_admin_rights_reaches_no_admin_api(console_url, new_user):
    _, _, pair = new_user()
    http, _ = login(console_url, pair["accessKey"], pair["secretKey"])
    assert http.get(console_url + "/session").json()["admin"] is False
    for path in ("/api/v1/users", "/api/v1/cluster/status", "/api/v1/policies"):
        assert http.get(console_url + path).status_code == 403, path


def test_a_user_logs_out_and_back_in_and_the_old_cookie_stays_dead(console_url, new_user):
    _, _, pair = new_user()
    http, csrf = login(console_url, pair["accessKey"], pair["secretKey"])
    stolen = dict(http.cookies)
    assert http.delete(f"{console_url}/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert requests.get(f"{console_url}/session", cookies=stolen).status_code == 401
    again, _ = login(console_url, pair["accessKey"], pair["secretKey"])
    assert again.get(f"{console_url}/session").status_code == 200


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (CI installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def expected_errors() -> list[str]:
    """What a browser console error may contain and not fail the test: refusals (4xx) by
    default; a test that provokes other failures on purpose adds them."""
    return ["status of 4"]


@pytest.fixture
def page(browser, console_url, expected_errors):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    yield page
    context.close()
    assert not [e for e in errors if not any(expected in e for expected in expected_errors)], errors


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    configured = os.environ.get("NEBULAIO_SCREENSHOTS_DIR")
    return Path(configured) if configured else tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def shoot(page, screenshots):
    """shoot(name, mask=()): a screenshot of the page; `mask` hides what belongs to this run only."""
    screenshots.mkdir(parents=True, exist_ok=True)

    def take(name: str, mask=()) -> None:
        page.mouse.move(0, 0)
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True, mask=list(mask), mask_color="#e9ecef")

    return take


def ui_login(page, console_url, shoot=None) -> None:
    page.goto(console_url + "/")
    page.get_by_label("Access key").fill(ROOT_USER)
    page.get_by_label("Secret key").fill(ROOT_PASSWORD)
    if shoot:
        shoot("login")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Buckets").wait_for()


@pytest.fixture
def bucket_name(s3):
    """The name of a bucket the test creates; emptied and removed afterwards."""
    name = f"console-{uuid.uuid4().hex[:12]}"
    yield name
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


def test_browser_buckets_uploads_folders_downloads_and_policy(page, console_url, s3, tmp_path, shoot, bucket_name):
    name = bucket_name
    ui_login(page, console_url, shoot)
    page.get_by_label("Bucket name").fill(name)
    page.get_by_label("Versioning").check()
    page.get_by_role("button", name="Create bucket").click()
    page.get_by_role("link", name=name).click()
    page.get_by_text("This folder is empty.").wait_for()

    small = tmp_path / "hello.txt"
    small.write_bytes(b"hello from the console\n" * 100)
    page.get_by_label("Choose files to upload").set_input_files(str(small))
    bar = page.get_by_label("Upload of hello.txt")
    page.locator(".uploads li", has_text="hello.txt").get_by_text("done").wait_for()
    assert bar.get_attribute("max") == str(small.stat().st_size)

    folder = tmp_path / "reports"
    (folder / "2025").mkdir(parents=True)
    big = os.urandom(17 * 1024 * 1024 + 5)  # above the multipart threshold: two parts
    (folder / "2025" / "big.bin").write_bytes(big)
    (folder / "note.txt").write_text("a note")
    page.get_by_label("Choose a folder to upload").set_input_files(str(folder))
    page.locator(".uploads li", has_text="big.bin").get_by_text("done").wait_for(timeout=120_000)
    assert s3.head_object(Bucket=name, Key="reports/2025/big.bin")["ETag"].endswith('-2"')

    page.get_by_role("link", name="📁 reports/").click()
    page.get_by_role("link", name="📁 2025/").click()
    page.get_by_role("navigation", name="Breadcrumbs").get_by_role("link", name="2025").wait_for()
    shoot("objects")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert hashlib.sha256(Path(download.value.path()).read_bytes()).digest() == hashlib.sha256(big).digest()

    page.get_by_role("navigation", name="Breadcrumbs").get_by_role("link", name=name).click()
    page.get_by_label("Search by prefix").fill("hel")
    page.get_by_role("link", name="hello.txt").click()
    page.locator(".preview pre").wait_for()
    assert "hello from the console" in page.locator(".preview pre").inner_text()
    page.get_by_role("button", name="Make link").click()
    page.wait_for_function("document.querySelector('[aria-label=\"Share link\"]').value.startsWith('http')")
    url = page.get_by_label("Share link").input_value()
    assert requests.get(url).content == small.read_bytes()
    page.locator("section[aria-label=Versions] td").first.wait_for()
    shoot("object")

    page.goto(f"{console_url}/#/settings/{name}")
    editor = page.get_by_label("Bucket policy", exact=True).locator("textarea")
    editor.fill('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}')
    page.get_by_role("button", name="Save bucket policy").click()
    page.locator("section[aria-label='Bucket policy'] .error").filter(has_text="MalformedPolicy").wait_for()
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}
        ],
    }
    editor.fill(json.dumps(policy))
    page.get_by_role("button", name="Save bucket policy").click()
    page.locator("section[aria-label='Bucket policy'] .ok").wait_for()
    assert json.loads(s3.get_bucket_policy(Bucket=name)["Policy"]) == policy
    shoot("settings")

    page.goto(f"{console_url}/#/buckets")
    page.get_by_role("button", name=f"Delete bucket {name}").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete bucket {name}").click()
    page.get_by_text(f"Bucket {name} is not empty").wait_for()
    shoot("buckets")

    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{console_url}/#/browse/{name}/")
    page.get_by_role("link", name="hello.txt").wait_for()
    shoot("objects-phone")
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Log in").wait_for()


def test_browser_upload_sends_a_failed_part_again(page, console_url, s3, bucket, tmp_path, expected_errors):
    expected_errors.append("status of 503")
    source = tmp_path / "retried.bin"
    source.write_bytes(os.urandom(17 * 1024 * 1024 + 5))  # above the multipart threshold: two parts
    attempts = []

    def unavailable_once(route) -> None:
        attempts.append(route.request.url)
        if len(attempts) == 1:
            route.fulfill(status=503, content_type="application/xml", body="<Error><Code>SlowDown</Code></Error>")
        else:
            route.continue_()

    page.route(re.compile(r"/s3/.*[?&]partNumber=2(&|$)"), unavailable_once)
    ui_login(page, console_url)
    page.goto(f"{console_url}/#/browse/{bucket}/")
    page.get_by_text("This folder is empty.").wait_for()
    page.get_by_label("Choose files to upload").set_input_files(str(source))
    outcome = page.locator(".uploads li", has_text=source.name).get_by_text(re.compile("^(done|failed)$"))
    outcome.wait_for(timeout=120_000)
    assert outcome.inner_text() == "done" and len(attempts) == 2
    assert s3.head_object(Bucket=bucket, Key=source.name)["ETag"].endswith('-2"')
    assert s3.get_object(Bucket=bucket, Key=source.name)["Body"].read() == source.read_bytes()


def test_browser_cluster_page_shows_nodes_repair_and_live_charts(page, console_url, s3, shoot):
    ui_login(page, console_url, shoot)
    page.get_by_role("link", name="Cluster").click()
    page.get_by_role("heading", name="Raft").wait_for()
    row = page.locator("section[aria-label='Nodes'] tbody tr").first
    wait_for(lambda: "alive" in row.inner_text() and "leader" in row.inner_text(), 30, "this node alive and leading")
    assert " of " in row.locator("td").nth(7).inner_text()  # disk used of total, from gossip
    repair = page.locator("section[aria-label='Repair']")
    wait_for(lambda: "Passes" in repair.inner_text(), 30, "the repair figures")
    assert "Cycles" in repair.inner_text() and repair.locator("progress").count() == 1
    assert "Drain" in page.locator("section[aria-label='Nodes'] thead").inner_text()
    rate = page.locator("section[aria-label='Requests per second'] .muted")

    def traffic_drawn() -> bool:
        for _ in range(20):
            s3.list_buckets()
        return rate.count() > 0 and rate.inner_text() not in ("", "now 0.0")

    wait_for(traffic_drawn, 60, "the request chart to show the traffic")
    shoot("cluster", mask=[page.locator(".data-path")])


def test_browser_cluster_page_shows_the_scrub_and_starts_a_pass(page, console_url, s3, bucket):
    s3.put_object(Bucket=bucket, Key="scrubbed", Body=os.urandom(64 * 1024))
    ui_login(page, console_url)
    page.get_by_role("link", name="Cluster").click()
    scrub = page.locator("section[aria-label='Scrub']")
    wait_for(lambda: "Passes" in scrub.inner_text(), 30, "the scrub figures")
    assert "Damaged found" in scrub.inner_text() and scrub.locator("progress").count() == 1
    passes = int(scrub.locator("dt:text-is('Passes') + dd").inner_text())
    scrub.get_by_role("button", name="Scrub now").click()
    wait_for(
        lambda: int(scrub.locator("dt:text-is('Passes') + dd").inner_text()) > passes, 60, "the pass to show as done"
    )
    assert "none yet" not in scrub.locator("dt:text-is('Last pass') + dd").inner_text()


def test_browser_identities_create_a_user_and_a_key(page, console_url, node, shoot):
    user = f"console-{uuid.uuid4().hex[:8]}"
    ui_login(page, console_url, shoot)
    page.get_by_role("link", name="Identities").click()
    page.get_by_label("user name").fill(user)
    page.get_by_role("button", name="Create user").click()
    row = page.get_by_role("row").filter(has_text=user)
    row.get_by_role("button", name="New key").click()
    secret = page.locator(".secret").filter(has_text="Secret key:")
    secret.wait_for()
    access_key = page.locator(".secret").filter(has_text="Access key:").inner_text().split(": ", 1)[1]
    secret_key = secret.inner_text().split(": ", 1)[1]
    # The user's key list shows the new key with its secret still on screen, without a reload.
    row.locator("code", has_text=access_key).wait_for()
    assert secret.is_visible()
    shoot("identities")
    client = make_client(f"{node.s3_url}", access_key=access_key, secret_key=secret_key)
    try:
        client.list_buckets()
    except ClientError as refused:  # a user without policies may be denied, but its key is known
        assert refused.response["Error"]["Code"] not in ("InvalidAccessKeyId", "SignatureDoesNotMatch")
    # The secret is shown once: the next change redraws the page without it.
    row.get_by_role("button", name="Disable", exact=True).click()
    row.get_by_text("(disabled)").wait_for()
    assert page.locator(".secret").count() == 0


def test_browser_keys_page_creates_disables_and_rotates_a_key(page, console_url, shoot):
    description = f"console-key-{uuid.uuid4().hex[:8]}"
    ui_login(page, console_url)
    page.get_by_role("link", name="Keys").click()
    page.get_by_label("description").fill(description)
    page.get_by_role("button", name="Create key").click()
    row = page.get_by_role("row").filter(has_text=description)
    row.get_by_text("enabled", exact=True).wait_for()
    row.get_by_role("button", name="Rotate").click()
    row.get_by_text("2 (rotated").wait_for()
    row.get_by_role("button", name="Disable").click()
    row.get_by_text("disabled", exact=True).wait_for()
    shoot("keys", mask=[row])


def test_browser_identities_disable_users_and_manage_groups_and_their_policies(page, console_url):
    user, group, policy = (f"console-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("user", "group", "policy"))
    http, _ = login(console_url)

    def admin(path: str) -> dict:
        answer = http.get(console_url + path)
        assert answer.status_code == 200, answer.text
        return answer.json()

    ui_login(page, console_url)
    page.get_by_role("link", name="Identities").click()
    page.get_by_label("user name").fill(user)
    page.get_by_role("button", name="Create user").click()
    row = page.get_by_role("row").filter(has_text=user)
    row.get_by_role("button", name="Disable user").click()
    row.get_by_role("button", name="Enable user").wait_for()
    assert admin(f"/api/v1/users/{user}")["enabled"] is False

    page.get_by_label("group name").fill(group)
    page.get_by_role("button", name="Create group").click()
    group_row = page.get_by_role("row").filter(has_text=group)
    group_row.wait_for()  # the page is drawn again: fill the forms of the new one
    members = page.get_by_role("form", name="Add member")
    members.get_by_label("group").fill(group)
    members.get_by_label("user").fill(user)
    members.get_by_role("button", name="Add member").click()
    group_row.get_by_text(user).wait_for()

    page.get_by_label("Policy name").fill(policy)
    page.get_by_role("button", name="Save policy").click()
    page.get_by_role("row").filter(has_text=policy).wait_for()
    policy_row = page.get_by_role("row").filter(has_text=policy)
    for action, attached in (("Attach to group", True), ("Detach from group", False)):
        form = page.get_by_role("form", name=action)
        form.get_by_label("policy").fill(policy)
        form.get_by_label("group").fill(group)
        form.get_by_role("button", name=action).click()

        def shown(attached: bool = attached) -> bool:
            return (group in policy_row.inner_text()) == attached

        wait_for(shown, 30, f"the page after {action}")
        assert (group in admin(f"/api/v1/policies/{policy}")["groups"]) == attached

    page.get_by_role("row").filter(has_text=group).get_by_role("button", name="Remove").click()
    wait_for(lambda: user not in admin(f"/api/v1/groups/{group}")["members"], 30, "the member removed")
    page.get_by_role("row").filter(has_text=group).get_by_text(user).wait_for(state="detached")


def test_admin_calls_naming_unicode_reach_the_admin_api(console_url):
    http, _ = login(console_url)
    answer = http.get(console_url + "/api/v1/users/%C3%A0-%E2%82%AC")
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "NoSuchEntity"


# --- large data: a bucket of 100,000 keys, a 1 GiB upload ----------------------------------------

MIB = 1024 * 1024
TOTAL_KEYS = 100_000
ROOT_KEYS = 2_000
FOLDERS = 4
FILL_CONNECTIONS = 32
UPLOAD_TIMEOUT_MS = 900_000


def many_keys() -> list[str]:
    """`key-000000` to `key-001999` at the root, the rest spread over `folder-0/` to `folder-3/`."""
    return [f"key-{i:06d}" if i < ROOT_KEYS else f"folder-{i % FOLDERS}/key-{i:06d}" for i in range(TOTAL_KEYS)]


def put_empty_objects(node: Node, bucket: str, keys: list[str]) -> None:
    """A zero-byte object at every key: signed PUTs over keep-alive connections, many at once."""

    def send(share: list[str]) -> None:
        connection = S3Connection(node, timeout=60)
        try:
            for key in share:
                status, _, body = connection.request("PUT", f"/{bucket}/{quote(key)}")
                assert status == 200, (key, status, body)
        finally:
            connection.close()

    with ThreadPoolExecutor(FILL_CONNECTIONS) as pool:
        list(pool.map(send, [keys[i::FILL_CONNECTIONS] for i in range(FILL_CONNECTIONS)]))


@pytest.fixture(scope="module")
def many_keys_bucket(tmp_path_factory) -> Iterator[tuple[Node, str]]:
    """(node, bucket) of 100,000 keys, filled once for the module on a node of its own: no other
    test lists or empties them, and stopping the node is their whole clean-up."""
    base = tmp_path_factory.mktemp("many-keys-node")
    node = Node(base / "data", base / "node.log")
    try:
        node.start()
        bucket = "many-keys"
        node.client().create_bucket(Bucket=bucket)
        started = time.monotonic()
        put_empty_objects(node, bucket, many_keys())
        print(f"\n{TOTAL_KEYS} keys put in {time.monotonic() - started:.0f} s")
        yield node, bucket
    finally:
        node.stop()


@pytest.mark.large
def test_browser_pages_through_a_bucket_of_100000_keys(page, many_keys_bucket):
    """Responsive by construction: one ListObjectsV2 per page drawn, one page of rows in the DOM."""
    node, bucket = many_keys_bucket
    s3_calls = []
    page.on("request", lambda request: "/s3/" in request.url and s3_calls.append(request))

    def listings() -> list[dict]:
        """The query of every S3 call the page made; each must be a ListObjectsV2."""
        assert all(call.method == "GET" for call in s3_calls)
        queries = [dict(parse_qsl(urlsplit(call.url).query)) for call in s3_calls]
        assert all(query.get("list-type") == "2" for query in queries), queries
        return queries

    rows = page.locator("main tbody tr")
    names = rows.locator("td.key")

    def one_page_drawn(page_size: int) -> list[str]:
        assert page.locator("tr").count() <= page_size + 1  # the rows and one header, never the bucket
        return names.all_inner_texts()

    ui_login(page, f"{node.scheme}://127.0.0.1:{node.ports['console']}")
    page.get_by_role("link", name=bucket).click()
    page.get_by_text("Page 1", exact=True).wait_for()
    page_size = int(listings()[0]["max-keys"])
    first = one_page_drawn(page_size)
    assert len(first) == page_size and len(s3_calls) == 1
    assert first[:FOLDERS] == [f"📁 folder-{n}/" for n in range(FOLDERS)] and first[FOLDERS] == "key-000000"

    page.get_by_role("button", name="Next").click()
    page.get_by_text("Page 2", exact=True).wait_for()
    second = one_page_drawn(page_size)
    assert len(second) == page_size and not set(first) & set(second)
    assert len(s3_calls) == 2 and listings()[1]["continuation-token"]
    page.get_by_role("button", name="Previous").click()
    page.get_by_text("Page 1", exact=True).wait_for()
    assert one_page_drawn(page_size) == first and len(s3_calls) == 3

    search = page.get_by_label("Search by prefix")
    last_at_root = f"key-{ROOT_KEYS - 1:06d}"
    search.fill(last_at_root)
    page.get_by_role("link", name=last_at_root, exact=True).wait_for()
    assert one_page_drawn(page_size) == [last_at_root]
    assert len(s3_calls) == 4 and listings()[3]["prefix"] == last_at_root
    search.fill("")
    folder = page.get_by_role("link", name=f"📁 folder-{FOLDERS - 1}/")
    folder.wait_for()
    assert len(s3_calls) == 5

    folder.click()
    page.get_by_role("navigation", name="Breadcrumbs").get_by_role("link", name=f"folder-{FOLDERS - 1}").wait_for()
    page.get_by_text("Page 1", exact=True).wait_for()
    inside = one_page_drawn(page_size)
    assert len(inside) == page_size and all(name.startswith("key-") for name in inside)
    assert page.get_by_role("button", name="Next").is_enabled()
    assert len(s3_calls) == 6 and listings()[5]["prefix"] == f"folder-{FOLDERS - 1}/"
    last = many_keys()[-1].rpartition("/")[2]
    search.fill(last)
    page.get_by_role("link", name=last, exact=True).wait_for()
    assert one_page_drawn(page_size) == [last]
    assert len(s3_calls) == 7 and listings()[6]["prefix"] == f"folder-{FOLDERS - 1}/{last}"


@pytest.mark.large
def test_browser_uploads_a_gibibyte_in_parts_with_progress(page, console_url, s3, bucket, tmp_path):
    size = 1024 * MIB
    source = tmp_path / "gibibyte.bin"
    block = os.urandom(MIB)
    written = hashlib.md5()
    with source.open("wb") as out:
        for index in range(size // MIB):
            chunk = index.to_bytes(8, "big") + block[8:]  # every MiB differs: parts out of order would show
            out.write(chunk)
            written.update(chunk)
    try:
        ui_login(page, console_url)
        page.goto(f"{console_url}/#/browse/{bucket}/")
        page.get_by_text("This folder is empty.").wait_for()
        # Every figure the upload's progress shows, recorded by the page itself: nothing is missed.
        page.evaluate(
            """() => {
              window.progressShown = [];
              const uploads = document.querySelector(".uploads");
              new MutationObserver(() => window.progressShown.push(uploads.querySelector("output").textContent))
                .observe(uploads, { subtree: true, childList: true, characterData: true });
            }"""
        )
        started = time.monotonic()
        page.get_by_label("Choose files to upload").set_input_files(str(source))
        page.locator(".uploads li", has_text=source.name).get_by_text("done").wait_for(timeout=UPLOAD_TIMEOUT_MS)
        print(f"\n1 GiB uploaded through the console in {time.monotonic() - started:.1f} s")
        shown = page.evaluate("window.progressShown")
        assert any(re.fullmatch(r"[1-9][0-9]?%", text) for text in shown), shown
        assert page.get_by_label(f"Upload of {source.name}").get_attribute("max") == str(size)

        head = s3.head_object(Bucket=bucket, Key=source.name)
        assert head["ContentLength"] == size
        parts = re.fullmatch(r'"[0-9a-f]{32}-(\d+)"', head["ETag"])
        assert parts and int(parts[1]) > 1, head["ETag"]
        read = hashlib.md5()
        for chunk in s3.get_object(Bucket=bucket, Key=source.name)["Body"].iter_chunks(MIB):
            read.update(chunk)
        assert read.hexdigest() == written.hexdigest()
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    finally:
        s3.delete_object(Bucket=bucket, Key=source.name)
        source.unlink(missing_ok=True)
