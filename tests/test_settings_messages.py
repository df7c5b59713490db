"""A setting refused by validation is named with our own words, not pydantic's wrapping of them."""

from __future__ import annotations

import pytest

from flows.errors import ConfigError
from flows.settings import load_settings

pytestmark = pytest.mark.unit


def test_a_report_year_out_of_range_is_said_in_our_words() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(report_year=2050)
    text = str(refused.value)
    assert text.startswith("bad configuration: report_year: report year must be between 2000 and ")
    assert "Value error" not in text
