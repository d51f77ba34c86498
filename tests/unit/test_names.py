"""Staff names as people really write them: every form found, ordinary words left alone (workflows.names)."""

from __future__ import annotations

import unicodedata

import pytest
from pydantic import ValidationError

from tests.support.factories import STAFF_ORDINARY, STAFF_WORLDWIDE, report
from tests.support.states import closed, recovery, refusal, validate
from tests.support.steps import STEP_INPUTS
from workflows.inputs import OPENING, IncidentReport, PostmortemInput
from workflows.names import NameMatcher, fold

LEAKY = "STRAUSS printed the label, Lomax packed it, O’Brien signed it off and Zoë shipped it."


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def found(names: list[str], text: str) -> list[str]:
    return [m.text for m in NameMatcher(names).finditer(text)]


def test_folding_compares_case_accents_and_compatibility_forms_alike():
    assert fold("Strauß") == fold("STRAUSS") == fold("strauss")
    assert fold("Siobhán") == fold(nfd("Siobhán")) == "siobhan"
    assert fold("Zoë") == fold(nfd("Zoë")) == fold("ＺＯＥ") == "zoe"
    assert fold("Łukasz Øster") == "lukasz oster"
    assert fold("O’Brien") == fold("O'Brien") == "o'brien"


@pytest.mark.parametrize("staff", [STAFF_WORLDWIDE, [nfd(n) for n in STAFF_WORLDWIDE]])
@pytest.mark.parametrize("text", [LEAKY, nfd(LEAKY), unicodedata.normalize("NFKC", LEAKY), LEAKY.upper()])
def test_the_four_real_world_names_are_each_found(staff, text):
    assert [fold(m) for m in found(staff, text)] == [fold(w) for w in ("STRAUSS", "Lomax", "O’Brien", "Zoë")]


@pytest.mark.parametrize(("text", "match"), [
    ("Kevin Lomax packed it", "Kevin Lomax"),
    ("Lomax, Kevin packed it", "Lomax, Kevin"),
    ("Lomax Kevin packed it", "Lomax Kevin"),
    ("it was lomax", "lomax"),
    ("Lomax's label", "Lomax"),  # the possessive stays outside
    ("a note from KEVIN", "KEVIN"),
    ("Siobhan OBrien checked", "Siobhan OBrien"),
    ("O`Brien checked", "O`Brien"),
    ("Jonas-Strauss", "Jonas-Strauss"),
])
def test_every_form_of_a_name_is_one_match(text, match):
    assert found(["Kevin Lomax", "Siobhán O'Brien", "Jonas Strauß"], text) == [match]


def test_only_whole_words_match():
    assert found(["Al Ng", "Kevin Lomax"], "Alas, the Kevinator shipped it to Lomaxville.") == []


@pytest.mark.parametrize("text", [
    "The tent promised for 3 May will arrive late.",
    "May we ask what you need? We will call you.",
    "Will you accept a refund? It may take a week.",
    "It shipped in May and arrives by June 4; 12 June at the latest.",
    "We MAY refund it. Mark the parcel as returned.",
    "Delivery was planned for the end of May.",
])
def test_names_that_are_ordinary_words_leave_ordinary_text_alone(text):
    assert found(STAFF_ORDINARY + ["Mark Rose", "June Park"], text) == []


@pytest.mark.parametrize(("text", "match"), [
    ("our colleague May packed it", "May"),
    ("the label Will printed", "Will"),
    ("Will Turner printed the label", "Will Turner"),
    ("Turner, Will printed it", "Turner, Will"),
    ("chen printed it", "chen"),  # the part that is no ordinary word: any case
])
def test_names_that_are_ordinary_words_are_found_where_they_stand_as_names(text, match):
    assert found(STAFF_ORDINARY, text) == [match]


# ---------------------------------------------------------------- refused at the edge: the open


def test_an_open_that_names_staff_to_the_customer_is_refused_naming_the_field():
    rep = report("pi_unit", staff_involved=STAFF_WORLDWIDE,
                 impact="You left without it; O’Brien apologised.")
    assert rep.staff_named_to_customer() == (
        "impact: shown to the customer, who is never told who was at fault ('O’Brien' names "
        "'Siobhán O'Brien' of staff_involved); say what happened as the company (\"we\") and keep the "
        "people in staff_involved"
    )
    data = rep.model_dump(mode="json")
    with pytest.raises(ValidationError, match="impact: shown to the customer"):
        IncidentReport.model_validate(data, context={OPENING: True})


def test_a_recorded_report_that_names_staff_still_decodes():
    # Histories and snapshots hold reports from before the rule: they decode as they were.
    data = report("pi_unit", what_happened="Kevin Lomax mislabelled the parcel.").model_dump(mode="json")
    assert IncidentReport.model_validate(data).what_happened == "Kevin Lomax mislabelled the parcel."
    assert IncidentReport.model_validate_json(IncidentReport.model_validate(data).model_dump_json())
    assert IncidentReport.model_validate(data).staff_named_to_customer() is not None


def test_an_open_that_speaks_as_the_company_is_taken():
    rep = report("pi_unit", staff_involved=STAFF_ORDINARY + STAFF_WORLDWIDE,
                 what_happened="The tent promised for 3 May will arrive late.",
                 impact="You may have to wait; we will call you.")
    assert rep.staff_named_to_customer() is None
    IncidentReport.model_validate(rep.model_dump(mode="json"), context={OPENING: True})


# ---------------------------------------------------------------- the blameless post-mortem


def postmortem(**changes) -> PostmortemInput:
    data = STEP_INPUTS["record_postmortem"].model_dump()
    data.update(changes)
    return PostmortemInput.model_validate(data)


@pytest.mark.parametrize(("changes", "named"), [
    ({"root_cause": "STRAUSS skipped the check"}, "Jonas Strauß"),
    ({"what_happened": "the label O’Brien printed was wrong"}, "Siobhán O'Brien"),
    ({"contributing_factors": [{"condition": nfd("Zoë was alone on the shift"), "kind": "capacity"}]}, "Zoë Adams"),
    ({"preventive_actions": [{"action": "retrain Lomax", "owner": {"name": "Ops", "email": "ops@example.com"},
                              "due": "2099-01-01"}]}, "Lomax, Kevin"),
])
def test_a_blameless_postmortem_names_no_one_in_any_form(changes, named):
    r = closed(recovery(staff_involved=STAFF_WORLDWIDE))
    assert refusal(r, "record_postmortem", postmortem(**changes)) == (
        f"root_cause: a blameless post-mortem names no one ('{named}' appears); describe the "
        f"condition of the system that let it happen"
    )


def test_a_postmortem_may_use_words_that_are_also_staff_names():
    r = closed(recovery(staff_involved=STAFF_ORDINARY))
    validate(r, "record_postmortem", postmortem(
        root_cause="labels printed for 3 May will fail the scanner check; we may print them by hand"))
