"""Demo data in each language (`crmforge demo --language zh|es`, runtime/ops/demo_languages.py):
names, companies, places and phone numbers of the language, everything else as in English —
the same records in the same states — deterministic, and an unknown language refused."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from builder.packs import SHIPPED_DIR
from runtime.core.phones import e164
from runtime.ops.cli import main
from runtime.ops.demo_languages import NAME_ROLES, DemoLanguageError, load, localise
from runtime.process.setup import build

HAN = re.compile(r"^[\u4e00-\u9fff]+$")
NAME_FIELDS = ("first_name", "last_name", "full_name")


@pytest.fixture(scope="module")
def core():
    """The core pack's model with its demo data, and its records in load order."""
    model = build([SHIPPED_DIR / "core"], demo=True)
    return model, [(demo.entity, rec) for demo in model.demo for rec in demo.records]


def _values(pairs, entity: str, field: str) -> list[str]:
    """The localised values of `field` in `entity`'s records ((original, localised) pairs)."""
    return [values[field] for (name, _), values in pairs if name == entity and field in values]


def test_chinese_demo_has_chinese_names_places_and_phones(core):
    model, records = core
    out = list(zip(records, localise(model, records, "zh"), strict=True))
    for field in NAME_FIELDS:
        names = _values(out, "contact" if field != "full_name" else "user", field)
        assert names and all(HAN.match(n) for n in names), names[:5]
    assert all(HAN.match(n) for n in _values(out, "account", "name"))
    assert Counter(_values(out, "account", "city")).most_common(2)[0][0] == "北京"
    phones = _values(out, "contact", "phone") + _values(out, "contact", "mobile")
    assert all(e164(p, "GB").startswith("+86") for p in phones), phones[:5]
    assert all(e164(p, "GB").startswith("+861") for p in _values(out, "contact", "mobile"))
    emails = _values(out, "contact", "email")  # pinyin; a company's domain, or example.com
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d*@[a-z]+\.(com\.cn|com|net|org)", e)
               for e in emails), emails[:3]
    assert sum(e.endswith(".com.cn") for e in emails) > len(emails) / 2
    assert set(_values(out, "account", "country")) == {"中国"}


def test_spanish_demo_has_spanish_names_with_accents_and_madrid(core):
    model, records = core
    out = list(zip(records, localise(model, records, "es"), strict=True))
    lists = load("es").data
    given = _values(out, "contact", "first_name")
    assert set(given) <= set(lists["given_parts"])
    assert {"José"} <= set(given)
    surnames = [s.split() for s in _values(out, "contact", "last_name")]
    assert all(len(s) == 2 and set(s) <= set(lists["surnames"]) for s in surnames)
    assert any(re.search("[áéíóúñÁÉÍÓÚÑ]", " ".join(s)) for s in surnames)
    assert Counter(_values(out, "account", "city")).most_common(1)[0][0] == "Madrid"
    assert all(p.startswith("28") for p in _values(out, "account", "postcode"))
    phones = _values(out, "account", "phone") + _values(out, "contact", "mobile")
    assert all(e164(p, "GB").startswith("+34") for p in phones), phones[:5]
    emails = _values(out, "contact", "email")
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d*@[a-z.]+", e) for e in emails), emails[:3]
    assert sum(e.endswith(".es") for e in emails) > len(emails) / 2


@pytest.mark.parametrize("language", ["zh", "es"])
def test_only_names_and_places_change_and_the_same_twice(core, language):
    model, records = core
    first, again = localise(model, records, language), localise(model, records, language)
    assert first == again  # deterministic
    roles = {*NAME_ROLES, "name", "phone", "mobile", "email", "website"}
    for (entity, original), values in zip(records, first, strict=True):
        assert values.keys() == original.keys()
        kept = {k: v for k, v in original.items() if k not in roles}
        assert kept == {k: values[k] for k in kept}, entity  # keys, links, states, dates
    originals = Counter(v["phone"] for e, v in records if e == "contact" and "phone" in v)
    mapped = Counter(v["phone"] for (e, _), v in zip(records, first, strict=True)
                     if e == "contact" and "phone" in v)
    assert sorted(originals.values()) == sorted(mapped.values())  # distinct stay distinct


def test_unknown_language_is_refused_with_the_ones_there_are(core, capsys):
    model, records = core
    with pytest.raises(DemoLanguageError, match="en, es, zh"):
        localise(model, records[:3], "fr")
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--language", "fr", "--no-serve"])
    assert exc.value.code == 2
    assert "invalid choice: 'fr' (choose from 'en', 'es', 'zh')" in capsys.readouterr().err


def _census(url: str, model) -> dict[str, Counter]:
    """Per entity: its records, counted by the value of every choice field (its states)."""
    engine = sa.create_engine(url)
    census: dict[str, Counter] = {}
    try:
        with engine.connect() as conn:
            for name, ent in model.entities.items():
                choices = [f for f, spec in ent.fields.items() if spec.type == "choice"]
                columns = ", ".join(f'"{c}"' for c in ["id", *choices])
                rows = conn.execute(sa.text(f'select {columns} from "{ent.table}"')).all()
                census[name] = Counter(tuple(row[1:]) for row in rows)
    finally:
        engine.dispose()
    return census


@pytest.mark.slow
def test_install_demo_in_each_language_loads_the_same_records(tmp_path: Path, core,
                                                               monkeypatch, capsys):
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    monkeypatch.delenv("CRMFORGE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    model, _ = core
    census = {}
    for language in ("en", "zh", "es"):
        url = f"sqlite:///{tmp_path / language}.db"
        code = main(["install", "core", "--demo", "--language", language, "--database-url", url])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "skipped" not in out.err, out.err
        census[language] = _census(url, model)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            names = conn.execute(sa.text(
                "select first_name || ' ' || last_name, _e164_mobile from contact "
                "where mobile is not null order by id limit 20")).all()
        engine.dispose()
        prefix = {"en": "+44", "zh": "+86", "es": "+34"}[language]
        assert all(mobile.startswith(prefix) for _, mobile in names), names
    assert census["zh"] == census["en"]
    assert census["es"] == census["en"]
    assert sum(sum(c.values()) for c in census["en"].values()) > 1000
