"""Exécution complète du notebook sur les fixtures : ce qu'il écrit respecte le contrat et se recalcule."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

RUNS = ["majority_class", "tfidf_logreg", "encoder_scratch", "encoder_finetuned", "llm_zero_shot", "llm_qlora"]
TRAINED = ["encoder_scratch", "encoder_finetuned", "llm_qlora"]
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
    "reused",
}
TRAINED_FIELDS = {"history", "best_epoch", "selection_metric", "max_length", "tokens_processed", "examples_per_second"}


def read_predictions(output: Path, run: str) -> pd.DataFrame:
    """Fichier de prédictions d'un modèle, textes gardés tels quels."""
    return pd.read_csv(output / "predictions" / f"{run}.csv", keep_default_na=False)


def executed_cells(path: Path) -> list:
    """Cellules du notebook exécuté."""
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


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
    test = pd.read_csv(full_run["parameters"]["DATA_FILES"]["test"], keep_default_na=False)
    words = test["phrase"][test["phrase"].str.strip() != ""].str.split().str.len()
    assert splits["test"]["mean_words"] == pytest.approx(words.mean(), abs=1e-3)
    assert dataset["languages"]["anglais"] > 0.9


def test_every_run_follows_the_contract(full_run):
    runs = full_run["metrics"]["runs"]
    assert list(runs) == RUNS
    for name, run in runs.items():
        assert RUN_FIELDS <= set(run), (name, RUN_FIELDS - set(run))
        assert run["split"] == "test" and run["reused"] is False
        assert run["n"] == full_run["metrics"]["dataset"]["splits"]["test"]["n"]
        assert run["peak_gpu_memory_bytes"] is None  # pas de CUDA ici
        if name in TRAINED:
            assert TRAINED_FIELDS <= set(run), (name, TRAINED_FIELDS - set(run))
            assert run["trainable_params"] > 0 and run["train_seconds"] > 0 and run["tokens_processed"] > 0
        elif name != "tfidf_logreg":
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
    source = pd.read_csv(full_run["parameters"]["DATA_FILES"]["test"], keep_default_na=False)
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


def test_best_checkpoint_is_chosen_on_validation(full_run):
    for name in ("encoder_scratch", "encoder_finetuned"):
        run = full_run["metrics"]["runs"][name]
        assert len(run["history"]) == full_run["parameters"]["ENCODER_EPOCHS"]
        best = max(run["history"], key=lambda entry: entry["validation_macro_f1"])
        assert run["best_epoch"] == best["epoch"] and run["selection_metric"] == "validation macro_f1"
        for entry in run["history"]:
            assert {"train_loss", "validation_loss", "validation_accuracy", "validation_macro_f1"} <= set(entry)
    qlora = full_run["metrics"]["runs"]["llm_qlora"]
    best = min(qlora["history"], key=lambda entry: entry["validation_loss"])
    assert qlora["best_epoch"] == best["epoch"] and qlora["selection_metric"] == "validation loss"


def test_qlora_trained_only_the_adapters_and_the_loss_went_down(full_run):
    run = full_run["metrics"]["runs"]["llm_qlora"]
    assert run["frozen_tensors_changed"] == 0
    assert run["lora_tensors"] > 0 and run["lora_tensors_changed"] == run["lora_tensors"]
    assert run["trainable_params"] == run["expected_lora_params"]
    assert run["total_params"] > run["trainable_params"]
    losses = [entry["train_loss"] for entry in run["history"] if entry["train_loss"] is not None]
    assert losses[-1] < losses[0]
    validation_losses = [entry["validation_loss"] for entry in run["history"]]
    assert min(validation_losses) < validation_losses[0]
    assert (full_run["output"] / "models" / "llm_qlora" / "adapter_config.json").exists()


def test_ablations_are_recorded_with_their_split(full_run):
    ablations = full_run["metrics"]["ablations"]
    assert {"learning_curve", "length_buckets", "truncation", "class_weights", "llm_zero_shot_calibration"} <= set(
        ablations
    )
    for name, ablation in ablations.items():
        assert ablation["description"] and ablation["split"] in ("validation", "test"), name
        for row in ablation["rows"]:
            assert {"setting", "accuracy", "macro_f1"} <= set(row), name
    curve = ablations["learning_curve"]["rows"]
    sizes = sorted({row["n_train"] for row in curve})
    assert len(sizes) == len(full_run["parameters"]["LEARNING_CURVE_FRACTIONS"]) + 1
    assert all(
        sum(row["n_train"] == size for row in curve) == full_run["parameters"]["ABLATION_SEEDS"] for size in sizes[:-1]
    )
    finetuned = full_run["metrics"]["runs"]["encoder_finetuned"]
    best = next(entry for entry in finetuned["history"] if entry["epoch"] == finetuned["best_epoch"])
    assert curve[-1]["macro_f1"] == pytest.approx(best["validation_macro_f1"], abs=1e-5)  # pas réentraîné
    assert not (full_run["output"] / "checkpoints").exists()  # aucune expérience ne garde ses checkpoints


def test_every_figure_shown_is_saved(full_run):
    shown = sum(
        "image/png" in output.get("data", {})
        for cell in executed_cells(full_run["executed"])
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    )
    saved = sorted(path.name for path in full_run["figures"].glob("*.png"))
    assert shown == len(saved)
    assert {
        "class_balance.png",
        "words_per_class.png",
        "token_lengths.png",
        "encoder_curves.png",
        "comparison.png",
        "learning_curve.png",
        "llm_curves.png",
        "confusion_encoder_finetuned.png",
        "confusion_llm_qlora.png",
    } <= set(saved)


def test_environment_and_comparisons_are_written(full_run):
    metrics = full_run["metrics"]
    assert {"python", "torch", "transformers", "device"} <= set(metrics["environment"])
    assert set(metrics["environment"]["section_seconds"]) >= {"dataset", "encoder", "ablations", "llm", "conclusion"}
    pairs = [tuple(test["pair"]) for test in metrics["comparisons"]]
    assert pairs == [("encoder_finetuned", "llm_qlora"), ("encoder_finetuned", "tfidf_logreg")]
    output = full_run["output"]
    for test in metrics["comparisons"]:
        first, second = (read_predictions(output, name) for name in test["pair"])
        right_first, right_second = first["label"] == first["prediction"], second["label"] == second["prediction"]
        assert test["only_first_correct"] == int((right_first & ~right_second).sum())
        assert test["only_second_correct"] == int((~right_first & right_second).sum())
        assert 0 <= test["p_value"] <= 1


def test_summary_and_conclusion_are_rendered_from_the_run(full_run):
    cells = executed_cells(full_run["executed"])
    rendered = [
        "".join(output["data"]["text/markdown"])
        for cell in cells
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
        if "text/markdown" in output.get("data", {})
    ]
    runs = full_run["metrics"]["runs"]
    summary = next(text for text in rendered if text.startswith("### Résumé des résultats"))
    conclusion = next(text for text in rendered if text.startswith("### Résultats de cette exécution"))
    summary_position = next(i for i, cell in enumerate(cells) if 'display_id="summary"' in "".join(cell["source"]))
    assert summary_position < 10  # le résultat d'abord
    for name in RUNS:
        assert f"{runs[name]['accuracy']:.3f}" in summary
    assert f"{runs['encoder_finetuned']['macro_f1']:.3f}" in conclusion
    assert f"{runs['llm_qlora']['macro_f1']:.3f}" in conclusion


def test_no_metric_is_typed_by_hand_in_a_markdown_cell(full_run):
    source = json.loads(Path(full_run["executed"]).read_text(encoding="utf-8"))["cells"]
    markdown = "\n".join("".join(cell["source"]) for cell in source if cell["cell_type"] == "markdown")
    assert not re.search(r"\b0[.,]\d{2,}", markdown), "un score décimal est écrit en dur dans une cellule Markdown"
    values = set()
    for run in full_run["metrics"]["runs"].values():
        for field in ("accuracy", "macro_f1"):
            values |= {f"{run[field]:.3f}", f"{100 * run[field]:.1f} %", f"{100 * run[field]:.1f}%"}
    assert not [value for value in values if value in markdown]
    assert np.isfinite([run["accuracy"] for run in full_run["metrics"]["runs"].values()]).all()
