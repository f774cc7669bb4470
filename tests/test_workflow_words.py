"""A transition refused says why in the reader's language (issue 17): the reasons the workflow
panel shows beside a disabled button, and the message of the 4xx a refused move answers —
state, role, guard in words, required fields, a pending approval — each in zh and es, with the
English wording unchanged."""

from __future__ import annotations

from dataclasses import replace

import pytest
from workflow_pack import deal_pack, new_deal, people

from runtime.core.catalogs import say_in
from runtime.process import workflow


@pytest.fixture
def env(make_instance, pack):
    inst = make_instance(deal_pack(pack))
    return inst, people(inst)


def reasons(inst, actor, deal, language: str) -> dict[str, str | None]:
    speaker = replace(actor, language=language)
    return {t["name"]: t["reason"] for t in workflow.available(inst, speaker, "deal", deal["id"])}


def test_the_reasons_speak_chinese_and_spanish_and_english_is_unchanged(env) -> None:
    inst, who = env
    deal = new_deal(inst, who)  # draft: win is from another state, lose needs a reason
    english = reasons(inst, who.rita, deal, "en")
    assert english["win"].startswith("'") and "can be taken only from" in english["win"]
    assert english["lose"].startswith("Fill in ")
    assert "only by automations" in english["archive"] or "Only " in english["archive"]
    zh = reasons(inst, who.rita, deal, "zh")
    assert "只能从" in zh["win"] and "当前为" in zh["win"], zh["win"]
    assert zh["lose"].startswith("请先填写"), zh["lose"]
    assert not any(word in zh["archive"] for word in ("Only", "only", "ask")), zh["archive"]
    es = reasons(inst, who.rita, deal, "es")
    assert "solo puede hacerse desde" in es["win"], es["win"]
    assert es["lose"].startswith("Complete "), es["lose"]


def test_a_guard_in_words_has_no_english_glue_in_chinese(env) -> None:
    inst, who = env
    deal = new_deal(inst, who, stage="review", reason="x", amount="0")
    english = reasons(inst, who.mia, deal, "en")["win"]
    assert " needs: " in english
    zh = reasons(inst, who.mia, deal, "zh")["win"]
    assert "需要：" in zh and "needs" not in zh and "greater" not in zh, zh


def test_say_in_falls_back_to_english_and_fills_the_slots() -> None:
    assert say_in("xx")("Fill in %(fields)s before '%(transition)s'.", fields="A",
                        transition="B") == "Fill in A before 'B'."
    assert say_in("zh-CN")(" or ") == " 或 "
    assert say_in(None)(" or ") == " or "
