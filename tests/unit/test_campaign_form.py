"""The builder form as the campaign body (issue 19): a percent becomes the stored fraction, day and
month selects the stored "MM-DD", segments a list; the older fields are still read."""
from __future__ import annotations

import pytest

from saas.campaigns.routes import form_to_raw


@pytest.mark.parametrize("typed, share", [("10", 0.1), ("12,5", 0.125), ("50 %", 0.5), ("", 0), ("ten", "ten")])
def test_the_control_share_is_typed_as_a_percent(typed: str, share: object) -> None:
    assert form_to_raw({"control_share_pct": typed})["control_share"] == share


def test_an_older_form_sends_the_fraction() -> None:
    assert form_to_raw({"control_share": "0.2"})["control_share"] == "0.2"


@pytest.mark.parametrize("fields, bounds", [
    ({"g0_birthday_from_day": "5", "g0_birthday_from_month": "3"}, {"birthday_from": "03-05"}),
    ({"g0_birthday_from_month": "2", "g0_birthday_to_month": "2"}, {"birthday_from": "02-01", "birthday_to": "02-29"}),
    ({"g0_birthday_to_day": "7", "g0_birthday_to_month": "1"}, {"birthday_to": "01-07"}),
    ({"g0_birthday_from": "12-20"}, {"birthday_from": "12-20"}),  # the older text field
    ({"g0_birthday_from_day": "9"}, {"birthday_from": "??-9"}),  # a day without its month: refused by the check
])
def test_birthdays_from_day_and_month(fields: dict, bounds: dict) -> None:
    group = form_to_raw(fields)["criteria"]["any"][0]
    assert {k: v for k, v in group.items() if k.startswith("birthday")} == bounds


def test_segments_are_a_list_of_the_ticked_boxes() -> None:
    assert form_to_raw({"g0_segments": ["champions", "loyal"]})["criteria"]["any"][0]["segments"] == [
        "champions", "loyal"]
