"""Documents (issue 18, item 4): the core pack's quote printed to PDF with its lines, read as
the user reads it (rows they may not read and hidden fields never appear), templates checked by
the builder with file:line, the sandbox, the routes, and the Documents menu in Chromium.
`CRMFORGE_SCREENSHOTS=1` also saves the quote's first page as docs/screenshots/document-quote.png.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from browser_support import SHOTS, require_browser, served, shoot_both, shooting, sign_in
from conftest import build_instance
from pypdf import PdfReader
from support import admin_actor, insert_team, insert_user, write_pack
from web_support import PASSWORD, make_app
from web_support import sign_in as web_sign_in

from builder.diagnostics import DefinitionError
from builder.linker import build_model
from runtime.core.instance import Actor, Instance
from runtime.http.auth import set_password
from runtime.ops.demo import load_demo
from runtime.process.documents import DocumentFailed, find, print_pdf, render_html
from runtime.write import records

CORE = Path(__file__).resolve().parent.parent / "verticals" / "core"


def _quote(inst: Instance, owner: Actor, reviewer: Actor | None = None) -> int:
    admin = admin_actor(inst)
    account = records.create(inst, admin, "account", {"name": "Harbour Foods Ltd",
                                                      "region": "london"})["id"]
    quote = records.create(inst, admin, "quote", {
        "account": account, "owner": owner.user_id, "terms": "Delivery within 10 days.",
        "reviewer": reviewer.user_id if reviewer else None})["id"]
    for code, name, price, qty in (("CR-10", "Cold room panel", "1250.00", "4"),
                                   ("TH-2", "Thermostat kit", "89.50", "2")):
        product = records.create(inst, admin, "product", {
            "code": code, "name": name, "category": "hardware", "unit_price": price,
            "unit_cost": "40.00"})["id"]
        records.create(inst, admin, "quote_line", {"quote": quote, "product": product,
                                                   "quantity": qty, "unit_price": price})
    return quote


@pytest.fixture
def sales(tmp_path: Path) -> Iterator[dict[str, Any]]:
    inst = build_instance([CORE], f"sqlite:///{tmp_path / 'crm.db'}")
    inst.settings["COMPANY_NAME"] = "Northwind Refrigeration"
    north, south = insert_team(inst, "North"), insert_team(inst, "South")
    rep = insert_user(inst, "rep", roles=["sales_rep"], team=north)
    reviewer = insert_user(inst, "rev", roles=["sales_rep"], team=south)
    yield {"inst": inst, "rep": rep, "reviewer": reviewer,
           "quote": _quote(inst, rep, reviewer)}
    inst.engine.dispose()


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_quote_prints_with_its_lines_and_totals(sales: dict[str, Any]) -> None:
    inst = sales["inst"]
    printed = print_pdf(inst, sales["rep"], find(inst, "quote", "quote"), sales["quote"])
    assert printed.pdf.startswith(b"%PDF-")
    assert printed.filename.startswith("quote-QUO-") and printed.filename.endswith(".pdf")
    text = _text(printed.pdf)
    for expected in ("Northwind Refrigeration", "Harbour Foods Ltd", "Cold room panel",
                     "Thermostat kit", "€1,250.00", "€5,179.00", "Delivery within 10 days."):
        assert expected in text, expected
    if shooting():
        _save_first_page(printed.pdf)


def _save_first_page(pdf: bytes) -> None:
    """docs/screenshots/document-quote.png, with poppler's pdftoppm."""
    tool = shutil.which("pdftoppm")
    if tool is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    subprocess.run([tool, "-png", "-r", "80", "-singlefile", "-f", "1", "-l", "1", "-",
                    str(SHOTS / "document-quote")], input=pdf, check=True)


def test_rows_the_user_may_not_read_are_left_out(sales: dict[str, Any]) -> None:
    """The reviewer (another team) reads the quote but none of its lines."""
    inst = sales["inst"]
    html = render_html(inst, sales["reviewer"], find(inst, "quote", "quote"), sales["quote"])
    assert "Harbour Foods Ltd" in html and "€5,179.00" in html
    assert "Cold room panel" not in html and "Thermostat kit" not in html
    owner = render_html(inst, sales["rep"], find(inst, "quote", "quote"), sales["quote"])
    assert "Cold room panel" in owner


def test_hidden_fields_never_appear(sales: dict[str, Any]) -> None:
    """`line_cost` is hidden from reps: a template that prints it prints nothing for them."""
    inst = sales["inst"]
    document = replace(find(inst, "quote", "quote"), source=(
        "{% for line in related.quote_line %}[{{ line.line_cost }}|{{ line.quantity }}]"
        "{% endfor %}"))
    assert render_html(inst, sales["rep"], document, sales["quote"]) == "[|4][|2]"
    assert "€160.00" in render_html(inst, admin_actor(inst), document, sales["quote"])


def test_the_sandbox_refuses_python_attributes(sales: dict[str, Any]) -> None:
    inst = sales["inst"]
    document = replace(find(inst, "quote", "quote"),
                       source="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(DocumentFailed, match="unsafe"):
        render_html(inst, sales["rep"], document, sales["quote"])


def test_the_sandbox_loads_only_the_documents_own_bases(sales: dict[str, Any]) -> None:
    inst = sales["inst"]
    quote = find(inst, "quote", "quote")
    assert [name for name, _text in quote.bases] == ["sales_base.html"]
    assert find(inst, "order", "order_confirmation").bases == quote.bases
    for name in ("sales_base.html", "order.html", "../../../pyproject.toml"):
        document = replace(quote, source=f"{{% include '{name}' %}}", bases=())
        with pytest.raises(DocumentFailed, match=re.escape(name)):
            render_html(inst, sales["rep"], document, sales["quote"])


def test_routes_download_and_404(sales: dict[str, Any], tmp_path: Path) -> None:
    inst = sales["inst"]
    client = make_app(inst, tmp_path).test_client()
    web_sign_in(client, inst, sales["rep"])
    answer = client.get(f"/e/quote/{sales['quote']}/documents/quote.pdf")
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert "attachment" in answer.headers["Content-Disposition"]
    page = client.get(f"/e/quote/{sales['quote']}").get_data(as_text=True)
    assert f"/e/quote/{sales['quote']}/documents/quote.pdf" in page
    for path in (f"/e/quote/{sales['quote']}/documents/invoice.pdf",
                 f"/e/account/{sales['quote']}/documents/quote.pdf",
                 f"/e/quote/{sales['quote'] + 99}/documents/quote.pdf"):
        assert client.get(path).status_code == 404, path


def test_attach_keeps_the_pdf_among_the_records_files(sales: dict[str, Any],
                                                      tmp_path: Path) -> None:
    inst = sales["inst"]
    client = make_app(inst, tmp_path, WTF_CSRF_ENABLED=False).test_client()
    web_sign_in(client, inst, sales["rep"])
    answer = client.post(f"/e/quote/{sales['quote']}/documents/quote/attach")
    assert answer.status_code == 302
    page = client.get(f"/e/quote/{sales['quote']}").get_data(as_text=True)
    assert "quote-QUO-" in page


# -- the builder ------------------------------------------------------------------------------

ENTITY = """\
    entity: deal
    fields:
      name: {type: text}
      amount: {type: money}
    views:
      related: [deal_line]
"""
LINE = """\
    entity: deal_line
    fields:
      deal: {type: link, to: deal}
      item: {type: text}
"""


@pytest.mark.parametrize(("files", "where", "code"), [
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html, "
      "related: [deal_line]}\n",
      "documents/offer.html": "<h1>{{ record.name }}</h1>\n<p>{{ record.amont }}</p>\n"},
     "offer.html:2:", "E310"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html, "
      "related: [deal_line]}\n",
      "documents/offer.html": "{% for l in related.deal_line %}\n{{ l.itme }}{% endfor %}\n"},
     "offer.html:2:", "E310"),
    ({"documents/d.yaml": "documents:\n  offer:\n    entity: deal\n    html: |\n      <p>\n"
      "      {{ related.deal_lines }}\n"}, "d.yaml:6:", "E224"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html, "
      "related: [nothing]}\n", "documents/offer.html": "x"}, "d.yaml:2:", "E224"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: dael, html: x}\n"}, "d.yaml:2:",
     "E202"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: gone.html}\n"},
     "d.yaml:2:", "E250"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html}\n",
      "documents/offer.html": "<p>\n{% for x in %}\n"}, "offer.html:2:", "E250"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html}\n",
      "documents/offer.html": "<p>\n{% extends '../entities/deal.yaml' %}\n"},
     "offer.html:2:", "E250"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html}\n",
      "documents/offer.html": "{% include 'gone.html' %}\n"}, "offer.html:1:", "E250"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html}\n",
      "documents/offer.html": "{% set name = 'base.html' %}{% extends name %}\n",
      "documents/base.html": "x"}, "offer.html:1:", "E250"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html}\n",
      "documents/offer.html": "{% extends 'base.html' %}\n",
      "documents/base.html": "<h1>{{ record.name }}</h1>\n{{ record.amont }}\n"},
     "base.html:2:", "E310"),
    ({"documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html}\n",
      "documents/offer.html": "{% extends 'base.html' %}\n",
      "documents/base.html": "<h1>\n{% if %}\n"}, "base.html:2:", "E250"),
])
def test_template_problems_are_reported_with_file_and_line(
        tmp_path: Path, files: dict[str, str], where: str, code: str) -> None:
    pack = write_pack(tmp_path, {"entities/deal.yaml": ENTITY,
                                 "entities/deal_line.yaml": LINE, **files})
    with pytest.raises(DefinitionError) as caught:
        build_model([pack])
    report = str(caught.value)
    assert code in report and where in report, report


def test_a_good_template_builds(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, {
        "entities/deal.yaml": ENTITY, "entities/deal_line.yaml": LINE,
        "documents/d.yaml": "documents:\n  offer: {entity: deal, template: offer.html, "
                            "related: [deal_line]}\n",
        "documents/offer.html": "{{ labels.amount }} {{ record.amount }}\n"
                                "{% for l in related.deal_line %}{{ l.item }}{% endfor %}\n"})
    document = build_model([pack]).documents["offer"]
    assert document.related == (("deal_line", "deal_line", "deal", None),)


# -- the Documents menu in a browser ------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("documents")
    inst = build_instance([CORE], f"sqlite:///{directory / 'crm.db'}")
    admin = admin_actor(inst)
    set_password(inst, admin.user_id, PASSWORD)
    with served(inst, directory, quote=_quote(inst, admin)) as running:
        yield running


@pytest.mark.browser
def test_documents_menu_downloads_the_pdf(browser: Any, server: dict[str, Any]) -> None:
    page = sign_in(browser, server)
    page.goto(f"{server['url']}/e/quote/{server['quote']}")
    page.locator("details.doc-menu > summary").click()
    with page.expect_download() as caught:
        page.get_by_role("link", name="Quote (PDF)").click()
    download = caught.value
    assert download.suggested_filename.startswith("quote-QUO-")
    assert Path(download.path()).read_bytes().startswith(b"%PDF-")
    page.close()
    shoot_both(browser, server, "admin", f"/e/quote/{server['quote']}", "record-documents",
               prepare=lambda shown: shown.locator("details.doc-menu > summary").click())



@pytest.mark.slow
@pytest.mark.parametrize("pack", ["hotel"])  # demo data takes ~30 s a pack
def test_each_shipped_document_prints_a_demo_record(tmp_path: Path, pack: str) -> None:
    inst = build_instance([CORE, CORE.parent / pack], f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        assert not load_demo(inst, list(inst.model.packs)).problems
        admin = admin_actor(inst)
        documents = [d for d in inst.model.documents.values() if d.pack == pack]
        assert documents
        for document in documents:
            first = records.query(inst, admin, document.entity, limit=1).rows[0]
            printed = print_pdf(inst, admin, document, first["id"])
            text = _text(printed.pdf)
            assert document.label.get("en").upper() in text.upper()
            assert printed.filename.endswith(".pdf") and printed.filename != f"{document.name}.pdf"
    finally:
        inst.engine.dispose()
