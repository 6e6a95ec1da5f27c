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
