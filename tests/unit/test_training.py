"""Tests for the source cap of app.training: weights, and the weighted fits."""

from __future__ import annotations

import numpy as np
import pytest

from app.training import fit_monotone_lr, fit_text_classifier, source_weights


@pytest.mark.parametrize(
    ("counts", "cap", "expected"),
    [
        ({("a", 1): 10, ("a", 0): 50}, None, None),  # no cap
        ({("a", 1): 10, ("b", 1): 4, ("a", 0): 50}, 10, None),  # nobody above the cap
        ({("a", 1): 40, ("b", 1): 4, ("a", 0): 50}, 10, {("a", 1): 0.25}),
        ({("a", 1): 40, ("b", 1): 20, ("b", 0): 90}, 10, {("a", 1): 0.25, ("b", 1): 0.5}),
    ],
)
def test_only_attacks_of_sources_above_the_cap_are_scaled(
    counts: dict[tuple[str, int], int], cap: int | None, expected: dict | None
) -> None:
    groups = np.array([s for (s, _), n in counts.items() for _ in range(n)])
    labels = np.array([y for (_, y), n in counts.items() for _ in range(n)])
    weights = source_weights(labels, groups, cap)
    if expected is None:
        assert weights is None
        return
    assert weights is not None
    for source, label in counts:
        rows = (groups == source) & (labels == label)
        assert np.allclose(weights[rows], expected.get((source, label), 1.0))
        # a capped source's attacks weigh exactly `cap` rows in total
        if (source, label) in expected:
            assert weights[rows].sum() == pytest.approx(cap)


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 4))
    y = (x @ np.array([1.5, 0.5, 0.0, 1.0]) + 0.3 * rng.standard_normal(300) > 0.8).astype(int)
    return x, y


@pytest.mark.parametrize("fit", ["fusion", "text"])
def test_a_weight_of_two_is_the_same_as_a_second_copy(fit: str) -> None:
    x, y = data()
    twice = np.arange(60)  # the first 60 rows count twice
    weights = np.ones(len(y))
    weights[twice] = 2.0
    x2, y2 = np.vstack([x, x[twice]]), np.concatenate([y, y[twice]])
    if fit == "fusion":
        weighted = fit_monotone_lr(x, y, sample_weight=weights)
        copied = fit_monotone_lr(x2, y2, sample_weight=np.ones(len(y2)))
        assert np.allclose(weighted[0], copied[0], atol=1e-3)
    else:
        weighted = fit_text_classifier(x, y, seed=0, sample_weight=weights)
        copied = fit_text_classifier(x2, y2, seed=0, sample_weight=np.ones(len(y2)))
        # the L2 term is not scaled by the number of rows in sklearn: compare directions
        cosine = weighted[0] @ copied[0] / np.linalg.norm(weighted[0]) / np.linalg.norm(copied[0])
        assert cosine > 0.999


def test_unit_weights_give_the_unweighted_fusion() -> None:
    x, y = data(1)
    plain = fit_monotone_lr(x, y)
    weighted = fit_monotone_lr(x, y, sample_weight=np.ones(len(y)))
    assert np.allclose(plain[0], weighted[0], atol=1e-6)
    assert plain[1] == pytest.approx(weighted[1], abs=1e-6)
    assert np.all(plain[0] >= 0)  # still monotone


def test_stores_are_searched_the_way_the_model_was_trained(tmp_path) -> None:
    from app.core import load_pattern_store
    from app.embedders import HashingEmbedder
    from app.patterns import Pattern
    from app.settings import Settings
    from app.training import KNN_SEARCH, build_store, write_pattern_pack

    embedder = HashingEmbedder(dim=64)
    patterns = [
        Pattern(f"p{i}", f"ignore the rules, take {i}", "override", 0.9, "t") for i in range(30)
    ]
    trained = build_store(patterns, embedder, window_chars=None, progress=False, search=KNN_SEARCH)
    assert (trained.search_kernel, trained.epsilon) == ("int8", 0.05)
    write_pattern_pack(tmp_path / "patterns.jsonl.gz", patterns)
    settings = Settings.from_env({}).replace(home=str(tmp_path / "home"))

    def load(search):
        return load_pattern_store(
            settings, tmp_path, embedder, window_chars=None, with_curated=False, search=search
        )

    served = load(KNN_SEARCH)
    assert (served.search_kernel, served.epsilon) == ("int8", 0.05)
    # an older model (no knn_search in its provenance) gets the defaults, from its own cache
    older = load(None)
    assert (older.search_kernel, older.epsilon) == ("pynndescent", 0.1)
    assert len(list((tmp_path / "home" / "stores").iterdir())) == 2
    assert load(KNN_SEARCH).search_kernel == "int8"  # from the cache: settings kept
