"""Shared fixtures: offline, isolated, and one real embedder per test session."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


class FakeEmbedder:
    """Deterministic vectors from a text's hash plus a few word features: fast, for unit tests."""

    name = "fake-embedder"
    dimension = 16

    def embed(self, texts):
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            row = np.random.default_rng(seed).normal(size=self.dimension)
            lowered = text.lower()
            row[0] += 3 * sum(w in lowered for w in ("win-win", "partnership", "new era", "friendship"))
            row[1] += 3 * sum(w in lowered for w in ("hegemony", "cold war", "nato", "sanctions"))
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test gets its own cache and home folders, so nothing leaks between tests or to the user."""
    monkeypatch.setenv("FRAMING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    """The packaged all-MiniLM-L6-v2, loaded once for the whole session."""
    from framing.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    return embedder


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, real_embedder):
    """A model trained once per session on the project's real labelled set with the real embedder."""
    from framing.pipeline import train

    folder = tmp_path_factory.mktemp("model") / "default"
    train(ROOT / "labels", folder, real_embedder)
    return folder


@pytest.fixture
def seeds_copy(tmp_path):
    target = tmp_path / "seeds"
    shutil.copytree(ROOT / "seeds", target)
    return target


@pytest.fixture(scope="session")
def fake_trained_model(tmp_path_factory):
    """A model trained once per session on the project's labelled set with the fake embedder: for tests of
    files, counts and reports, where what MiniLM thinks is not the point. Copy it before changing it."""
    from framing.pipeline import train

    folder = tmp_path_factory.mktemp("fake-model") / "model"
    train(ROOT / "labels", folder, FakeEmbedder())
    return folder
