"""The web page (`GET /`) and `ferry.js` in a real browser against a real `ferry serve`."""

import csv
import http.client
import http.server
import io
import os
import re
import sqlite3
import threading
import zipfile
from pathlib import Path

from playwright.sync_api import expect

from conftest import REPO, s3_storage

PEOPLE = "CREATE TABLE people (id INTEGER NOT NULL, name TEXT NOT NULL, age INTEGER)"


def open_page(page, server):
    page.goto(server.base + "/")
    expect(page.get_by_role("heading", name="Downloads and uploads")).to_be_visible()


def job_card(page, name):
    return page.locator("li.job", has=page.locator(".job-name", has_text=name))


def export_generated(page, name, rows, fmt="csv"):
    """Starts a generated-data export from the form; returns the download."""
    page.get_by_label("Generated data").check()
    page.get_by_label("Rows", exact=True).fill(str(rows))
    page.get_by_label("Format").select_option(fmt)
    page.locator("#export-name").fill(name)
    with page.expect_download() as info:
        page.get_by_role("button", name="Start the export").click()
    return info.value


def export_sql(page, name, query, connection="local"):
    page.get_by_label("SQL").check()
    page.locator("#sql-connection").select_option(connection)
    page.get_by_label("Query").fill(query)
    page.get_by_label("Format").select_option("csv")
    page.locator("#export-name").fill(name)
    with page.expect_download() as info:
        page.get_by_role("button", name="Start the export").click()
    return info.value


def read_csv(download):
    return list(csv.reader(io.StringIO(Path(download.path()).read_text())))


def people_csv(good: int) -> str:
    """`good` valid rows plus two bad ones (a missing NOT NULL name, an age that is no integer)."""
    lines = ["id,name,age"]
    for i in range(1, good + 1):
        lines.append(f"{i},Person {i},{20 + i % 50}")
        if i == 3:
            lines.append(f"{good + 1},,33")
        if i == 7:
            lines.append(f"{good + 2},Bad Age,abc")
    return "\n".join(lines) + "\n"


def upload_people(page, tmp_path, good=500, table="people", drop=False):
    """Uploads people.csv from the form (picked, or dropped on the zone) and waits for the
    import's result."""
    path = tmp_path / "people.csv"
    path.write_text(people_csv(good))
    if drop:
        transfer = page.evaluate_handle(
            """(text) => { const t = new DataTransfer();
                           t.items.add(new File([text], "people.csv", {type: "text/csv"})); return t; }""",
            path.read_text())
        page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    else:
        page.set_input_files("#upload-file", str(path))
    expect(page.locator("#upload-chosen")).to_contain_text("people.csv")
    page.locator("#upload-connection").select_option("local")
    page.locator("#upload-table").focus()
    # The connection's tables are offered (GET /v1/connections/local/tables); any may be typed.
    expect(page.locator("#upload-tables option[value='people']")).to_have_count(1)
    page.locator("#upload-table").fill(table)
    page.get_by_label("Mode").select_option("append")
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#upload-result .inserted")).to_have_text(f"{good:,}", timeout=20_000)
    return path


def create_people(directory: Path) -> None:
    with sqlite3.connect(directory / "local.db") as db:
        db.execute(PEOPLE)


def test_the_page_loads_with_no_console_error_no_request_elsewhere_and_works_from_the_keyboard(server, watched_page):
    page, watched = watched_page
    open_page(page, server)
    expect(page.locator("#jobs-message")).to_have_text("No jobs yet: start an export or upload a file.")
    formats = page.locator("#export-format option").all_text_contents()
    assert formats == ["csv", "csv.gz", "jsonl", "jsonl.gz", "parquet", "xlsx"]
    # The forms offer what the discovery endpoints list: the built-in `local` connection.
    expect(page.locator("#sql-connection option")).to_have_text(["local"])
    expect(page.locator("#upload-connection option")).to_have_text(["local"])
    page.wait_for_load_state("networkidle")
    # Every control has a label, and the export starts from the keyboard alone.
    unlabelled = page.evaluate("""[...document.querySelectorAll("input, select, textarea, button")]
        .filter((c) => !(c.labels?.length || c.getAttribute("aria-label") || c.textContent.trim()))
        .map((c) => c.outerHTML)""")
    assert unlabelled == [], unlabelled
    page.locator("#export-name").focus()
    page.keyboard.type("Typed")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "bundle-entry-name"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Add to the zip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Start the export"
    with page.expect_download():
        page.keyboard.press("Enter")
    assert watched.errors == [], watched.errors
    assert watched.foreign_requests(server.base) == [], watched.requests
    assert {"/", "/app.js", "/app.css", "/ferry.js"} <= {r.removeprefix(server.base) for r in watched.requests}


RECORD_STATES = """
window.seenStates = [];
new MutationObserver(() => {
  for (const badge of document.querySelectorAll("li.job .state")) {
    const seen = `${badge.closest("li.job").querySelector(".job-name").textContent}: ${badge.textContent}`;
    if (window.seenStates.at(-1) !== seen) window.seenStates.push(seen);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_a_generated_export_shows_progress_in_the_panel_and_downloads_automatically(server, watched_page):
    page, watched = watched_page
    page.add_init_script(RECORD_STATES)
    open_page(page, server)
    download = export_generated(page, "Five thousand", 5000)
    rows = read_csv(download)
    assert rows[0] == ["id", "name", "email"]
    assert len(rows) == 5001
    assert all(len(row) == 3 for row in rows)
    assert download.suggested_filename.endswith(".csv")
    card = job_card(page, "Five thousand")
    expect(card.locator(".state")).to_have_text("succeeded")
    expect(card.locator(".job-progress")).to_have_attribute("value", "100")
    expect(card.locator(".job-progress-text")).to_contain_text("5,000 rows")
    # The card was there, live, before the job ended.
    states = page.evaluate("window.seenStates")
    assert states[0] in ("Five thousand: queued", "Five thousand: running"), states
    assert states[-1] == "Five thousand: succeeded", states
    expect(page.locator(".notice")).to_contain_text("— 5,000 rows")
    page.locator(".notice").get_by_role("button").click()
    expect(page.locator(".notice")).to_have_count(0)
    assert watched.errors == [], watched.errors
    assert watched.foreign_requests(server.base) == [], watched.requests


def test_a_sql_export_of_the_local_sqlite_connection_downloads_the_right_rows(make_server, watched_page):
    def prepare(directory):
        with sqlite3.connect(directory / "local.db") as db:
            db.execute("CREATE TABLE cities (name TEXT, population INTEGER)")
            db.executemany("INSERT INTO cities VALUES (?, ?)",
                           [("Lyon", 522_250), ("Oslo, Norway", 709_037), ('Say "hi"', 1)])
    server = make_server(prepare=prepare)
    page, watched = watched_page
    open_page(page, server)
    download = export_sql(page, "Cities", "SELECT name, population FROM cities ORDER BY population DESC")
    assert read_csv(download) == [["name", "population"], ["Oslo, Norway", "709037"],
                                  ["Lyon", "522250"], ['Say "hi"', "1"]]
    expect(job_card(page, "Cities").locator(".state")).to_have_text("succeeded")
    assert watched.errors == [], watched.errors


CITY_TEMPLATE = """
[templates.cities_since]
connection = "local"
query = "SELECT name, founded FROM cities WHERE founded >= $1 AND big = $2 ORDER BY name"
params = [{ name = "year", type = "int" }, { name = "big", type = "bool" }]
"""


def test_a_template_export_offers_typed_parameters_and_downloads_its_rows(make_server, watched_page):
    def prepare(directory):
        with sqlite3.connect(directory / "local.db") as db:
            db.execute("CREATE TABLE cities (name TEXT, founded INTEGER, big INTEGER)")
            db.executemany("INSERT INTO cities VALUES (?, ?, ?)",
                           [("Lyon", -43, 1), ("Brasília", 1960, 1), ("Canberra", 1913, 1), ("Nowa Huta", 1949, 0)])
    server = make_server(prepare=prepare, extra=CITY_TEMPLATE)
    page, watched = watched_page
    open_page(page, server)
    page.get_by_role("radio", name="Template").check()
    expect(page.locator("#template option")).to_have_text(["cities_since"])
    year = page.get_by_label("year (int)")
    expect(year).to_have_attribute("type", "number")
    expect(page.get_by_label("big (bool)")).to_have_attribute("type", "checkbox")
    year.fill("1900")
    page.get_by_label("big (bool)").check()
    page.locator("#export-name").fill("New capitals")
    with page.expect_download() as info:
        page.get_by_role("button", name="Start the export").click()
    assert read_csv(info.value) == [["name", "founded"], ["Brasília", "1960"], ["Canberra", "1913"]]
    assert watched.errors == [], watched.errors


def test_parquet_and_xlsx_exports_from_the_page_download_real_files(server, watched_page):
    page, watched = watched_page
    open_page(page, server)
    parquet = Path(export_generated(page, "As parquet", 300, fmt="parquet").path()).read_bytes()
    assert parquet[:4] == b"PAR1" and parquet[-4:] == b"PAR1"
    xlsx = Path(export_generated(page, "As xlsx", 300, fmt="xlsx").path()).read_bytes()
    assert xlsx[:2] == b"PK"  # a zip: the workbook
    assert watched.errors == [], watched.errors


def test_a_zip_bundle_of_generated_rows_and_sql_is_built_in_the_form_and_downloads_with_its_entries(
        make_server, watched_page):
    def prepare(directory):
        with sqlite3.connect(directory / "local.db") as db:
            db.execute("CREATE TABLE towns (id INTEGER, name TEXT)")
            db.executemany("INSERT INTO towns VALUES (?, ?)", [(1, "Oslo"), (2, "Lyon"), (3, "Graz")])
    server = make_server(prepare=prepare)
    page, watched = watched_page
    open_page(page, server)
    files = page.get_by_role("list", name="Files in the zip")
    # The first file: generated rows as CSV, added with the button.
    page.get_by_label("Generated data").check()
    page.get_by_label("Rows", exact=True).fill("25")
    page.get_by_label("Format").select_option("csv")
    page.get_by_label("File name in the zip").fill("people")
    page.get_by_role("button", name="Add to the zip").click()
    expect(files.get_by_role("listitem")).to_have_count(1)
    expect(page.locator("#bundle-status")).to_have_text("Added people.csv: 1 file in the zip.")
    # A second file of the same name and format is refused, naming it.
    page.get_by_label("File name in the zip").fill("people")
    page.get_by_role("button", name="Add to the zip").click()
    expect(page.locator("#export-error")).to_contain_text("people.csv is in the zip already")
    expect(files.get_by_role("listitem")).to_have_count(1)
    # The second: SQL on `local` as JSON lines, added from the keyboard.
    page.get_by_label("SQL").check()
    page.locator("#sql-connection").select_option("local")
    page.get_by_label("Query").fill("SELECT id, name FROM towns ORDER BY id")
    page.get_by_label("Format").select_option("jsonl")
    page.get_by_label("File name in the zip").fill("towns")
    page.get_by_label("File name in the zip").press("Enter")
    expect(files.get_by_role("listitem")).to_have_text([
        re.compile(r"^people\.csv\s*generated data, 25 rows\s*Remove$"),
        re.compile(r"^towns\.jsonl\s*SQL on local: SELECT id, name FROM towns ORDER BY id\s*Remove$")])
    # A file added by mistake is removed again.
    page.get_by_label("Generated data").check()
    page.get_by_label("File name in the zip").fill("extra")
    page.get_by_role("button", name="Add to the zip").click()
    expect(files.get_by_role("listitem")).to_have_count(3)
    page.get_by_role("button", name="Remove extra.jsonl from the zip").click()
    expect(files.get_by_role("listitem")).to_have_count(2)
    expect(page.locator("#bundle-entry-name")).to_be_focused()
    # Readable at a phone's width with the bundle in the form.
    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.locator("#export-name").fill("Monthly")
    with page.expect_download() as info:
        page.get_by_role("button", name="Start the zip export (2 files)").click()
    download = info.value
    assert download.suggested_filename == "Monthly.zip"
    with zipfile.ZipFile(download.path()) as bundle:
        assert bundle.namelist() == ["people.csv", "towns.jsonl"]
        people = list(csv.reader(io.StringIO(bundle.read("people.csv").decode())))
        towns = bundle.read("towns.jsonl").decode().splitlines()
    assert people[0] == ["id", "name", "email"]
    assert len(people) == 26
    assert towns == ['{"id":1,"name":"Oslo"}', '{"id":2,"name":"Lyon"}', '{"id":3,"name":"Graz"}']
    # The panel shows the bundle and each of its files with its rows.
    card = job_card(page, "Monthly")
    expect(card.locator(".state")).to_have_text("succeeded")
    expect(card.locator(".job-facts")).to_contain_text("zip, 2 files")
    expect(card.locator(".job-facts")).to_contain_text("28")
    entries = card.get_by_role("list", name="Files in Monthly").get_by_role("listitem")
    expect(entries).to_have_text([re.compile(r"^people\.csv\s*25 rows · "), re.compile(r"^towns\.jsonl\s*3 rows · ")])
    # The bundle sent is done with: the form is back to one export.
    expect(files.get_by_role("listitem")).to_have_count(0)
    expect(page.locator("#export-submit")).to_have_text("Start the export")
    # It downloads again from the panel like any export.
    with page.expect_download() as again:
        card.get_by_role("button", name="Download export “Monthly”").click()
    assert Path(again.value.path()).read_bytes() == Path(download.path()).read_bytes()
    assert watched.errors == [], watched.errors


def test_after_a_reload_the_panel_lists_the_jobs_made_before(server, watched_page):
    page, _ = watched_page
    open_page(page, server)
    export_generated(page, "Before the reload", 100, fmt="jsonl")
    status, job = server.request("POST", "/v1/exports", {
        "name": "Made through the API", "format": "csv.gz",
        "source": {"type": "generate", "rows": 10, "columns": [{"name": "n", "kind": "int"}]}})
    assert status == 202, job
    server.wait_final("export", job["id"])
    page.reload()
    names = page.locator("li.job .job-name")
    expect(names).to_have_text(["Made through the API", "Before the reload"])
    for name in ("Made through the API", "Before the reload"):
        expect(job_card(page, name).locator(".state")).to_have_text("succeeded")
        expect(job_card(page, name).get_by_role("button", name="Download")).to_be_visible()


def test_an_upload_with_two_bad_rows_shows_progress_counts_and_the_rejected_lines(
        make_server, watched_page, tmp_path):
    server = make_server(prepare=create_people)
    page, watched = watched_page
    open_page(page, server)
    upload_people(page, tmp_path, good=2000)
    size = (tmp_path / "people.csv").stat().st_size
    bar = page.locator("#upload-progress")
    expect(bar).to_have_attribute("value", "100")
    expect(page.locator("#upload-result .rejected")).to_have_text("2")
    table = page.locator("#upload-result table.rejects")
    expect(table.locator("tbody tr")).to_have_count(2)
    lines = table.locator("tbody tr td:first-child").all_text_contents()
    errors = table.locator("tbody tr td:last-child").all_text_contents()
    assert lines == ["5", "10"], lines  # the header is line 1
    assert errors == ["name: required", 'age: not an integer: "abc"'], errors  # quotes parsed
    # The whole rejects CSV, fetched with the token and offered as a file.
    with page.expect_download() as info:
        page.locator("#upload-result").get_by_role("button", name="Download all rejected rows (CSV)").click()
    rejects = read_csv(info.value)
    assert rejects[0][:3] == ["id", "name", "age"] and "_line" in rejects[0] and "_errors" in rejects[0]
    assert len(rejects) == 3
    with sqlite3.connect(server.local_db) as db:
        assert db.execute("SELECT count(*), min(id), max(id) FROM people").fetchone() == (2000, 1, 2000)
    card = job_card(page, "people")
    expect(card.locator(".state")).to_have_text("succeeded")
    expect(card.locator(".job-facts")).to_contain_text("2,000 in, 2 rejected")
    assert size > 0
    assert watched.errors == [], watched.errors
    assert watched.foreign_requests(server.base) == [], watched.requests


def test_the_create_box_makes_a_new_table_from_the_uploaded_file(server, watched_page, tmp_path):
    page, watched = watched_page
    open_page(page, server)
    path = tmp_path / "pets.csv"
    path.write_text("Name,Age,Vaccinated On\nRex,3,2026-01-05\nTom,5,\n")
    page.set_input_files("#upload-file", str(path))
    page.locator("#upload-connection").select_option("local")
    page.locator("#upload-table").fill("pets")
    box = page.get_by_label("Create the table if it does not exist")
    box.focus()
    page.keyboard.press("Space")  # reachable and ticked from the keyboard
    expect(box).to_be_checked()
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#upload-result .inserted")).to_have_text("2", timeout=20_000)
    with sqlite3.connect(server.local_db) as db:
        columns = db.execute("SELECT name, lower(type) FROM pragma_table_info('pets') ORDER BY cid").fetchall()
        assert columns == [("name", "text"), ("age", "integer"), ("vaccinated_on", "date")], columns
        assert db.execute("SELECT sum(age) FROM pets").fetchone() == (8,)
    card = job_card(page, "pets")
    expect(card.locator(".job-facts")).to_contain_text("name text, age integer, vaccinated_on date")
    assert watched.errors == [], watched.errors


def test_the_resumable_box_sends_the_file_in_parts(server, watched_page, tmp_path):
    page, watched = watched_page
    open_page(page, server)
    with sqlite3.connect(server.local_db) as db:
        db.execute("CREATE TABLE parted (id integer PRIMARY KEY, name text)")
    path = tmp_path / "parted.csv"
    path.write_text("id,name\n" + "".join(f"{i},name {i}\n" for i in range(1, 1001)))
    page.set_input_files("#upload-file", str(path))
    box = page.get_by_label("Send in parts that survive an interruption")
    expect(box).not_to_be_checked()  # a small file goes in one request unless asked
    box.check()
    page.locator("#upload-connection").select_option("local")
    page.locator("#upload-table").fill("parted")
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#upload-result .inserted")).to_have_text(re.compile(r"^1\D?000$"), timeout=20_000)
    jobs = page.evaluate("async () => (await (await fetch('/v1/imports')).json())")
    specs = [job["spec"] for job in jobs["items"] if job["spec"]["target"]["table"] == "parted"]
    assert [spec["upload"] for spec in specs] == ["multipart"], specs
    with sqlite3.connect(server.local_db) as db:
        assert db.execute("SELECT count(*), count(DISTINCT id) FROM parted").fetchone() == (1000, 1000)
    assert watched.errors == [], watched.errors


def test_on_s3_an_upload_from_the_page_goes_straight_to_the_bucket(make_server, watched_page, tmp_path):
    server = make_server(prepare=create_people, extra=s3_storage())
    page, watched = watched_page
    puts = []
    page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    open_page(page, server)
    upload_people(page, tmp_path, good=300)
    expect(page.locator("#upload-result .rejected")).to_have_text("2")
    endpoint = os.environ["FERRY_TEST_S3_ENDPOINT"]
    assert len(puts) == 1 and puts[0].startswith(endpoint + "/"), puts  # the file never passed through Ferry
    assert "X-Amz-Signature=" in puts[0]
    with sqlite3.connect(server.local_db) as db:
        assert db.execute("SELECT count(*) FROM people").fetchone() == (300,)
    # Exports on S3 download from the bucket too.
    download = export_generated(page, "From the bucket", 40)
    assert len(read_csv(download)) == 41
    assert watched.errors == [], watched.errors
    assert watched.foreign_requests(server.base, endpoint) == [], watched.requests


def test_with_api_keys_the_page_asks_for_the_token_then_lists_and_downloads(make_server, watched_page, tmp_path):
    server = make_server(auth="api_keys", prepare=create_people)
    page, watched = watched_page
    open_page(page, server)
    dialog = page.get_by_role("dialog", name="Sign in")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Token").fill("not-the-key")
    dialog.get_by_role("button", name="Sign in").click()
    expect(dialog).to_contain_text("That token was refused")
    dialog.get_by_label("Token").fill(server.token)
    dialog.get_by_role("button", name="Sign in").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#jobs-message")).to_have_text("No jobs yet: start an export or upload a file.")
    assert page.evaluate("sessionStorage.getItem('ferry.token')") == server.token
    download = export_generated(page, "With a key", 250)
    assert len(read_csv(download)) == 251
    expect(job_card(page, "With a key").locator(".state")).to_have_text("succeeded")
    # Uploads (this one dropped on the zone) and the rejects CSV work with the token too.
    upload_people(page, tmp_path, good=20, drop=True)
    with page.expect_download() as info:
        page.locator("#upload-result").get_by_role("button", name="Download all rejected rows (CSV)").click()
    assert len(read_csv(info.value)) == 3
    # Signing out forgets the token.
    page.get_by_role("button", name="Sign out").click()
    assert page.evaluate("sessionStorage.getItem('ferry.token')") is None
    page.get_by_role("button", name="Refresh").click()
    expect(dialog).to_be_visible()
    # 401s while signing in are expected console errors of failed requests; nothing else.
    assert [e for e in watched.errors if "401" not in e] == [], watched.errors


class ForeignSite(http.server.ThreadingHTTPServer):
    """Someone else's site on another origin: its own page, and Ferry's API under its own
    origin through a reverse proxy that can cut an event stream (`ferry.js` itself is imported
    cross-origin). A page may also call Ferry across origins directly, when Ferry lists it in
    `allowed_origins` (the CORS test)."""

    daemon_threads = True

    def __init__(self, ferry_base: str, html: str):
        self.ferry = ferry_base.removeprefix("http://")
        self.html = html.encode()
        self.event_requests = []  # the Last-Event-ID of each events request (None: the first)
        super().__init__(("127.0.0.1", 0), ForeignHandler)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class ForeignHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(self.server.html)))
            self.end_headers()
            self.wfile.write(self.server.html)
            return
        self.proxy()

    def do_POST(self):
        self.proxy()

    def proxy(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(self.server.ferry, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        events = self.path.endswith("/events") and response.status == 200
        if events:
            self.server.event_requests.append(self.headers.get("Last-Event-ID"))
        # Like a proxy that drops long requests: the first event stream is cut after its first
        # event, so the client must resume with Last-Event-ID.
        cut = events and len(self.server.event_requests) == 1
        sent = b""
        while chunk := response.read1(65536):  # streams the events as they come
            if cut and b"\n\n" in sent + chunk:
                self.wfile.write(chunk[: (sent + chunk).index(b"\n\n") + 2 - len(sent)])
                break
            sent += chunk if cut else b""
            self.wfile.write(chunk)
            self.wfile.flush()
        upstream.close()


FOREIGN_PAGE = """<!doctype html>
<html><head><title>Seeds</title><link rel="icon" href="data:,"></head><body>
<h1>Seeds</h1>
<button id="download" disabled>Download</button> <span id="status"></span>
<script type="module">
  import {Ferry} from "FERRY/ferry.js";
  const ferry = new Ferry({baseUrl: ""});
  const button = document.getElementById("download");
  const status = document.getElementById("status");
  button.disabled = false;
  button.addEventListener("click", async () => {
    const spec = {name: "Seeds", format: "csv", source: {type: "generate", rows: 300, seed: 7,
                  columns: [{name: "seed", kind: "uuid"}, {name: "segment", kind: "enum", values: ["a", "b"]}]}};
    const job = await ferry.exportFile(spec, {onProgress: (j) => { status.textContent = j.state; }});
    status.textContent = `done: ${job.result.file.rows} rows`;
  });
</script>
</body></html>
"""


def test_ferry_js_imported_by_a_foreign_page_gives_its_download_button_even_when_its_stream_drops(
        server, watched_page):
    site = ForeignSite(server.base, FOREIGN_PAGE.replace("FERRY", server.base))
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        page, watched = watched_page
        page.goto(site.base + "/")
        button = page.get_by_role("button", name="Download")
        expect(button).to_be_enabled()
        with page.expect_download() as info:
            button.click()
        rows = read_csv(info.value)
        assert rows[0] == ["seed", "segment"] and len(rows) == 301
        assert {row[1] for row in rows[1:]} == {"a", "b"}
        expect(page.locator("#status")).to_have_text("done: 300 rows")
        assert f"{server.base}/ferry.js" in watched.requests  # imported across origins
        # The first stream was cut after one event; the client resumed after it.
        assert site.event_requests[:2] == [None, "1"], site.event_requests
        assert watched.errors == [], watched.errors
    finally:
        site.shutdown()
        site.server_close()


CROSS_ORIGIN_PAGE = """<!doctype html>
<html><head><title>Seeds</title><link rel="icon" href="data:,"></head><body>
<button id="download">Download</button> <span id="status"></span>
<script type="module">
  import {Ferry} from "FERRY/ferry.js";
  const ferry = new Ferry({baseUrl: "FERRY", token: "TOKEN"});
  const status = document.getElementById("status");
  document.getElementById("download").addEventListener("click", async () => {
    const spec = {name: "Seeds", format: "csv", source: {type: "generate", rows: 250,
                  columns: [{name: "seed", kind: "uuid"}]}};
    try {
      const job = await ferry.exportFile(spec);
      status.textContent = `done: ${job.result.file.rows} rows`;
    } catch (error) {
      status.textContent = "refused";
    }
  });
</script>
</body></html>
"""


def test_a_page_on_an_allowed_origin_calls_ferry_across_origins_and_others_are_kept_out(
        make_server, context):
    allowed = ForeignSite("", "")
    other = ForeignSite("", "")
    sites = [allowed, other]
    for site in sites:
        threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        server = make_server(auth="api_keys", top=f'allowed_origins = ["{allowed.base}"]')
        page_html = CROSS_ORIGIN_PAGE.replace("FERRY", server.base).replace("TOKEN", server.token)
        for site in sites:
            site.html = page_html.encode()
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(allowed.base + "/")
        with page.expect_download() as info:
            page.get_by_role("button", name="Download").click()
        rows = read_csv(info.value)
        assert rows[0] == ["seed"] and len(rows) == 251
        expect(page.locator("#status")).to_have_text("done: 250 rows")

        blocked = context.new_page()
        blocked.goto(other.base + "/")
        blocked.get_by_role("button", name="Download").click()
        expect(blocked.locator("#status")).to_have_text("refused")
        status, jobs = server.request("GET", "/v1/exports")
        assert status == 200 and len(jobs["items"]) == 1, "the other origin's request never ran"
    finally:
        for site in sites:
            site.shutdown()
            site.server_close()


def test_screenshots_of_a_filled_panel(make_server, browser, tmp_path):
    server = make_server(prepare=create_people)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    open_page(page, server)
    export_generated(page, "Customers — test data", 5000, fmt="csv.gz")
    export_generated(page, "Orders sample", 1200, fmt="jsonl")
    upload_people(page, tmp_path, good=300)
    status, job = server.request("POST", "/v1/exports", {
        "name": "Every order since 1970", "format": "csv",
        "source": {"type": "generate", "rows": 2_000_000_000, "columns": [{"name": "id", "kind": "uuid"}]}})
    assert status == 202, job
    page.reload()
    card = job_card(page, "Every order since 1970")
    card.get_by_role("button", name=re.compile("^Cancel ")).click()
    expect(card.locator(".state")).to_have_text("cancelled")
    people = job_card(page, "people")
    people.get_by_role("button", name=re.compile("^Rejects ")).click()
    expect(people.locator("table.rejects tbody tr")).to_have_count(2)
    page.evaluate("document.activeElement.blur()")
    page.screenshot(path=str(REPO / "docs" / "screenshot.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=str(REPO / "docs" / "screenshot-phone.png"), full_page=True)
    # Readable at a phone's width: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    context.close()


RESUMABLE_SCRIPT = """async () => {
  const {Ferry} = await import("/ferry.js");
  const ferry = new Ferry();
  const rows = ["id,name,age"];
  for (let id = 1; id <= 300000; id++) rows.push(`${id},person number ${id},${id % 90}`);
  const file = new File([rows.join("\\n") + "\\n"], "parts.csv", {lastModified: 1});
  const spec = {target: {connection: "local", table: "people"}};
  const stop = new AbortController();
  let first = null;
  try {
    await ferry.importFileInParts(file, spec, {signal: stop.signal,
      onUploadProgress: ({loaded}) => { if (loaded > 8 * 1024 * 1024) stop.abort(); }});
  } catch (error) {
    first = error.name;
  }
  const key = Object.keys(localStorage).find((k) => k.startsWith("ferry-upload "));
  const remembered = localStorage.getItem(key);
  const upload = await (await fetch(`/v1/imports/${remembered}/upload`)).json();
  const job = await ferry.importFileInParts(file, spec);
  return {first, remembered, stored: upload.uploaded.map((p) => p.number), parts: upload.parts,
          id: job.id, state: job.state, left: localStorage.getItem(key), size: file.size};
}"""


def test_ferry_js_resumes_an_upload_in_parts_after_an_abort_and_loads_every_row_once(
        make_server, watched_page):
    server = make_server(prepare=create_people)
    page, watched = watched_page
    open_page(page, server)
    result = page.evaluate(RESUMABLE_SCRIPT)
    assert result["first"] == "AbortError", result
    assert result["stored"][:1] == [1] and result["parts"] == 2, result  # part 1 kept
    assert result["id"] == result["remembered"] and result["state"] == "succeeded", result
    assert result["left"] is None, result  # forgotten once started
    with sqlite3.connect(server.local_db) as db:
        assert db.execute("SELECT count(*), count(DISTINCT id) FROM people").fetchone() == (300000, 300000)
    assert watched.errors == [], watched.errors
