"""The page chrome in English, Chinese and Spanish (docs/languages.md): every string the
templates and the web code mark is in each catalog and translated; the language follows the
user's preference, then `Accept-Language`, then `CRMFORGE_LANGUAGE`; the API translates
`message` and keeps `status`; values are written in the reader's locale."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from support import admin_actor
from test_web_words import quote_pack
from web_support import make_app, sign_in, token_of

from builder.model import Field, Text
from runtime.http import i18n
from runtime.http.auth import create_token
from runtime.http.workspaces import chooser_app
from runtime.read.queries import query
from runtime.read.titles import date_text, money_text, number_text, readable
from runtime.write import records

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("zh", "es")


def _extracted() -> set[str]:
    with (i18n.TRANSLATIONS / "babel.cfg").open() as handle:
        method_map, options = parse_mapping_cfg(handle)
    found = set()
    for _path, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options, keywords=DEFAULT_KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(language: str):
    with (i18n.TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_translated(language: str) -> None:
    catalog = _catalog(language)
    wanted = _extracted()
    assert len(wanted) > 150
    missing = sorted(m for m in wanted if m not in catalog)
    assert not missing, f"not in {language}/messages.po: {missing[:10]}"
    untranslated = sorted(str(m.id) for m in catalog if m.id and (m.fuzzy or not (
        all(m.string) if isinstance(m.string, tuple) else m.string)))  # every plural form
    assert not untranslated, f"untranslated or fuzzy in {language}: {untranslated[:10]}"
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert not problems, problems  # placeholders such as %(name)s kept in the translation


def test_catalogs_are_compiled_when_missing_or_older(tmp_path: Path) -> None:
    folder = tmp_path / "zh" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    source = i18n.TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po"
    (folder / "messages.po").write_bytes(source.read_bytes())
    assert i18n.compile_catalogs(tmp_path) == [folder / "messages.mo"]
    assert i18n.compile_catalogs(tmp_path) == []  # up to date: nothing written


@pytest.fixture
def env(make_instance, tmp_path):
    inst = make_instance(quote_pack(tmp_path / "packs"))
    admin = admin_actor(inst)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin)
    return inst, admin, client


def _home(client, language: str | None = None) -> str:
    headers = {"Accept-Language": language} if language else {}
    answer = client.get("/", headers=headers)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def _prefer(inst, user_id: int, language: str | None) -> None:
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user_id).values(language=language))


def test_the_browser_language_picks_the_chrome(env) -> None:
    inst, admin, client = env
    _prefer(inst, admin.user_id, None)
    chinese = _home(client, "zh-CN,zh;q=0.9,en;q=0.5")
    assert '<html lang="zh">' in chinese and ">首页</a>" in chinese and "退出登录" in chinese
    spanish = _home(client, "es-ES,es;q=0.9")
    assert '<html lang="es">' in spanish and ">Inicio</a>" in spanish
    english = _home(client, "fr-FR")  # a language without a catalog: the instance default
    assert '<html lang="en">' in english and ">Home</a>" in english


def test_the_instance_default_applies_when_nothing_else_does(env, monkeypatch) -> None:
    inst, admin, client = env
    _prefer(inst, admin.user_id, None)
    monkeypatch.setenv("CRMFORGE_LANGUAGE", "es")
    assert ">Inicio</a>" in _home(client)


def test_the_users_preference_wins_over_the_browser(env) -> None:
    inst, admin, client = env
    _prefer(inst, admin.user_id, "es")
    page = _home(client, "zh-CN")
    assert '<html lang="es">' in page and "Cerrar sesión" in page and "退出登录" not in page


def test_a_user_chooses_their_language_on_their_page(env) -> None:
    inst, admin, client = env
    _prefer(inst, admin.user_id, None)
    answer = client.post("/me/language", data={"language": "zh", "csrf_token": token_of(
        client, "/logout")}, follow_redirects=True)
    assert "语言已保存：中文。" in answer.get_data(as_text=True)
    assert ">首页</a>" in _home(client, "es")
    refused = client.post("/me/language", data={"language": "xx", "csrf_token": token_of(
        client, "/logout")})
    assert refused.status_code == 400


def test_the_api_translates_the_message_and_keeps_the_status(env) -> None:
    inst, _admin, client = env
    english = client.get("/api/v1/quote", headers={"Accept-Language": "en"})
    spanish = client.get("/api/v1/quote", headers={"Accept-Language": "es"})
    assert english.status_code == spanish.status_code == 401
    assert spanish.json["error"]["status"] == english.json["error"]["status"] == 401
    assert spanish.json["error"]["message"].startswith("Envíe 'Authorization")
    assert english.json["error"]["message"].startswith("Send 'Authorization")


def test_the_api_speaks_the_requested_language_without_a_preference(env) -> None:
    inst, admin, client = env
    _prefer(inst, admin.user_id, None)
    token = create_token(inst, admin.user_id)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}",
                                           "Accept-Language": "zh-CN,zh;q=0.9"})
    assert me.status_code == 200 and me.json["language"] == "zh"


def test_labels_follow_the_request_language() -> None:
    label = Text.of({"en": "Offer", "zh": "报价", "es": "Oferta"})
    assert [label.get(code) for code in ("zh", "es", "es-ES", "de", None)] == [
        "报价", "Oferta", "Oferta", "Offer", "Offer"]


PRICE = Field(name="price", type="money", label=Text.of("Price"), pack="t")
FORMATS = [
    (date(2026, 12, 4), "zh", "2026年12月4日"),
    (date(2026, 12, 4), "es", "4/12/2026"),
    (date(2026, 12, 4), "en", "Dec 4, 2026"),
    (datetime(2026, 12, 4, 21, 13), "zh", "2026年12月4日 21:13"),
]


@pytest.mark.parametrize(("value", "language", "text"), FORMATS)
def test_dates_per_locale(value, language: str, text: str) -> None:
    assert date_text(value, language) == text


@pytest.mark.parametrize(("language", "currency", "text"), [
    ("es", "EUR", "1.234,56 €"), ("zh", "CNY", "¥1,234.56"), ("en", "EUR", "€1,234.56")])
def test_money_per_locale(language: str, currency: str, text: str) -> None:
    assert money_text(Decimal("1234.56"), PRICE, currency, language) == text


def test_numbers_per_locale() -> None:
    assert number_text(Decimal("1234567.5"), "es") == "1.234.567,5"
    assert number_text(1234567, "zh") == "1,234,567"


def test_a_record_page_writes_values_in_the_readers_locale(env) -> None:
    inst, admin, client = env
    quote = records.create(inst, admin, "quote", {"name": "Acme", "total": "1234.56",
                                                  "valid_until": "2026-12-04"})
    _prefer(inst, admin.user_id, "es")
    page = client.get(f"/e/quote/{quote['id']}").get_data(as_text=True)
    assert "4/12/2026" in page and "1.234,56 €" in page and "Editar" in page
    _prefer(inst, admin.user_id, "zh")
    page = client.get(f"/e/quote/{quote['id']}").get_data(as_text=True)
    assert "2026年12月4日" in page and "编辑" in page


def test_the_csv_export_opens_in_excel_in_each_language(env) -> None:
    inst, admin, client = env
    records.create(inst, admin, "quote", {"name": "Oferta Sol", "total": "1234.5"})
    _prefer(inst, admin.user_id, "es")
    spanish = client.get("/e/quote/export.csv").get_data(as_text=True)
    assert spanish.startswith("\ufeffid;") and "Oferta Sol" in spanish  # BOM, the locale's ;
    tabbed = client.get("/e/quote/export.csv?sep=tab").get_data(as_text=True)
    assert tabbed.startswith("\ufeffid\t")
    assert client.get("/e/quote/export.csv?sep=x").status_code == 400
    _prefer(inst, admin.user_id, "en")
    english = client.get("/e/quote/export.csv").get_data(as_text=True)
    assert english.startswith("id,")  # as before: no BOM unless asked for


def test_forms_take_the_locales_numbers_and_dates_and_iso(env) -> None:
    inst, admin, client = env
    _prefer(inst, admin.user_id, "es")
    token = token_of(client, "/e/quote/new")
    for total, valid_until in (("1.234,56", "4/12/2026"), ("1234.56", "2026-12-04")):
        answer = client.post("/e/quote/new", data={
            "csrf_token": token, "name": f"Oferta {total}", "total": total,
            "valid_until": valid_until})
        assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    made = query(inst, admin, "quote", q="Oferta").rows
    assert {(str(r["total"]), r["valid_until"]) for r in made} == {
        ("1234.56", "2026-12-04")}


def test_a_message_with_a_percent_sign_shows_as_written(make_instance, tmp_path) -> None:
    app = make_app(make_instance(quote_pack(tmp_path / "packs")), tmp_path)
    page = app.jinja_env.from_string("{{ m|translate }} / {{ r|translate }}")
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        assert page.render(m="must be at most 20%", r="is required; fill it in") == \
            "must be at most 20% / es obligatorio; rellénelo"


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/api/v1/quote", None, 401, "sign_in_required"),
    ("/api/v1/no-such-address", None, 404, "not_found"),
    ("/api/v1/quote", {"total": "1"}, 422, "invalid_values"),
])
def test_the_error_code_stays_and_the_message_is_translated(env, path, body, status,
                                                            code) -> None:
    inst, admin, client = env
    _prefer(inst, admin.user_id, None)
    token = create_token(inst, admin.user_id)
    answers = {}
    for language in ("en", "zh", "es"):
        headers = {"Accept-Language": language}
        if status != 401:
            headers["Authorization"] = f"Bearer {token}"
        answer = client.post(path, json=body, headers=headers) if body else client.get(
            path, headers=headers)
        assert answer.status_code == status
        answers[language] = answer.json["error"]
    assert {(e["status"], e["code"]) for e in answers.values()} == {(status, code)}
    assert len({e["message"] for e in answers.values()}) == 3
    assert any("\u4e00" <= ch <= "\u9fff" for ch in answers["zh"]["message"])


PAGES = [  # (a page once left in English, an English word it had, a word of its translation)
    ("/admin", "Administration", {"zh": "管理", "es": "Administración"}),
    ("/admin/users", "Search users", {"zh": "搜索用户", "es": "Buscar usuarios"}),
    ("/admin/teams/new", "Create team", {"zh": "创建团队", "es": "Crear equipo"}),
    ("/admin/roles", "Entities it reads", {"zh": "可读实体", "es": "Entidades que lee"}),
    ("/admin/audit", "Any kind", {"zh": "任意类型", "es": "Cualquier tipo"}),
    ("/admin/webhooks", "No webhooks defined", {"zh": "没有定义 Webhook", "es": "No hay webhooks"}),
    ("/admin/import", "Upload a file", {"zh": "上传文件", "es": "Subir un archivo"}),
]


@pytest.mark.parametrize(("path", "english", "words"), PAGES, ids=[p[0] for p in PAGES])
def test_the_admin_pages_speak_the_users_language(env, path, english, words) -> None:
    inst, admin, client = env
    _prefer(inst, admin.user_id, None)
    assert english in client.get(path, headers={"Accept-Language": "en"}).get_data(True)
    for language, word in words.items():
        _prefer(inst, admin.user_id, language)
        page = client.get(path).get_data(as_text=True)
        assert word in page and english not in page, (language, path)


def test_flash_messages_of_the_admin_pages_are_translated(env) -> None:
    inst, admin, client = env
    _prefer(inst, admin.user_id, "es")
    answer = client.post("/admin/teams/new", data={"name": "Ventas Madrid", "csrf_token":
                                                   token_of(client, "/admin/teams/new")},
                         follow_redirects=True)
    assert "Equipo Ventas Madrid guardado." in answer.get_data(as_text=True)


def test_the_workspace_chooser_follows_the_browser(tmp_path) -> None:
    chooser = chooser_app(lambda: []).test_client()
    chinese = chooser.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="zh">' in chinese and "选择工作区" in chinese
    spanish = chooser.get("/nowhere", headers={"Accept-Language": "es"})
    assert spanish.status_code == 404
    assert "Aquí no hay ningún espacio de trabajo" in spanish.get_data(as_text=True)
    assert "Choose a workspace" in chooser.get("/").get_data(as_text=True)


@pytest.mark.parametrize("language, yes, no", [("en", "Yes", "No"), ("zh", "是", "否"),
                                               ("es", "Sí", "No")])
def test_booleans_read_in_the_readers_language(language: str, yes: str, no: str) -> None:
    flag = Field("vip", "boolean", Text("VIP"), "t")  # type: ignore[arg-type]
    assert (readable(flag, True, language), readable(flag, False, language)) == (yes, no)
