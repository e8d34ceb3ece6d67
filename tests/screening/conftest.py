"""The screening tests read the pages' English text; the site's default language is Simplified Chinese."""

import pytest


@pytest.fixture(autouse=True)
def _english_pages(settings) -> None:  # type: ignore[no-untyped-def]
    settings.LANGUAGE_CODE = "en"
