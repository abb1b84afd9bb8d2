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
from scipy.stats import binomtest, permutation_test
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
    "macro_f1_p_value",
    "macro_f1_p_value_holm",
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
    "comparison",
    "per_class_f1",
    "section_times",
}
SECTIONS = ["données", "tokenisation", "encodeurs", "expériences", "LLM", "comparaison", "phrases"]
DEMO_RUNS = ["tfidf_logreg", "encoder_finetuned", "encoder_lora", "llm_qlora"]
RESULT_FIELDS = ("seed", "n_train", "steps", "epochs", "accuracy", "macro_f1")
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


def check_history_shape(name: str, history: list, steps: int) -> list:
    """Pas 0 (validation seule), puis une entrée par pas noté, à des pas croissants : la perte
    d'entraînement une vingtaine de fois, la validation au moins quatre fois après le pas 0, dont
    le dernier pas. Rend les entrées où la validation a été évaluée."""
    assert all(HISTORY_FIELDS <= set(entry) for entry in history), name
    first = history[0]
    assert first["step"] == 0 and first["epoch"] == 0 and first["train_loss"] is None, name
    logged = [entry["step"] for entry in history]
    assert logged == sorted(set(logged)) and logged[-1] == steps, name
    losses = [entry for entry in history[1:] if entry["train_loss"] is not None]
    assert min(steps, 10) <= len(losses) <= 21, (name, len(losses))  # « une vingtaine »
    validated = [entry for entry in history if entry["validation_loss"] is not None]
    assert len(validated) >= 5 and validated[0] is first and validated[-1] is history[-1], name
    assert all(entry["train_loss"] is not None or entry in validated for entry in history), name
    return validated


@pytest.mark.parametrize("name", ENCODERS)
def test_each_encoder_keeps_its_last_checkpoint(full_run, defaults, name):
    metrics = full_run["metrics"]
    run = metrics["runs"][name]
    epochs = parameter(full_run, defaults, "ENCODER_EPOCHS")
    batch = parameter(full_run, defaults, "ENCODER_BATCH_SIZE")
    min_steps = parameter(full_run, defaults, "ENCODER_MIN_STEPS")
    history = run["history"]
    validated = check_history_shape(name, history, run["steps"])
    for entry in history:  # exactitude et F1 macro partout où la validation a été évaluée
        evaluated = entry in validated
        assert (entry["validation_accuracy"] is not None) == evaluated, name
        assert (entry["validation_macro_f1"] is not None) == evaluated, name
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
    check_history_shape("llm_qlora", history, run["steps"])
    # perte de validation au moins cinq fois ; exactitude et F1 macro (classes notées) au début
    # et à la fin seulement
    scored = [entry for entry in history if entry["validation_macro_f1"] is not None]
    assert scored == [history[0], history[-1]]
    assert all(entry["validation_accuracy"] is not None for entry in scored)
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
    validation_losses = [e["validation_loss"] for e in run["history"] if e["validation_loss"]]
    assert min(validation_losses[1:]) < validation_losses[0]
    memory = run["memory_estimate_gib"]
    assert set(memory) == {"affinage complet fp16", "LoRA, base fp16", "QLoRA"}
    # (sur ce Llama minuscule, l'arrondi confond QLoRA et LoRA ; l'affinage complet reste au-dessus)
    assert max(memory["QLoRA"], memory["LoRA, base fp16"]) < memory["affinage complet fp16"]
    assert run["gpu_memory_after_release_bytes"] is None  # pas de CUDA ici


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
        assert 0 < test["macro_f1_p_value"] <= 1, test["pair"]
    # deux familles, chacune ajustée par Holm sur toutes les paires déclarées
    for raw_key in ("p_value", "macro_f1_p_value"):
        raw = [test[raw_key] for test in comparisons]
        for test, adjusted in zip(comparisons, holm(raw)):
            held = test[f"{raw_key}_holm"]
            assert held >= test[raw_key] - 1e-12, test["pair"]
            assert held == pytest.approx(adjusted, rel=1e-9, abs=1e-12), (raw_key, test["pair"])


def test_the_macro_f1_permutation_p_value_is_recomputed_with_scipy(full_run):
    """La p-valeur du F1 macro : 2 000 échanges appariés avec la graine du notebook."""
    metrics = full_run["metrics"]
    names = metrics["dataset"]["label_names"]
    test = metrics["comparisons"][0]
    first, second = (read_predictions(full_run["output"], name) for name in test["pair"])
    truth, x, y = (column.map(names.index).to_numpy() for column in
                   (first["label"], first["prediction"], second["prediction"]))

    def gap(u, v):
        return (f1_score(truth, u, labels=range(len(names)), average="macro", zero_division=0)
                - f1_score(truth, v, labels=range(len(names)), average="macro", zero_division=0))

    expected = permutation_test((x, y), gap, permutation_type="samples", vectorized=False,
                                n_resamples=2000, rng=np.random.default_rng(42)).pvalue
    assert test["macro_f1_p_value"] == pytest.approx(expected, rel=1e-9)


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

    epochs = {row["n_train"]: row["epochs"] for row in curve}  # une taille, un nombre d'époques
    assert all(row["epochs"] == epochs[row["n_train"]] for row in curve)

    # contrat v5 : chaque ligne du masquage dit son modèle, son retrait et sa graine
    masking = ablations["keyword_masking"]
    rows = masking["rows"]
    cells = {(row["model"], row["removal"], row["seed"]): row for row in rows}
    assert len(cells) == len(rows) == 2 * 3 * len(seeds)
    assert set(cells) == {(model, removal, s) for model in ("tfidf_logreg", "encoder")
                          for removal in ("none", "keywords", "random") for s in seeds}
    for removal in ("none", "keywords"):  # le TF-IDF ne dépend pas de la graine
        assert len({cells[("tfidf_logreg", removal, s)]["macro_f1"] for s in seeds}) == 1
    first = seeds[0]
    # les mots-clés retirés portaient l'essentiel de l'information lexicale des fixtures
    assert (cells[("tfidf_logreg", "keywords", first)]["macro_f1"]
            < cells[("tfidf_logreg", "none", first)]["macro_f1"])
    for (model, _, _), row in cells.items():
        if model == "encoder":
            assert row["n_train"] == n_reference
    keywords = masking["keywords"]
    assert list(keywords) == metrics["dataset"]["label_names"]
    per_class = parameter(full_run, defaults, "KEYWORDS_PER_CLASS")
    train_words = set(" ".join(read_source(full_run, "train")["phrase"]).lower().split())
    for words in keywords.values():
        assert len(words) == per_class and all(word in train_words for word in words)
    removed = {word for words in keywords.values() for word in words}
    control = masking["control_words"]  # le témoin : autant de mots, pris hors des mots-clés
    assert sorted(int(key) for key in control) == seeds
    for words in control.values():
        assert len(words) == len(set(words)) == len(removed)
        assert not set(words) & removed and set(words) <= train_words

    # la référence n'est entraînée qu'une fois : le masquage reprend celle de la courbe
    reference = reference_rows(curve)
    assert sorted(reference) == seeds
    assert all(row["n_train"] == n_reference for row in reference.values())
    for seed_value in seeds:
        again = cells[("encoder", "none", seed_value)]
        assert all(again[field] == reference[seed_value][field] for field in RESULT_FIELDS)
    assert not (full_run["output"] / "checkpoints").exists()  # aucun checkpoint gardé

    # les lectures de la section 5, écrites par le notebook
    rendered = "\n".join(rendered_markdown(executed_cells(full_run["executed"])))
    assert "retrait au hasard → retrait des mots-clés" in rendered
    assert rendered.count("- tfidf_logreg : retrait au hasard") == 1
    assert "part du F1 macro perdue sans les mots-clés" in rendered or (
        "Parts perdues non comparées" in rendered)
    if len(seeds) >= 3:
        assert "moins de 3 graines" not in rendered


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


def test_classify_answers_a_new_sentence_with_every_saved_model(full_run):
    """« Essayez cette phrase » à l'oral : `classify` sur les modèles déjà chargés."""
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
    [answer] = ns["classify"](["I am so happy today"])
    assert answer["text"] == "I am so happy today"
    assert list(answer["predictions"]) == DEMO_RUNS  # une réponse par modèle sauvegardé
    for prediction in answer["predictions"].values():
        assert prediction["label"] in names
        assert 1 / len(names) - 1e-4 <= prediction["confidence"] <= 1


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


def test_environment_and_section_times_are_written(full_run):
    environment = full_run["metrics"]["environment"]
    assert {"python", "torch", "transformers", "device", "versions"} <= set(environment)
    assert list(environment["section_seconds"]) == [*SECTIONS, "conclusion"]  # noms en français
    assert all(seconds >= 0 for seconds in environment["section_seconds"].values())
    assert (full_run["figures"] / "section_times.png").exists()


def test_the_executed_notebook_has_no_error_and_no_input_widget(full_run):
    outputs = code_outputs(full_run["executed"])
    assert not [output for output in outputs if output["output_type"] == "error"]
    # hors Colab, aucune zone de saisie ni bouton (les barres de tqdm sont aussi des widgets)
    state = json.loads(full_run["executed"].read_text(encoding="utf-8"))["metadata"]
    models = json.dumps(state.get("widgets", {}))
    assert '"TextModel"' not in models and '"ButtonModel"' not in models
    printed = printed_text(full_run["executed"])
    assert "Traceback" not in printed


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
    pairs = len(full_run["metrics"]["comparisons"])
    # une famille par score, chacune corrigée à part ; puis l'écart dû à la graine
    assert f"**F1 macro** (score principal ; permutation), Holm sur {pairs} paires" in conclusion
    assert f"**Exactitude** (McNemar), Holm sur {pairs} paires" in conclusion
    assert "entraînements qui ne diffèrent que par la graine s'étalent sur" in conclusion
    assert render_again(full_run) == conclusion.removeprefix("### Résultats de cette exécution\n\n")


def render_again(full_run) -> str:
    """La conclusion recalculée depuis metrics.json avec la fonction du notebook."""
    return notebook_namespace()["render_conclusion"](full_run["metrics"])


def test_the_chance_level_and_the_model_readings_use_it(full_run):
    metrics = full_run["metrics"]
    chance = metrics["dataset"]["chance_macro_f1"]
    splits = metrics["dataset"]["splits"]
    prior = pd.Series(splits["train"]["class_counts"]) / splits["train"]["n"]
    share = pd.Series(splits["test"]["class_counts"]) / splits["test"]["n"]
    # au hasard selon le train : précision ≈ part de la classe dans le test, rappel ≈ part prédite
    expected = float((2 * prior * share / (prior + share)).fillna(0).mean())
    assert chance == pytest.approx(expected, abs=0.05)
    rendered = "\n".join(rendered_markdown(executed_cells(full_run["executed"])))
    for name, run in metrics["runs"].items():
        lines = [line for line in rendered.split("\n") if line.startswith(f"- **{name}** ")
                 and ("en F1 macro :" in line or "rien appris" in line)]
        assert len(lines) == (name != "majority_class"), name
        if lines and run["predicted_classes"] > 1:
            assert lines[0].endswith(f"contre {chance:.3f}."), lines[0]


def test_the_per_class_figure_data_matches_the_runs(full_run):
    metrics = full_run["metrics"]
    names = metrics["dataset"]["label_names"]
    table = pd.read_csv(full_run["output"] / "per_class_f1.csv", index_col=0)
    assert list(table.columns) == names and list(table.index) == list(metrics["runs"])
    for run, row in table.iterrows():
        for name in names:
            assert row[name] == pytest.approx(metrics["runs"][run]["per_class"][name]["f1"])
    finetuned = table.loc["encoder_finetuned"]
    weakest = ", ".join(finetuned.index[finetuned == finetuned.min()])
    rendered = "\n".join(rendered_markdown(executed_cells(full_run["executed"])))
    assert f"- **encoder_finetuned** : classe la plus faible : {weakest} (F1" in rendered
    assert "sont les plus faibles de chaque modèle entraîné : " in rendered


def test_the_budget_table_lists_what_differs_in_each_pair(full_run):
    runs = full_run["metrics"]["runs"]
    rendered = "\n".join(rendered_markdown(executed_cells(full_run["executed"])))
    line = next(text for text in rendered.split("\n")
                if text.startswith("- encoder_finetuned / encoder_matched : "))
    full, matched = runs["encoder_finetuned"], runs["encoder_matched"]
    assert f"exemples {full['train_examples']} contre {matched['train_examples']}" in line
    if full["steps"] != matched["steps"]:
        assert f"pas {full['steps']} contre {matched['steps']}" in line
    assert f"réglages {full['candidates']} contre {matched['candidates']}" in line


def test_no_metric_is_typed_by_hand_in_a_markdown_cell(full_run):
    source = executed_cells(full_run["executed"])
    markdown = "\n".join(
        "".join(cell["source"]) for cell in source if cell["cell_type"] == "markdown"
    )
    # exceptions : le coût en bits par poids de la double quantification (une constante de QLoRA),
    # le seuil de 5 % des tests (0,05) et l'écart négligeable des expériences (0,01), qui ne sont
    # pas des scores
    typed = re.findall(r"\b0[.,]\d{2,}\b(?! bits? par poids)", markdown)
    typed = [value for value in typed if value not in ("0,05", "0.05", "0,01")]
    assert not typed, f"score décimal écrit en dur dans une cellule Markdown : {typed}"
    values = set()
    for run in full_run["metrics"]["runs"].values():
        for field in ("accuracy", "macro_f1"):
            value = run[field]
            values |= {f"{value:.3f}", f"{100 * value:.1f} %", f"{100 * value:.1f}%"}
    assert not [value for value in values if value in markdown]
    assert np.isfinite([run["accuracy"] for run in full_run["metrics"]["runs"].values()]).all()
