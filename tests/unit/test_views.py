"""The fixed view sets of test-time augmentation (domain) and the settings that choose one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from eurosat_service.domain.views import VIEW_SETS, view_transforms
from eurosat_service.entrypoints.settings import Settings


def test_each_view_set_starts_with_the_tile_itself_and_has_no_repeats():
    for views, transforms in VIEW_SETS.items():
        assert len(transforms) == views and transforms[0] == 0
        assert len(set(transforms)) == views and set(transforms) <= set(range(8))


def test_an_unknown_view_count_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="one of 1, 2, 4, 8, not 3"):
        view_transforms(3)


def test_the_views_setting_accepts_a_view_set_from_the_environment_and_refuses_others(monkeypatch):
    monkeypatch.setenv("EUROSAT_VIEWS", "8")
    assert Settings().views == 8
    monkeypatch.setenv("EUROSAT_VIEWS", "5")
    with pytest.raises(ValidationError, match="views must be one of"):
        Settings()
