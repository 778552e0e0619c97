"""Real SavedModels, made once per test session (see savedmodels.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import savedmodels


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders holding one SavedModel each: regressor (Keras), multi (two inputs), v1 (classify), nosig."""
    root = tmp_path_factory.mktemp("savedmodels")
    return {
        "regressor": savedmodels.keras_regressor(root / "regressor"),
        "regressor_b": savedmodels.keras_regressor(root / "regressor_b", seed=3),
        "multi": savedmodels.multi_input(root / "multi"),
        "v1": savedmodels.v1_classifier(root / "v1"),
        "nosig": savedmodels.no_signature(root / "nosig"),
    }
