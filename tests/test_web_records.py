"""`/e/<entity>/<id>`, the timeline and files, delete, and `/search`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from web_support import make_app, seed, sign_in, token_of

from runtime.read import timeline
from runtime.write import records

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def web(spec_instance, admin, tmp_path) -> dict[str, Any]:
    inst = spec_instance
    who = admin(inst)
    app = make_app(inst, tmp_path)
    client = app.test_client()
    sign_in(client, inst, who)
    return {"inst": inst, "client": client, "admin": who, "data": seed(inst, who),
            "tmp": tmp_path}


def test_record_page_fields_sections_and_related_lists(web) -> None:
    data, client = web["data"], web["client"]
    flat = data["flat"]
    html = client.get(f"/e/property/{flat['id']}").get_data(as_text=True)
    assert "<h1>Riverside flat, 2 bed" in html
    assert "€425,000.00" in html  # money in the field's currency
    assert "Offers" in html and "Anna Schmidt" in html  # offers on it, by buyer
    assert f"/e/offer/new?property={flat['id']}" in html  # "add" is prefilled
    assert f"/e/offer?property={flat['id']}" in html  # the full related list
    assert "Viewings" in html
    offer = data["offers"][0]
    page = client.get(f"/e/offer/{offer['id']}").get_data(as_text=True)
    for label in ("Property", "Buyer", "Amount", "Financing", "Valid until", "Terms"):
        assert label in page
    assert "Mortgage" in page and "Pending" in page
    assert "{% block workflow %}" not in page  # the hook renders (empty until it is filled)


def test_log_activity_with_follow_up_then_complete_it(web) -> None:
    client, inst, who = web["client"], web["inst"], web["admin"]
    offer = web["data"]["offers"][1]
    token = token_of(client, f"/e/offer/{offer['id']}")
    due = inst.today().isoformat()
    answer = client.post(f"/e/offer/{offer['id']}/timeline", data={
        "csrf_token": token, "kind": "call", "body": "Called <Ben>", "follow_up_on": due})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("#timeline")
    page = client.get(f"/e/offer/{offer['id']}").get_data(as_text=True)
    assert "Call logged. Follow-up on" in page
    assert "Called &lt;Ben&gt;" in page and "Mark done" in page
    home = client.get("/").get_data(as_text=True)
    assert "Called &lt;Ben&gt;" in home and "Today" in home
    entry = timeline.due_follow_ups(inst, who, until=inst.today())[0]
    client.post(f"/e/offer/{offer['id']}/follow-ups/{entry['id']}/done",
                data={"csrf_token": token})
    assert timeline.due_follow_ups(inst, who, until=inst.today()) == []
    empty = client.post(f"/e/offer/{offer['id']}/timeline",
                        data={"csrf_token": token, "kind": "note", "body": " "},
                        follow_redirects=True)
    assert "Write what happened" in empty.get_data(as_text=True)


def test_attachments_upload_check_and_download(web) -> None:
    client, data = web["client"], web["data"]
    offer = data["offers"][0]
    url = f"/e/offer/{offer['id']}"
    token = token_of(client, url)
    answer = client.post(f"{url}/attachments", data={
        "csrf_token": token, "file": (io.BytesIO(PDF), "contract.pdf")},
        content_type="multipart/form-data")
    assert answer.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Attached “contract.pdf”" in page and "contract.pdf" in page
    link = page.split('href="/attachments/')[1].split('"')[0]
    with client.get(f"/attachments/{link}") as download:
        assert download.status_code == 200 and download.data == PDF
        assert download.mimetype == "application/pdf"
        assert "sandbox" in download.headers["Content-Security-Policy"]
    stored = list((web["tmp"] / "uploads").iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == PDF  # outside the web root
    assert not str(stored[0]).startswith(str(Path(__file__).resolve().parent.parent / "runtime"))
    for name, content, message in [
            ("evil.html", b"<script>", "not a file type we accept"),
            ("fake.pdf", b"MZ\x90\x00", "not really a pdf file")]:
        client.post(f"{url}/attachments", data={
            "csrf_token": token, "file": (io.BytesIO(content), name)},
            content_type="multipart/form-data")
        assert message in client.get(url).get_data(as_text=True)


def test_attachment_needs_read_permission(web, make_user) -> None:
    client, inst = web["client"], web["inst"]
    offer = web["data"]["offers"][0]
    token = token_of(client, f"/e/offer/{offer['id']}")
    client.post(f"/e/offer/{offer['id']}/attachments", data={
        "csrf_token": token, "file": (io.BytesIO(PDF), "secret.pdf")},
        content_type="multipart/form-data")
    page = client.get(f"/e/offer/{offer['id']}").get_data(as_text=True)
    link = page.split('href="/attachments/')[1].split('"')[0]
    agent = make_user(inst, "agnes", roles=["agent"])
    other = make_app(inst, web["tmp"]).test_client()
    sign_in(other, inst, agent)
    assert other.get(f"/attachments/{link}").status_code == 404


def test_file_field_upload_through_the_form(web) -> None:
    client, inst, who = web["client"], web["inst"], web["admin"]
    token = token_of(client, "/e/property/new")
    answer = client.post("/e/property/new", data={
        "csrf_token": token, "title": "Barn", "price": "100",
        "brochure": (io.BytesIO(PDF), "barn.pdf")}, content_type="multipart/form-data")
    assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
    record_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    record = records.get(inst, who, "property", record_id)
    assert record["brochure"]
    page = client.get(f"/e/property/{record_id}").get_data(as_text=True)
    assert f'href="/attachments/{record["brochure"]}"' in page


def test_delete_asks_then_deletes(web) -> None:
    client, inst, who = web["client"], web["inst"], web["admin"]
    lead = records.query(inst, who, "lead", limit=1).rows[0]
    confirm = client.get(f"/e/lead/{lead['id']}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.get_data(as_text=True)
    token = token_of(client, f"/e/lead/{lead['id']}/delete")
    answer = client.post(f"/e/lead/{lead['id']}/delete", data={"csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"] == "/e/lead"
    assert client.get(f"/e/lead/{lead['id']}").status_code == 404
    # a restrict link keeps the property: the refusal is shown, nothing is lost
    flat = web["data"]["flat"]
    kept = client.post(f"/e/property/{flat['id']}/delete", data={"csrf_token": token},
                       follow_redirects=True)
    assert "was not deleted" in kept.get_data(as_text=True)


def test_search_by_phone_finds_the_customer_and_what_is_linked(web) -> None:
    html = web["client"].get("/search?q=%2B44 20 7946 0958").get_data(as_text=True)
    assert "Anna Schmidt" in html
    assert "Offers:" in html and "Orders:" in html and "Viewings:" in html
    assert "ORD-0001" in html  # orders link Anna through their `contacts` links field
    by_mail = web["client"].get("/search?q=ben.okafor@example.com").get_data(as_text=True)
    assert "Ben Okafor" in by_mail and "Offers:" in by_mail
    nothing = web["client"].get("/search?q=qwertyuiop").get_data(as_text=True)
    assert "Nothing found" in nothing
    fragment = web["client"].get("/search?q=Schmidt", headers={
        "HX-Request": "true", "HX-Target": "results"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="results"')


def test_search_respects_row_filters(web, make_user) -> None:
    inst = web["inst"]
    agent = make_user(inst, "agnes", roles=["agent"])
    client = make_app(inst, web["tmp"]).test_client()
    sign_in(client, inst, agent)
    records.create(inst, web["admin"], "lead", {"name": "Unowned Pool", "owner": None})
    html = client.get("/search?q=Northwind").get_data(as_text=True)
    assert "Northwind" not in html.split("<main")[1] or "Nothing found" in html
    assert "Unowned Pool" in client.get("/search?q=Unowned").get_data(as_text=True)


def test_uploads_may_exceed_the_app_body_limit(web) -> None:
    """Pages that take files raise the app's body limit (2 MB by default; 100 KB here, to keep
    the upload in memory) to the upload limit, before CSRF protection reads the form."""
    inst = web["inst"]
    client = make_app(inst, web["tmp"], MAX_CONTENT_LENGTH=100_000).test_client()
    sign_in(client, inst, web["admin"])
    offer = web["data"]["offers"][0]
    url = f"/e/offer/{offer['id']}"
    token = token_of(client, url)
    big = PDF + b"0" * 200_000
    answer = client.post(f"{url}/attachments", data={
        "csrf_token": token, "file": (io.BytesIO(big), "scan.pdf")},
        content_type="multipart/form-data")
    assert answer.status_code == 302
    assert "Attached “scan.pdf”" in client.get(url).get_data(as_text=True)
    too_big = client.post(f"{url}/timeline", data={"csrf_token": token, "kind": "note",
                                                   "body": "x" * 200_000})
    assert too_big.status_code == 413  # other pages keep the app's limit
