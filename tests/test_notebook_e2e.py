"""Exécution complète du notebook sur les fixtures : le contrat est respecté et tout se recalcule.

Une seule exécution papermill par session (la fixture `full_run` de conftest.py, avec les réglages
de tools/demo.py : deux taux candidats par encodeur, LLM minuscule en 4 bits sur CPU).
"""

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import RUNS
from nbtools import notebook_namespace
from safetensors.torch import load_file
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from transformers import AutoTokenizer, pipeline

ENCODERS = ["encoder_scratch", "encoder_finetuned", "encoder_lora", "encoder_matched"]
TUNED_ENCODERS = ["encoder_scratch", "encoder_finetuned", "encoder_lora"]  # taux cherchés
RATES = {
    "encoder_scratch": "SCRATCH_LRS",
    "encoder_finetuned": "ENCODER_LRS",
    "encoder_lora": "ENCODER_LORA_LRS",
}
TRAINED = [*ENCODERS, "llm_qlora"]
UNTRAINED = ["majority_class", "llm_zero_shot", "llm_few_shot"]
RUN_FIELDS = {
    "model",
    "split",
    "n",
    "accuracy",
    "macro_f1",
    "per_class",
    "accuracy_ci95",
    "macro_f1_ci95",
    "confusion_matrix",
    "trainable_params",
    "total_params",
    "train_seconds",
    "eval_seconds",
    "peak_gpu_memory_bytes",
    "predicted_classes",
}
TRAINED_FIELDS = {
    "history",
    "best_epoch",
    "selection_metric",
    "max_length",
    "tokens_processed",
    "examples_per_second",
    "learning_rate",
    "validation_macro_f1_by_lr",
    "tuning_seconds",
    "candidates",
    "train_examples",
    "steps",
    "epochs",
    "validation_examples",
}
HISTORY_FIELDS = {
    "epoch",
    "step",
    "train_loss",
    "validation_loss",
    "validation_accuracy",
    "validation_macro_f1",
}
ENCODER_SELECTION = "taux : F1 macro de validation ; point : le dernier"
LLM_SELECTION = "taux fixe ; point : le dernier"
SCORING_VARIANTS = [
    "label+eos/sum/raw",
    "label+eos/sum/calibrated",
    "label/sum/raw",
    "label/sum/calibrated",
]
DECLARED_PAIRS = [
    ("encoder_finetuned", "encoder_scratch"),
    ("encoder_finetuned", "tfidf_logreg"),
    ("encoder_finetuned", "encoder_lora"),
    ("encoder_finetuned", "encoder_matched"),
    ("encoder_matched", "llm_qlora"),
    ("llm_qlora", "llm_zero_shot"),
    ("llm_few_shot", "llm_zero_shot"),
]
COMPARISON_FIELDS = {
    "pair",
    "only_first_correct",
    "only_second_correct",
    "accuracy_diff",
    "accuracy_diff_ci95",
    "macro_f1_diff",
    "macro_f1_diff_ci95",
    "p_value",
    "p_value_holm",
}
FIGURES = {
    "class_balance",
    "words_per_class",
    "token_lengths",
    "encoder_curves",
    "confusion_encoder_finetuned",
    "matched_curves",
    "learning_curve",
    "keyword_masking",
    "llm_curves",
    "confusion_llm_qlora",
    "comparison",
    "section_times",
}
SECTIONS = ["dataset", "tokenization", "encoder", "ablations", "llm", "comparison", "demo"]
DEMO_RUNS = ["tfidf_logreg", "encoder_finetuned", "encoder_lora", "llm_qlora"]
RESULT_FIELDS = ("seed", "n_train", "steps", "accuracy", "macro_f1")
CI = 1e-3  # les intervalles sont arrondis à 3 décimales


def read_predictions(output: Path, run: str) -> pd.DataFrame:
    """Fichier de prédictions d'un modèle, textes gardés tels quels."""
    return pd.read_csv(output / "predictions" / f"{run}.csv", keep_default_na=False)


def read_source(full_run, split: str) -> pd.DataFrame:
    """CSV d'origine d'un split (colonnes phrase, emotion)."""
    return pd.read_csv(full_run["parameters"]["DATA_FILES"][split], keep_default_na=False)


def executed_cells(path: Path) -> list:
    """Cellules du notebook exécuté."""
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def code_outputs(path: Path) -> list:
    """Toutes les sorties des cellules de code du notebook exécuté."""
    return [
        output
        for cell in executed_cells(path)
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    ]


def printed_text(path: Path) -> str:
    """Tout ce que les cellules ont écrit (stdout et stderr)."""
    return "".join(
        "".join(output["text"])
        for output in code_outputs(path)
        if output["output_type"] == "stream"
    )


@pytest.fixture(scope="module")
def defaults() -> dict:
    """Valeurs par défaut de la cellule de paramètres (celles que l'exécution ne remplace pas)."""
    return notebook_namespace()


def parameter(full_run, defaults, name):
    """Valeur d'un paramètre dans l'exécution complète."""
    return full_run["parameters"].get(name, defaults[name])


def holm(p_values: list) -> list:
    """Ajustement de Holm, recalculé ici indépendamment du notebook."""
    m, order = len(p_values), sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def inside(value: float, interval: list) -> bool:
    """La valeur est dans l'intervalle arrondi (à l'arrondi près)."""
    low, high = interval
    return low - CI <= value <= high + CI and low <= high


def test_dataset_block_matches_the_known_answers(full_run, facts):
    dataset = full_run["metrics"]["dataset"]
    assert dataset["label_names"] == facts["labels"]
    assert dataset["test_source"] == "test"
    assert dataset["dropped"]["empty_text"] == sum(facts["blank_texts"].values())
    assert dataset["dropped"]["train_test_duplicates"] == facts["train_texts_in_test"]
    splits = dataset["splits"]
    assert set(splits) == {"train", "validation", "test"}
    assert splits["train"]["n_raw"] == facts["n_rows"]["train"]
    assert splits["test"]["n_raw"] == facts["n_rows"]["test"]
    assert splits["validation"]["n_raw"] == 0  # découpée dans le train
    assert splits["test"]["n"] == facts["n_test_clean"]
    assert splits["train"]["empty_text"] == facts["blank_texts"]["train"]
    # la validation est découpée dans le train nettoyé : ensemble, ils rendent ses lignes gardées
    kept_train = (
        facts["n_rows"]["train"] - facts["blank_texts"]["train"] - facts["train_texts_in_test"]
    )
    assert splits["train"]["n"] + splits["validation"]["n"] == kept_train
    written = facts["class_counts"]["test"]
    assert all(splits["test"]["class_counts"][name] <= count for name, count in written.items())
    assert sum(written.values()) - splits["test"]["n"] == facts["blank_texts"]["test"]
    for split in splits.values():
        assert sum(split["class_counts"].values()) == split["n"]
        assert set(split["class_counts"]) == set(facts["labels"])
        assert split["median_words"] <= split["p95_words"] <= split["max_words"]
    test = read_source(full_run, "test")
    words = test["phrase"][test["phrase"].str.strip() != ""].str.split().str.len()
    assert splits["test"]["mean_words"] == pytest.approx(words.mean(), abs=1e-3)
    assert dataset["checks"]["avec un mot-outil anglais"] > 0.9  # des textes anglais
    counts = splits["train"]["class_counts"]
    assert dataset["majority_class"] == max(counts, key=counts.get)
    assert dataset["imbalance_ratio"] == pytest.approx(
        max(counts.values()) / min(counts.values()), abs=1e-3
    )


def test_every_run_follows_the_contract(full_run):
    runs = full_run["metrics"]["runs"]
    assert list(runs) == RUNS  # ordre d'insertion
    for name, run in runs.items():
        assert RUN_FIELDS <= set(run), (name, RUN_FIELDS - set(run))
        assert run["split"] == "test"
        assert run["n"] == full_run["metrics"]["dataset"]["splits"]["test"]["n"]
        assert run["peak_gpu_memory_bytes"] is None  # pas de CUDA ici
        assert run["total_params"] >= run["trainable_params"] >= 0 and run["eval_seconds"] >= 0
        if name in TRAINED:
            assert TRAINED_FIELDS <= set(run), (name, TRAINED_FIELDS - set(run))
            assert run["trainable_params"] > 0 and run["train_seconds"] > 0
            assert run["tokens_processed"] > 0 and run["examples_per_second"] > 0
            assert run["max_length"] > 0 and run["steps"] > 0 and run["epochs"] > 0
            assert run["tuning_seconds"] >= run["train_seconds"], name
            assert run["candidates"] == len(run["validation_macro_f1_by_lr"]) >= 1, name
        elif name in UNTRAINED:
            assert run["trainable_params"] == 0 and run["train_seconds"] == 0


@pytest.mark.parametrize("run", RUNS)
def test_metrics_recomputed_from_the_predictions_file(full_run, run):
    metrics = full_run["metrics"]
    names = metrics["dataset"]["label_names"]
    stored = metrics["runs"][run]
    predictions = read_predictions(full_run["output"], run)
    assert list(predictions.columns) == ["text", "label", "prediction", "confidence", "id"]
    assert len(predictions) == stored["n"]
    truth, predicted = predictions["label"], predictions["prediction"]
    assert set(predicted) <= set(names)
    assert stored["accuracy"] == pytest.approx((truth == predicted).mean(), abs=1e-5)
    macro = f1_score(truth, predicted, labels=names, average="macro", zero_division=0)
    assert stored["macro_f1"] == pytest.approx(macro, abs=1e-5)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=names, zero_division=0
    )
    for i, name in enumerate(names):
        assert stored["per_class"][name]["recall"] == pytest.approx(recall[i], abs=1e-5)
        assert stored["per_class"][name]["precision"] == pytest.approx(precision[i], abs=1e-5)
        assert stored["per_class"][name]["f1"] == pytest.approx(f1[i], abs=1e-5)
        assert stored["per_class"][name]["support"] == support[i]
    assert stored["confusion_matrix"] == confusion_matrix(truth, predicted, labels=names).tolist()
    assert stored["predicted_classes"] == predicted.nunique()
    for field in ("accuracy", "macro_f1"):
        low, high = stored[f"{field}_ci95"]
        assert 0 <= low and high <= 1 and inside(stored[field], [low, high]), (field, low, high)
    assert ((predictions["confidence"] > 0) & (predictions["confidence"] <= 1 + 1e-6)).all()


def test_prediction_rows_match_the_input_rows_by_id(full_run):
    source = read_source(full_run, "test")
    reference = None
    for run in RUNS:
        predictions = read_predictions(full_run["output"], run)
        rows = source.iloc[predictions["id"]]
        assert (rows["phrase"].to_numpy() == predictions["text"].to_numpy()).all()
        assert (rows["emotion"].to_numpy() == predictions["label"].to_numpy()).all()
        assert predictions["id"].is_monotonic_increasing  # ordre du test
        if reference is None:
            reference = predictions["id"].tolist()
        assert predictions["id"].tolist() == reference  # mêmes exemples pour tous les modèles
    blank = source["phrase"].str.strip() == ""
    assert set(reference) == set(source.index[~blank])


def check_history_shape(name: str, history: list) -> None:
    """Pas 0 avant tout entraînement, puis des évaluations à des pas croissants."""
    assert all(HISTORY_FIELDS <= set(entry) for entry in history), name
    first = history[0]
    assert first["step"] == 0 and first["epoch"] == 0 and first["train_loss"] is None, name
    assert all(entry["step"] > 0 and entry["train_loss"] is not None for entry in history[1:])
    steps = [entry["step"] for entry in history]
    assert steps == sorted(set(steps)), name
    assert all(entry["validation_loss"] is not None for entry in history), name


@pytest.mark.parametrize("name", ENCODERS)
def test_each_encoder_keeps_its_last_checkpoint(full_run, defaults, name):
    metrics = full_run["metrics"]
    run = metrics["runs"][name]
    epochs = parameter(full_run, defaults, "ENCODER_EPOCHS")
    batch = parameter(full_run, defaults, "ENCODER_BATCH_SIZE")
    min_steps = parameter(full_run, defaults, "ENCODER_MIN_STEPS")
    history = run["history"]
    check_history_shape(name, history)
    assert len(history) == epochs + 1, name  # pas 0, puis une évaluation par époque
    for entry in history:
        assert entry["validation_accuracy"] is not None, name
        assert entry["validation_macro_f1"] is not None, name
    assert run["best_epoch"] == history[-1]["epoch"]  # le dernier point, jamais un choix
    assert run["selection_metric"] == ENCODER_SELECTION
    n_train = run["train_examples"]
    if name != "encoder_matched":
        assert n_train == metrics["dataset"]["splits"]["train"]["n"]
    assert run["steps"] == max(min_steps, math.ceil(n_train / batch) * epochs)
    assert history[-1]["step"] == run["steps"]
    assert run["epochs"] == pytest.approx(run["steps"] * batch / n_train, abs=0.01)
    assert run["validation_examples"] == metrics["dataset"]["splits"]["validation"]["n"]
    kept = run["validation_macro_f1_by_lr"][str(run["learning_rate"])]
    assert kept == pytest.approx(history[-1]["validation_macro_f1"], abs=1e-9)
    assert run["max_length"] == metrics["dataset"]["tokens"]["encoder_max_length"]


def test_qlora_keeps_its_last_checkpoint_and_its_fixed_rate(full_run, defaults):
    metrics = full_run["metrics"]
    run = metrics["runs"]["llm_qlora"]
    history = run["history"]
    check_history_shape("llm_qlora", history)
    assert len(history) == 3  # pas 0, milieu, fin
    assert history[-1]["step"] == run["steps"] and history[1]["step"] < run["steps"]
    for entry in (history[0], history[-1]):
        assert entry["validation_accuracy"] is not None
        assert entry["validation_macro_f1"] is not None
    assert history[1]["validation_accuracy"] is None and history[1]["validation_macro_f1"] is None
    assert run["best_epoch"] == history[-1]["epoch"]
    assert run["selection_metric"] == LLM_SELECTION
    rate = parameter(full_run, defaults, "LLM_LR")
    assert run["learning_rate"] == rate and run["candidates"] == 1
    assert run["validation_macro_f1_by_lr"] == {str(rate): history[-1]["validation_macro_f1"]}
    batch = parameter(full_run, defaults, "LLM_BATCH_SIZE")
    min_steps = parameter(full_run, defaults, "LLM_MIN_STEPS")
    epochs = parameter(full_run, defaults, "LLM_EPOCHS")
    assert run["steps"] == max(min_steps, math.ceil(run["train_examples"] / batch) * epochs)
    validation_n = metrics["dataset"]["splits"]["validation"]["n"]
    expected = min(parameter(full_run, defaults, "LLM_VAL_EXAMPLES"), validation_n)
    assert run["validation_examples"] == expected
    # le pas 0 est le modèle de base noté « classe + </s>, brut » : le zéro-shot de la validation
    raw = metrics["runs"]["llm_zero_shot"]["validation_by_scoring"]["label+eos/sum/raw"]
    assert history[0]["validation_macro_f1"] == pytest.approx(raw["macro_f1"], abs=1e-9)
    assert history[0]["validation_accuracy"] == pytest.approx(raw["accuracy"], abs=1e-9)
    assert run["scoring"] == "label+eos/sum/raw"


def test_encoder_rates_are_chosen_on_validation_with_equal_budgets(full_run, defaults):
    runs = full_run["metrics"]["runs"]
    for name in TUNED_ENCODERS:
        run = runs[name]
        rates = parameter(full_run, defaults, RATES[name])
        assert len(rates) == 2, name  # tools/demo.py donne deux candidats à chaque encodeur
        by_lr = run["validation_macro_f1_by_lr"]
        assert list(by_lr) == [str(rate) for rate in rates], name
        assert run["candidates"] == len(rates), name
        best = max(by_lr.values())
        first_best = next(rate for rate in rates if by_lr[str(rate)] == best)  # égalité : le 1er
        assert run["learning_rate"] == first_best, (name, by_lr)
    assert len({runs[name]["candidates"] for name in TUNED_ENCODERS}) == 1  # même budget
    matched, finetuned = runs["encoder_matched"], runs["encoder_finetuned"]
    assert matched["learning_rate"] == finetuned["learning_rate"]  # aucune nouvelle recherche
    assert matched["candidates"] == 1
    assert list(matched["validation_macro_f1_by_lr"]) == [str(finetuned["learning_rate"])]


def test_encoder_lora_trains_a_small_share(full_run):
    run = full_run["metrics"]["runs"]["encoder_lora"]
    finetuned = full_run["metrics"]["runs"]["encoder_finetuned"]
    assert 0 < run["trainable_params"] / run["total_params"] < 0.1
    assert run["trainable_params"] < finetuned["trainable_params"]
    assert 0 < run["head_params"] < run["trainable_params"]
    assert run["lora_targets"] == ["q_lin", "v_lin"]  # DistilBERT
    assert (full_run["output"] / "models" / "encoder_lora" / "config.json").exists()


def test_tfidf_gets_its_best_chance_inside_its_grid(full_run):
    metrics = full_run["metrics"]
    run = metrics["runs"]["tfidf_logreg"]
    grid, choice = pd.DataFrame(run["grid"]), run["choice"]
    assert set(choice) == {"ngrams", "class_weight", "C"}
    assert set(grid.columns) == {"ngrams", "class_weight", "C", "macro_f1"}
    cs = sorted(set(grid["C"]))
    assert len(grid) == run["candidates"] == 2 * 2 * len(cs)  # toutes les combinaisons
    assert all(high / low == pytest.approx(10) for low, high in zip(cs, cs[1:]))  # des décades
    assert run["at_edge"] is False
    assert cs[0] < choice["C"] < cs[-1]  # strictement à l'intérieur de la grille finale
    chosen = grid[
        (grid["ngrams"] == str(tuple(choice["ngrams"])))
        & (grid["class_weight"] == str(choice["class_weight"]))
        & (grid["C"] == choice["C"])
    ]
    assert len(chosen) == 1
    best = grid["macro_f1"].max()
    assert chosen["macro_f1"].iloc[0] == best
    assert choice["C"] == grid.loc[grid["macro_f1"] == best, "C"].min()  # égalité : le plus petit C
    assert run["selection_metric"] == "F1 macro de validation"
    assert run["train_examples"] == metrics["dataset"]["splits"]["train"]["n"]
    assert run["validation_examples"] == metrics["dataset"]["splits"]["validation"]["n"]
    assert run["tuning_seconds"] >= 0 and run["train_seconds"] >= 0
    assert run["trainable_params"] == run["total_params"] > 0


def test_the_matched_encoder_sees_exactly_the_llm_examples(full_run, defaults):
    runs = full_run["metrics"]["runs"]
    matched, qlora = runs["encoder_matched"], runs["llm_qlora"]
    assert matched["train_ids"] == qlora["train_ids"]
    n_train = full_run["metrics"]["dataset"]["splits"]["train"]["n"]
    expected = min(parameter(full_run, defaults, "LLM_TRAIN_EXAMPLES"), n_train)
    assert len(matched["train_ids"]) == len(set(matched["train_ids"])) == expected
    assert matched["train_examples"] == qlora["train_examples"] == expected
    source = read_source(full_run, "train")
    test_texts = set(read_predictions(full_run["output"], "llm_qlora")["text"])
    # des lignes du train, jamais du test
    assert not set(source.iloc[matched["train_ids"]]["phrase"]) & test_texts


def test_zero_shot_scoring_is_chosen_on_validation_and_few_shot_reuses_it(full_run, facts):
    runs = full_run["metrics"]["runs"]
    zero, few = runs["llm_zero_shot"], runs["llm_few_shot"]
    by_scoring = zero["validation_by_scoring"]
    assert list(by_scoring) == SCORING_VARIANTS
    best = max(score["macro_f1"] for score in by_scoring.values())
    chosen = next(variant for variant, score in by_scoring.items() if score["macro_f1"] == best)
    assert zero["scoring"] == chosen
    assert few["scoring"] == zero["scoring"]
    examples = few["examples"]
    assert [example["label"] for example in examples] == facts["labels"]  # un par classe
    source = read_source(full_run, "train")
    for example in examples:
        row = source.iloc[example["id"]]
        assert row["phrase"] == example["text"] and row["emotion"] == example["label"]
        assert len(example["text"].split()) >= 4
    test_texts = set(read_predictions(full_run["output"], "llm_few_shot")["text"])
    assert not {example["text"] for example in examples} & test_texts


def test_qlora_trained_the_adapters_and_the_losses_went_down(full_run):
    run = full_run["metrics"]["runs"]["llm_qlora"]
    adapter = full_run["output"] / "models" / "llm_qlora"
    assert (adapter / "adapter_config.json").exists()
    saved = load_file(adapter / "adapter_model.safetensors")
    assert sum(tensor.numel() for tensor in saved.values()) == run["trainable_params"]
    # B part de zéro (LoRA) : une matrice B non nulle a été modifiée par l'entraînement
    b_matrices = [tensor for name, tensor in saved.items() if "lora_B" in name]
    assert b_matrices and all(bool(tensor.abs().sum() > 0) for tensor in b_matrices)
    assert run["total_params"] > run["trainable_params"]
    losses = [entry["train_loss"] for entry in run["history"] if entry["train_loss"] is not None]
    assert losses[-1] < losses[0]
    validation_losses = [entry["validation_loss"] for entry in run["history"]]
    assert min(validation_losses[1:]) < validation_losses[0]
    assert set(run["memory_estimate_gib"]) == {"affinage complet fp16", "LoRA, base fp16", "QLoRA"}


def test_comparisons_are_the_declared_pairs_recomputed_from_the_predictions(full_run):
    metrics = full_run["metrics"]
    names = metrics["dataset"]["label_names"]
    comparisons = metrics["comparisons"]
    assert [tuple(test["pair"]) for test in comparisons] == DECLARED_PAIRS
    output = full_run["output"]
    for test in comparisons:
        assert set(test) == COMPARISON_FIELDS, test["pair"]
        first, second = (read_predictions(output, name) for name in test["pair"])
        assert first["id"].tolist() == second["id"].tolist()
        truth = first["label"]
        right_first, right_second = truth == first["prediction"], truth == second["prediction"]
        only_first = int((right_first & ~right_second).sum())
        only_second = int((~right_first & right_second).sum())
        assert test["only_first_correct"] == only_first, test["pair"]
        assert test["only_second_correct"] == only_second, test["pair"]
        accuracy = right_first.mean() - right_second.mean()
        assert test["accuracy_diff"] == pytest.approx(accuracy, abs=1e-5), test["pair"]
        f1_first, f1_second = (
            f1_score(truth, table["prediction"], labels=names, average="macro", zero_division=0)
            for table in (first, second)
        )
        assert test["macro_f1_diff"] == pytest.approx(f1_first - f1_second, abs=1e-5)
        for field in ("accuracy", "macro_f1"):
            interval = test[f"{field}_diff_ci95"]
            assert -1 <= interval[0] and interval[1] <= 1, (test["pair"], field)
            assert inside(test[f"{field}_diff"], interval), (test["pair"], field, interval)
        discordant = only_first + only_second
        expected = binomtest(only_first, discordant).pvalue if discordant else 1.0
        assert test["p_value"] == pytest.approx(expected, rel=1e-9), test["pair"]
    raw = [test["p_value"] for test in comparisons]
    for test, adjusted in zip(comparisons, holm(raw)):
        assert test["p_value_holm"] >= test["p_value"] - 1e-12, test["pair"]
        assert test["p_value_holm"] == pytest.approx(adjusted, rel=1e-9, abs=1e-12), test["pair"]


def reference_rows(rows: list) -> dict:
    """Lignes du réglage de référence d'une expérience, rangées par graine."""
    return {row["seed"]: row for row in rows if row["setting"] == "référence"}


def test_ablations_follow_the_fixed_recipe_and_share_one_reference(full_run, defaults):
    metrics = full_run["metrics"]
    ablations = metrics["ablations"]
    assert list(ablations) == ["learning_curve", "keyword_masking"]
    seed = parameter(full_run, defaults, "SEED")
    seeds = [seed + offset for offset in range(parameter(full_run, defaults, "ABLATION_SEEDS"))]
    for name, ablation in ablations.items():
        assert ablation["description"] and ablation["split"] == "validation", name
        for row in ablation["rows"]:
            assert {"setting", "seed", "macro_f1"} <= set(row), name
            assert 0 <= row["macro_f1"] <= 1, name
            if row.get("model") != "tfidf_logreg":  # les lignes de l'encodeur
                assert set(RESULT_FIELDS) <= set(row), (name, row)
                assert 0 <= row["accuracy"] <= 1

    n_reference = min(
        parameter(full_run, defaults, "ABLATION_TRAIN_EXAMPLES"),
        metrics["dataset"]["splits"]["train"]["n"],
    )
    curve = ablations["learning_curve"]["rows"]
    fractions = parameter(full_run, defaults, "LEARNING_CURVE_FRACTIONS")
    n_labels = len(metrics["dataset"]["label_names"])
    sizes = {max(4 * n_labels, round(n_reference * f)) for f in fractions}
    sizes = {size for size in sizes if size < n_reference}
    assert sizes
    assert sorted({row["n_train"] for row in curve}) == sorted(sizes | {n_reference})
    for size in sizes | {n_reference}:
        assert sorted(row["seed"] for row in curve if row["n_train"] == size) == seeds, size
    min_steps = parameter(full_run, defaults, "ENCODER_MIN_STEPS")
    assert all(row["steps"] >= min_steps for row in curve)

    masking = ablations["keyword_masking"]
    rows = masking["rows"]
    tfidf = {row["setting"]: row for row in rows if row.get("model") == "tfidf_logreg"}
    assert list(tfidf) == ["TF-IDF, original", "TF-IDF, sans"]
    # les mots-clés retirés portaient l'essentiel de l'information lexicale des fixtures
    assert tfidf["TF-IDF, sans"]["macro_f1"] < tfidf["TF-IDF, original"]["macro_f1"]
    masked = [row for row in rows if row["setting"] == "encodeur, mots retirés"]
    assert sorted(row["seed"] for row in masked) == seeds
    assert all(row["n_train"] == n_reference for row in masked)
    keywords = masking["keywords"]
    assert list(keywords) == metrics["dataset"]["label_names"]
    per_class = parameter(full_run, defaults, "KEYWORDS_PER_CLASS")
    train_words = set(" ".join(read_source(full_run, "train")["phrase"]).lower().split())
    for words in keywords.values():
        assert len(words) == per_class and all(word in train_words for word in words)

    # le réglage de référence n'est entraîné qu'une fois : les deux expériences le partagent
    shared = {name: reference_rows(ablation["rows"]) for name, ablation in ablations.items()}
    for name, by_seed in shared.items():
        assert sorted(by_seed) == seeds, name
        assert all(row["n_train"] == n_reference for row in by_seed.values()), name
    for seed_value in seeds:
        values = {
            tuple(by_seed[seed_value][field] for field in RESULT_FIELDS)
            for by_seed in shared.values()
        }
        assert len(values) == 1, values
    assert not (full_run["output"] / "checkpoints").exists()  # aucun checkpoint gardé


def test_demo_sentences_are_classified_by_every_trained_model(full_run, defaults):
    demo = full_run["metrics"]["demo"]
    texts = parameter(full_run, defaults, "DEMO_TEXTS")
    labels = set(full_run["metrics"]["dataset"]["label_names"])
    assert [row["text"] for row in demo] == texts
    for row in demo:
        assert list(row["predictions"]) == DEMO_RUNS
        for run, prediction in row["predictions"].items():
            assert prediction["label"] in labels, run
            assert 0 < prediction["confidence"] <= 1, run
            # la classe prédite est la plus probable
            assert prediction["confidence"] >= 1 / len(labels) - 1e-4, run


def test_saved_models_reload_and_reproduce_the_demo(full_run):
    """La section 8 lancée seule (tools/try_sentences.py, nouvel espace de noms) redonne `demo`."""
    from try_sentences import predict

    metrics = full_run["metrics"]
    texts = [row["text"] for row in metrics["demo"]]
    again = predict(Path(full_run["output"]), texts, with_llm=True)  # LLM minuscule, sur CPU
    assert [row["text"] for row in again] == texts
    for fresh, stored in zip(again, metrics["demo"]):
        assert list(fresh["predictions"]) == DEMO_RUNS
        for run, prediction in fresh["predictions"].items():
            expected = stored["predictions"][run]
            assert prediction["label"] == expected["label"], (fresh["text"], run)
            assert prediction["confidence"] == pytest.approx(expected["confidence"], abs=2e-3)


def llm_text_budget(ns: dict, limit: int) -> int:
    """TEXT_TOKEN_BUDGET recalculé comme en section 6.2 : la limite moins consigne et réponse."""
    empty = ns["build_prompt"]("")
    template = len(ns["llm_tokenizer"](empty).input_ids)
    answers = [ns["encode_example"](empty, name)["labels"] for name in ns["LABEL_NAMES"]]
    return limit - template - max(sum(token != -100 for token in answer) for answer in answers)


def test_the_sentence_box_handler_answers_with_every_saved_model(full_run):
    """Issue 17 : la fonction qu'appelle le bouton de la zone de saisie (Colab seulement)."""
    metrics = full_run["metrics"]
    names = metrics["dataset"]["label_names"]
    llm_model = full_run["parameters"]["LLM_MODEL"]
    ns = notebook_namespace(
        OUTPUT=Path(full_run["output"]),
        LABEL_NAMES=names,
        N_LABELS=len(names),
        LABEL_IDS=list(range(len(names))),
        ENCODER_MAX_LENGTH=metrics["dataset"]["tokens"]["encoder_max_length"],
        CUDA=False,
        USE_BF16=False,
        USE_FP16=False,
        RUN_LLM_SECTION=True,
        LLM_MODEL=llm_model,
        llm_tokenizer=AutoTokenizer.from_pretrained(llm_model),
        LLM_DTYPE=torch.float32,
    )
    ns["TEXT_TOKEN_BUDGET"] = llm_text_budget(ns, metrics["runs"]["llm_qlora"]["max_length"])
    ns["saved_models"] = ns["load_saved_models"]()
    assert list(ns["saved_models"]) == DEMO_RUNS
    answer = ns["answer_sentence"]("I am so happy today")
    assert isinstance(answer, pd.DataFrame)
    assert list(answer.index) == DEMO_RUNS  # une ligne par modèle sauvegardé
    assert set(answer["label"]) <= set(names)
    confidences = answer["confidence"].astype(float)
    assert ((confidences >= 1 / len(names) - 1e-4) & (confidences <= 1)).all()


def test_saved_models_are_the_evaluated_ones(full_run):
    """Les modèles de OUTPUT_DIR/models, relus, redonnent les prédictions de test enregistrées."""
    names = full_run["metrics"]["dataset"]["label_names"]
    ns = notebook_namespace(LABEL_NAMES=names, N_LABELS=len(names))
    models = Path(full_run["output"]) / "models"
    expected = read_predictions(full_run["output"], "tfidf_logreg")
    tfidf = ns["joblib"].load(models / "tfidf_logreg.joblib")
    assert list(tfidf.classes_) == list(range(len(names)))
    probabilities = tfidf.predict_proba(expected["text"])
    assert [names[i] for i in probabilities.argmax(axis=1)] == expected["prediction"].tolist()
    np.testing.assert_allclose(probabilities.max(axis=1), expected["confidence"], atol=1e-5)
    for run in ("encoder_finetuned", "encoder_lora"):
        expected = read_predictions(full_run["output"], run)
        classify = pipeline("text-classification", model=str(models / run), device=-1)
        outputs = classify(expected["text"].tolist())
        assert [output["label"] for output in outputs] == expected["prediction"].tolist(), run
        scores = [output["score"] for output in outputs]
        np.testing.assert_allclose(scores, expected["confidence"], atol=1e-3)


def test_every_figure_shown_is_saved(full_run):
    outputs = code_outputs(full_run["executed"])
    shown = sum("image/png" in output.get("data", {}) for output in outputs)
    saved = sorted(path.name for path in full_run["figures"].glob("*.png"))
    assert shown == len(saved)
    assert set(saved) == {f"{name}.png" for name in FIGURES}


def test_environment_and_time_plan_are_written(full_run):
    environment = full_run["metrics"]["environment"]
    assert {"python", "torch", "transformers", "device", "versions"} <= set(environment)
    assert list(environment["section_seconds"])[: len(SECTIONS)] == SECTIONS
    assert "conclusion" in environment["section_seconds"]
    low, high = environment["estimated_t4_minutes"]
    assert 0 < low <= high
    printed = printed_text(full_run["executed"])
    # sur CPU : le plan donne l'estimation pour un T4, et la durée mesurée finit en figure
    assert f"Sur un T4, l'estimation serait de {low:.0f} à {high:.0f} min" in printed
    assert (full_run["figures"] / "section_times.png").exists()


def test_the_executed_notebook_has_no_error_and_no_widget_outside_colab(full_run):
    outputs = code_outputs(full_run["executed"])
    assert not [output for output in outputs if output["output_type"] == "error"]
    # hors Colab, aucune zone de saisie ni bouton (les barres de tqdm sont aussi des widgets)
    state = json.loads(full_run["executed"].read_text(encoding="utf-8"))["metadata"]
    models = json.dumps(state.get("widgets", {}))
    assert '"TextModel"' not in models and '"ButtonModel"' not in models
    printed = printed_text(full_run["executed"])
    assert "Zone de saisie disponible sur Colab seulement" in printed
    assert "Traceback" not in printed and "ipywidgets" not in printed


def rendered_markdown(cells: list) -> list:
    """Textes Markdown affichés par les cellules de code du notebook exécuté."""
    return [
        "".join(output["data"]["text/markdown"])
        for cell in cells
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
        if "text/markdown" in output.get("data", {})
    ]


def test_summary_and_conclusion_are_rendered_from_the_run(full_run):
    cells = executed_cells(full_run["executed"])
    rendered = rendered_markdown(cells)
    runs = full_run["metrics"]["runs"]
    summaries = [text for text in rendered if text.startswith("### Résumé des résultats")]
    conclusions = [text for text in rendered if text.startswith("### Résultats de cette exécution")]
    assert len(summaries) == 1 and len(conclusions) == 1
    summary, conclusion = summaries[0], conclusions[0]
    summary_position = next(
        i for i, cell in enumerate(cells) if 'display_id="summary"' in "".join(cell["source"])
    )
    assert summary_position < 10  # le résultat d'abord
    assert rendered_markdown([cells[summary_position]]) == [summary]  # il remplace l'attente
    assert not any("Le résumé s'affichera ici" in text for text in rendered)
    for name in RUNS:
        assert f"{runs[name]['accuracy']:.3f}" in summary and name in summary
        assert f"{runs[name]['macro_f1']:.3f}" in summary
    # classement par F1 macro de test, tous les modèles
    ranked = sorted(runs, key=lambda name: runs[name]["macro_f1"], reverse=True)
    positions = [conclusion.index(f". {name} : F1 macro") for name in ranked]
    assert positions == sorted(positions)
    for name in RUNS:
        assert f"{name} : F1 macro {runs[name]['macro_f1']:.3f}" in conclusion
    assert "La section du LLM n'a pas tourné" not in conclusion


def test_no_metric_is_typed_by_hand_in_a_markdown_cell(full_run):
    source = executed_cells(full_run["executed"])
    markdown = "\n".join(
        "".join(cell["source"]) for cell in source if cell["cell_type"] == "markdown"
    )
    # exceptions : le coût en bits par poids de la double quantification (une constante de QLoRA)
    # et le seuil de 5 % des tests (0,05), qui ne sont pas des scores
    typed = re.findall(r"\b0[.,]\d{2,}\b(?! bits? par poids)", markdown)
    typed = [value for value in typed if value not in ("0,05", "0.05")]
    assert not typed, f"score décimal écrit en dur dans une cellule Markdown : {typed}"
    values = set()
    for run in full_run["metrics"]["runs"].values():
        for field in ("accuracy", "macro_f1"):
            value = run[field]
            values |= {f"{value:.3f}", f"{100 * value:.1f} %", f"{100 * value:.1f}%"}
    assert not [value for value in values if value in markdown]
    assert np.isfinite([run["accuracy"] for run in full_run["metrics"]["runs"].values()]).all()
