"""Every customer notice exists in every language, with the same placeholders; amounts and dates by CLDR."""

from __future__ import annotations

from typing import get_args

import pytest
from jinja2 import meta

from activities.language import BASE, ITEMS, LANGUAGES, TEMPLATES_DIR, resolve, supported
from activities.notices import TEMPLATES
from worker.config import Settings
from workflows.effects import CustomerNotice


def files(language: str) -> set[str]:
    return {p.name for p in (TEMPLATES_DIR / language).iterdir() if p.is_file()}


def placeholders(name: str) -> set[str]:
    assert TEMPLATES.loader is not None
    source = TEMPLATES.loader.get_source(TEMPLATES, name)[0]
    return meta.find_undeclared_variables(TEMPLATES.parse(source))


def test_english_and_german_ship():
    assert {"en", "de"} <= LANGUAGES and BASE in LANGUAGES


@pytest.mark.parametrize("language", sorted(LANGUAGES - {BASE}))
def test_every_template_exists_in_every_language(language):
    # A notice written in one language and not the other fails here, whichever side it is missing from.
    assert files(language) == files(BASE), (
        f"only in {BASE}/: {sorted(files(BASE) - files(language))}; "
        f"only in {language}/: {sorted(files(language) - files(BASE))}")


def test_every_customer_notice_has_a_template():
    for language in LANGUAGES:
        # Besides the notices: the remedy items' words, and the paragraph naming who takes the reply.
        assert {f"{kind}.txt" for kind in get_args(CustomerNotice)} | {ITEMS, "_reply.txt"} == files(language), language


@pytest.mark.parametrize("language", sorted(LANGUAGES - {BASE}))
def test_translations_use_the_same_placeholders_and_item_macros(language):
    for name in files(BASE):
        assert placeholders(f"{language}/{name}") == placeholders(f"{BASE}/{name}"), name
    ours = TEMPLATES.get_template(f"{BASE}/{ITEMS}").module
    theirs = TEMPLATES.get_template(f"{language}/{ITEMS}").module
    assert set(vars(theirs)) == set(vars(ours))
    assert theirs.stand_in and ours.stand_in


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_notice_starts_with_its_subject(language):
    for kind in get_args(CustomerNotice):
        assert (TEMPLATES_DIR / language / f"{kind}.txt").read_text().startswith("Subject: ")


@pytest.mark.parametrize(("locale", "amount", "currency", "shown"), [
    ("de-DE", 8_000, "EUR", "80,00\u00a0€"),
    ("de-DE", 3_000, "JPY", "3.000\u00a0¥"),      # the currency's own decimals: none for yen
    ("de-DE", 2_500, "KWD", "2,500\u00a0KWD"),    # three for dinar
    ("de-DE", 150_000, "ISK", "1.500,00\u00a0ISK"),  # two for ISK, as Stripe counts it
    ("de-CH", 8_000, "CHF", "CHF\u00a080.00"),
    ("en", 8_000, "USD", "$80.00"),
    ("en", 3_000, "JPY", "¥3,000"),
    ("en", 2_500, "KWD", "KWD\u00a02.500"),        # CLDR's currency spacing, which Babel leaves out
    ("en-GB", 8_000, "EUR", "€80.00"),
])
def test_amounts_in_the_customers_format_with_the_currencys_decimals(locale, amount, currency, shown):
    assert resolve(locale).money(amount, currency) == shown


@pytest.mark.parametrize(("locale", "shown"), [
    ("de-DE", "3. Mai 2026"), ("de-AT", "3. Mai 2026"), ("en", "May 3, 2026"), ("en-GB", "3 May 2026"),
])
def test_dates_in_the_customers_format(locale, shown):
    assert resolve(locale).day("2026-05-03") == shown


@pytest.mark.parametrize(("tag", "default", "language"), [
    ("de-DE", "en", "de"),
    ("de", "en", "de"),
    ("DE-de", "en", "de"),
    ("de-XX", "en", "de"),    # a region Babel does not know keeps its language
    ("fr", "en", "en"),       # a language without notices: the default
    ("xx-YY", "en", "en"),    # not a language at all: the default
    ("fr-FR", "de", "de"),
    (None, "de-DE", "de"),
    ("", "en", "en"),
    ("fr", "xx", "en"),       # a default without notices: English, the last resort
])
def test_an_unsupported_locale_falls_back_to_the_default(tag, default, language):
    assert resolve(tag, default).code == language


def test_the_default_locale_is_configured_and_checked():
    assert Settings.from_env({}).mail.default_locale == "en"
    assert Settings.from_env({"AMENDS_DEFAULT_LOCALE": "de-DE"}).mail.default_locale == "de-DE"
    with pytest.raises(ValueError, match="AMENDS_DEFAULT_LOCALE: 'fr' is not a BCP 47 tag of a language amends"):
        Settings.from_env({"AMENDS_DEFAULT_LOCALE": "fr"})
    assert supported("xx-YY") is None
