from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "examples" / "goemotions-sample"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.exists():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def use_cache(tmp_path_factory) -> Path:
    """One embedding cache for the whole session, so each text is encoded once across tests."""
    return tmp_path_factory.mktemp("emb-cache")
