"""Exécution complète du notebook sur les fixtures : ce qu'il écrit respecte le contrat et se recalcule."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import RUNS
from nbtools import notebook_namespace
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from transformers import pipeline

ENCODERS = ["encoder_scratch", "encoder_finetuned", "encoder_lora", "encoder_matched"]
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
}
TRAINED_FIELDS = {"history", "best_epoch", "selection_metric", "max_length", "tokens_processed", "examples_per_second"}
SCORING_VARIANTS = [
    f"{ending}/{aggregation}/{calibration}"
    for ending in ("label+eos", "label", "label+newline")
    for aggregation in ("sum", "mean")
    for calibration in ("raw", "calibrated")
]
DECLARED_PAIRS = [
    ("encoder_finetuned", "tfidf_logreg"),
    ("encoder_finetuned", "encoder_lora"),
    ("encoder_matched", "llm_qlora"),
    ("llm_qlora", "llm_zero_shot"),
]
FIGURES = {
    "class_balance",
    "words_per_class",
    "token_lengths",
    "encoder_curves",
    "confusion_encoder_scratch",
    "confusion_encoder_finetuned",
    "learning_curve",
    "train_length",
    "keyword_masking",
    "class_weights",
    "llm_curves",
    "confusion_llm_qlora",
    "comparison",
}
DEMO_RUNS = ["tfidf_logreg", "encoder_finetuned", "encoder_lora", "llm_qlora"]
RESULT_FIELDS = ("seed", "n_train", "steps", "accuracy", "macro_f1")


def read_predictions(output: Path, run: str) -> pd.DataFrame:
    """Fichier de prédictions d'un modèle, textes gardés tels quels."""
    return pd.read_csv(output / "predictions" / f"{run}.csv", keep_default_na=False)


def read_source(full_run, split: str) -> pd.DataFrame:
    """CSV d'origine d'un split (colonnes phrase, emotion)."""
    return pd.read_csv(full_run["parameters"]["DATA_FILES"][split], keep_default_na=False)


def executed_cells(path: Path) -> list:
    """Cellules du notebook exécuté."""
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


@pytest.fixture(scope="module")
def defaults() -> dict:
    """Valeurs par défaut de la cellule de paramètres (celles que l'exécution complète ne remplace pas)."""
    return notebook_namespace()


def parameter(full_run, defaults, name):
    """Valeur d'un paramètre dans l'exécution complète."""
    return full_run["parameters"].get(name, defaults[name])


def test_dataset_block_matches_the_known_answers(full_run, facts):
    dataset = full_run["metrics"]["dataset"]
    assert dataset["label_names"] == facts["labels"]
    assert dataset["dropped"]["empty_text"] == sum(facts["blank_texts"].values())
    assert dataset["dropped"]["train_test_duplicates"] == facts["train_texts_in_test"]
    splits = dataset["splits"]
    assert set(splits) == {"train", "validation", "test"}
    assert splits["train"]["n_raw"] == facts["n_rows"]["train"] and splits["test"]["n_raw"] == facts["n_rows"]["test"]
    assert splits["test"]["n"] == facts["n_test_clean"]
    assert splits["train"]["empty_text"] == facts["blank_texts"]["train"]
    # la validation est découpée dans le train nettoyé : ensemble, ils rendent les lignes gardées du train
    kept_train = facts["n_rows"]["train"] - facts["blank_texts"]["train"] - facts["train_texts_in_test"]
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
    assert dataset["languages"]["anglais"] > 0.9


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
            assert run["trainable_params"] > 0 and run["train_seconds"] > 0 and run["tokens_processed"] > 0
            assert run["examples_per_second"] > 0 and run["max_length"] > 0
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
    assert stored["accuracy"] == pytest.approx((truth == predicted).mean(), abs=1e-5)
    macro = f1_score(truth, predicted, labels=names, average="macro", zero_division=0)
    assert stored["macro_f1"] == pytest.approx(macro, abs=1e-5)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=names, zero_division=0)
    for i, name in enumerate(names):
        assert stored["per_class"][name]["recall"] == pytest.approx(recall[i], abs=1e-5)
        assert stored["per_class"][name]["precision"] == pytest.approx(precision[i], abs=1e-5)
        assert stored["per_class"][name]["f1"] == pytest.approx(f1[i], abs=1e-5)
        assert stored["per_class"][name]["support"] == support[i]
    assert stored["confusion_matrix"] == confusion_matrix(truth, predicted, labels=names).tolist()
    for field in ("accuracy", "macro_f1"):
        low, high = stored[f"{field}_ci95"]
        assert 0 <= low <= stored[field] + 1e-9 and stored[field] - 1e-9 <= high <= 1
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


def test_histories_start_before_training_and_the_best_point_is_chosen_on_validation(full_run):
    runs = full_run["metrics"]["runs"]
    epochs = full_run["parameters"]["ENCODER_EPOCHS"]
    for name in [*ENCODERS, "llm_qlora"]:
        run = runs[name]
        history = run["history"]
        assert history[0]["step"] == 0 and history[0]["epoch"] == 0 and history[0]["train_loss"] is None, name
        assert all(entry["step"] > 0 and entry["train_loss"] is not None for entry in history[1:]), name
        assert [entry["step"] for entry in history] == sorted({entry["step"] for entry in history}), name
        for entry in history:
            assert {"train_loss", "validation_loss", "validation_accuracy", "validation_macro_f1"} <= set(entry), name
        trained = history[1:]
        chosen = [entry for entry in trained if entry["epoch"] == run["best_epoch"]]
        assert len(chosen) == 1, name  # le point retenu est une évaluation après entraînement, jamais le pas 0
        if name == "llm_qlora":
            assert len(history) == 1 + 4  # pas 0, puis 4 évaluations
            assert run["selection_metric"] == "validation loss"
            assert chosen[0]["validation_loss"] == min(entry["validation_loss"] for entry in trained)
        else:
            assert len(history) == epochs + 1, name  # pas 0, puis une évaluation par époque
            assert run["selection_metric"] == "validation macro_f1"
            assert chosen[0]["validation_macro_f1"] == max(entry["validation_macro_f1"] for entry in trained)


def test_encoder_lora_trains_a_small_share_and_its_rate_is_chosen_on_validation(full_run, defaults):
    run = full_run["metrics"]["runs"]["encoder_lora"]
    finetuned = full_run["metrics"]["runs"]["encoder_finetuned"]
    assert 0 < run["trainable_params"] / run["total_params"] < 0.05
    assert run["trainable_params"] < finetuned["trainable_params"]
    assert run["lora_targets"] == ["q_lin", "v_lin"]  # DistilBERT
    rates = parameter(full_run, defaults, "ENCODER_LORA_LRS")
    assert run["learning_rate"] in rates
    by_lr = run["validation_macro_f1_by_lr"]
    assert set(by_lr) == {str(lr) for lr in rates}
    assert by_lr[str(run["learning_rate"])] == max(by_lr.values())
    assert (full_run["output"] / "models" / "encoder_lora" / "config.json").exists()


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
    assert not set(source.iloc[matched["train_ids"]]["phrase"]) & test_texts  # des lignes du train, jamais du test


def test_zero_shot_scoring_is_chosen_on_validation_and_few_shot_reuses_it(full_run, facts):
    runs = full_run["metrics"]["runs"]
    zero, few = runs["llm_zero_shot"], runs["llm_few_shot"]
    by_scoring = zero["validation_by_scoring"]
    assert list(by_scoring) == SCORING_VARIANTS
    best = max(score["macro_f1"] for score in by_scoring.values())
    assert zero["scoring"] == next(variant for variant, score in by_scoring.items() if score["macro_f1"] == best)
    assert few["scoring"] == zero["scoring"]
    examples = few["examples"]
    assert [example["label"] for example in examples] == facts["labels"]  # un exemple par classe
    source = read_source(full_run, "train")
    for example in examples:
        row = source.iloc[example["id"]]
        assert row["phrase"] == example["text"] and row["emotion"] == example["label"]
    test_texts = set(read_predictions(full_run["output"], "llm_few_shot")["text"])
    assert not {example["text"] for example in examples} & test_texts


def test_qlora_trained_the_adapters_and_the_losses_went_down(full_run):
    run = full_run["metrics"]["runs"]["llm_qlora"]
    assert run["lora_tensors"] > 0 and run["lora_tensors_changed"] == run["lora_tensors"]
    assert run["trainable_params"] == run["expected_lora_params"]
    assert run["total_params"] > run["trainable_params"]
    losses = [entry["train_loss"] for entry in run["history"] if entry["train_loss"] is not None]
    assert losses[-1] < losses[0]
    validation_losses = [entry["validation_loss"] for entry in run["history"]]
    assert min(validation_losses[1:]) < validation_losses[0]
    assert (full_run["output"] / "models" / "llm_qlora" / "adapter_config.json").exists()


def test_comparisons_are_the_declared_pairs_recomputed_from_the_predictions(full_run):
    metrics = full_run["metrics"]
    pairs = [tuple(test["pair"]) for test in metrics["comparisons"]]
    assert pairs == DECLARED_PAIRS
    output = full_run["output"]
    for test in metrics["comparisons"]:
        first, second = (read_predictions(output, name) for name in test["pair"])
        right_first, right_second = first["label"] == first["prediction"], second["label"] == second["prediction"]
        assert test["only_first_correct"] == int((right_first & ~right_second).sum())
        assert test["only_second_correct"] == int((~right_first & right_second).sum())
        assert 0 <= test["p_value"] <= 1


def reference_rows(ablations: dict, encoder_max_length: int, n_reference: int) -> dict:
    """Lignes du réglage de référence dans chacune des quatre expériences, rangées par graine."""
    chosen = {
        "learning_curve": lambda row: row["n_train"] == n_reference,
        "train_length": lambda row: row["max_length"] == encoder_max_length,
        "keyword_masking": lambda row: row["model"] == "encoder" and not row["masked"],
        "class_weights": lambda row: not row["weighted"],
    }
    return {name: {row["seed"]: row for row in ablations[name]["rows"] if keep(row)} for name, keep in chosen.items()}


def test_ablations_follow_the_fixed_recipe_and_share_one_reference(full_run, defaults):
    metrics = full_run["metrics"]
    ablations = metrics["ablations"]
    assert set(ablations) == {"learning_curve", "train_length", "keyword_masking", "class_weights"}
    seed = parameter(full_run, defaults, "SEED")
    seeds = [seed + offset for offset in range(parameter(full_run, defaults, "ABLATION_SEEDS"))]
    for name, ablation in ablations.items():
        assert ablation["description"] and ablation["split"] == "validation", name
        for row in ablation["rows"]:
            assert {"setting", "seed", "accuracy", "macro_f1"} <= set(row), name
            assert 0 <= row["accuracy"] <= 1 and 0 <= row["macro_f1"] <= 1, name

    n_reference = min(
        parameter(full_run, defaults, "ABLATION_TRAIN_EXAMPLES"), metrics["dataset"]["splits"]["train"]["n"]
    )
    curve = ablations["learning_curve"]["rows"]
    fractions = parameter(full_run, defaults, "LEARNING_CURVE_FRACTIONS")
    n_labels = len(metrics["dataset"]["label_names"])
    expected_sizes = {
        max(4 * n_labels, round(n_reference * f)) for f in fractions if round(n_reference * f) < n_reference
    }
    assert sorted({row["n_train"] for row in curve}) == sorted(expected_sizes | {n_reference})
    for size in expected_sizes | {n_reference}:
        assert sorted(row["seed"] for row in curve if row["n_train"] == size) == seeds, size

    encoder_max_length = metrics["dataset"]["tokens"]["encoder_max_length"]
    lengths = ablations["train_length"]["rows"]
    expected_lengths = {n for n in parameter(full_run, defaults, "TRAIN_LENGTHS") if n < encoder_max_length}
    assert expected_lengths and {row["max_length"] for row in lengths} == expected_lengths | {encoder_max_length}
    for length in expected_lengths | {encoder_max_length}:
        assert sorted(row["seed"] for row in lengths if row["max_length"] == length) == seeds, length

    masking = ablations["keyword_masking"]
    assert {row["model"] for row in masking["rows"]} == {"tfidf_logreg", "encoder"}
    assert all(isinstance(row["masked"], bool) for row in masking["rows"])
    for masked in (False, True):
        assert sorted(r["seed"] for r in masking["rows"] if r["model"] == "encoder" and r["masked"] == masked) == seeds
        assert any(r["model"] == "tfidf_logreg" and r["masked"] == masked for r in masking["rows"])
    keywords = masking["keywords"]
    assert list(keywords) == metrics["dataset"]["label_names"]
    per_class = parameter(full_run, defaults, "KEYWORDS_PER_CLASS")
    train_text = " ".join(read_source(full_run, "train")["phrase"]).lower()
    for words in keywords.values():
        assert len(words) == per_class and all(" " not in word and word in train_text for word in words)

    weights = ablations["class_weights"]
    counts = metrics["dataset"]["splits"]["train"]["class_counts"]
    rarest = min(counts, key=counts.get)
    assert {row["weighted"] for row in weights["rows"]} == {False, True}
    assert all(isinstance(row[f"recall_{rarest}"], float | int) for row in weights["rows"])
    assert sorted(r["seed"] for r in weights["rows"] if r["weighted"]) == seeds
    assert list(weights["weights"]) == metrics["dataset"]["label_names"]
    assert weights["weights"][rarest] == max(weights["weights"].values())

    # le réglage de référence n'est entraîné qu'une fois : les quatre expériences en partagent les mêmes lignes
    shared = reference_rows(ablations, encoder_max_length, n_reference)
    for name, rows in shared.items():
        assert sorted(rows) == seeds, name
    for seed_value in seeds:
        values = {name: tuple(rows[seed_value][field] for field in RESULT_FIELDS) for name, rows in shared.items()}
        assert len(set(values.values())) == 1, values
        assert (
            shared["learning_curve"][seed_value][f"recall_{rarest}"]
            == shared["class_weights"][seed_value][f"recall_{rarest}"]
        )
    assert not (full_run["output"] / "checkpoints").exists()  # aucun entraînement ne garde ses checkpoints


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
            assert prediction["confidence"] >= 1 / len(labels) - 1e-4, run  # la classe prédite est la plus probable


def test_saved_models_reload_and_reproduce_the_demo(full_run):
    """La section 8 lancée seule (tools/try_sentences.py, nouvel espace de noms) redonne le bloc `demo`."""
    from try_sentences import predict

    metrics = full_run["metrics"]
    texts = [row["text"] for row in metrics["demo"]]
    again = predict(Path(full_run["output"]), texts, with_llm=True)  # LLM minuscule rechargé sur CPU
    assert [row["text"] for row in again] == texts
    for fresh, stored in zip(again, metrics["demo"]):
        assert list(fresh["predictions"]) == DEMO_RUNS
        for run, prediction in fresh["predictions"].items():
            assert prediction["label"] == stored["predictions"][run]["label"], (fresh["text"], run)
            assert prediction["confidence"] == pytest.approx(stored["predictions"][run]["confidence"], abs=2e-3)


def test_saved_models_are_the_evaluated_ones(full_run):
    """Les modèles de OUTPUT_DIR/models, relus, redonnent les prédictions de test enregistrées."""
    names = full_run["metrics"]["dataset"]["label_names"]
    ns = notebook_namespace(LABEL_NAMES=names, N_LABELS=len(names))
    models = Path(full_run["output"]) / "models"
    expected = read_predictions(full_run["output"], "tfidf_logreg")
    probabilities = ns["tfidf_probabilities"](ns["joblib"].load(models / "tfidf_logreg.joblib"), expected["text"])
    assert [names[i] for i in probabilities.argmax(axis=1)] == expected["prediction"].tolist()
    np.testing.assert_allclose(probabilities.max(axis=1), expected["confidence"], atol=1e-5)
    for run in ("encoder_finetuned", "encoder_lora"):
        expected = read_predictions(full_run["output"], run)
        classify = pipeline("text-classification", model=str(models / run), device=-1)
        outputs = classify(expected["text"].tolist())
        assert [output["label"] for output in outputs] == expected["prediction"].tolist(), run
        np.testing.assert_allclose([output["score"] for output in outputs], expected["confidence"], atol=1e-3)


def test_every_figure_shown_is_saved(full_run):
    shown = sum(
        "image/png" in output.get("data", {})
        for cell in executed_cells(full_run["executed"])
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    )
    saved = sorted(path.name for path in full_run["figures"].glob("*.png"))
    assert shown == len(saved)
    assert set(saved) == {f"{name}.png" for name in FIGURES}


def test_environment_is_written(full_run):
    metrics = full_run["metrics"]
    assert {"python", "torch", "transformers", "device", "versions"} <= set(metrics["environment"])
    assert set(metrics["environment"]["section_seconds"]) >= {"dataset", "encoder", "ablations", "llm", "conclusion"}


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
    conclusion = next(text for text in rendered if text.startswith("### Résultats de cette exécution"))
    assert len(summaries) == 1
    summary = summaries[0]
    summary_position = next(i for i, cell in enumerate(cells) if 'display_id="summary"' in "".join(cell["source"]))
    assert summary_position < 10  # le résultat d'abord
    shown_there = rendered_markdown([cells[summary_position]])
    assert shown_there == [summary]  # le résumé remplace l'attente, en haut du notebook
    assert not any("Exécution en cours" in text for text in rendered)
    for name in RUNS:
        assert f"{runs[name]['accuracy']:.3f}" in summary and name in summary
    assert f"{runs['encoder_finetuned']['macro_f1']:.3f}" in conclusion
    assert f"{runs['llm_qlora']['macro_f1']:.3f}" in conclusion
    assert f"{runs['encoder_matched']['macro_f1']:.3f}" in conclusion


def test_no_metric_is_typed_by_hand_in_a_markdown_cell(full_run):
    source = executed_cells(full_run["executed"])
    markdown = "\n".join("".join(cell["source"]) for cell in source if cell["cell_type"] == "markdown")
    # seule exception : le coût en bits par poids de la double quantification (une constante de QLoRA, pas un score)
    typed = re.findall(r"\b0[.,]\d{2,}\b(?! bits? par poids)", markdown)
    assert not typed, f"score décimal écrit en dur dans une cellule Markdown : {typed}"
    values = set()
    for run in full_run["metrics"]["runs"].values():
        for field in ("accuracy", "macro_f1"):
            values |= {f"{run[field]:.3f}", f"{100 * run[field]:.1f} %", f"{100 * run[field]:.1f}%"}
    assert not [value for value in values if value in markdown]
    assert np.isfinite([run["accuracy"] for run in full_run["metrics"]["runs"].values()]).all()
