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


@pytest.fixture(scope="module")
def shared_embedding_cache(use_cache):
    """Point TAGWISE_CACHE_DIR at the session cache for a whole module (projects made inside it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAGWISE_CACHE_DIR", str(use_cache))
        yield use_cache
