"""Les chiffres et les lectures du notebook : chaque verdict vient des nombres, dans chaque sens.

Deux parties :
- les statistiques des comparaisons (section 4.1 et 7) : `record_run`, `bootstrap_ci`,
  `compare_pair` (différences appariées, McNemar exact) et `holm`, vérifiées contre un calcul fait
  à la main sur de petits fichiers de prédictions ;
- les lectures en Markdown (`read_effect`, `read_keyword_masking`, `winners` et `read_pair`,
  `read_model`, `render_conclusion`) : un jeu de chiffres construit à la main par issue possible,
  et le verdict attendu dans le texte.
"""

import json
import re

import numpy as np
import pandas as pd
import pytest
from nbtools import notebook_namespace
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, f1_score

LABELS = ["anger", "hope", "hopelessness", "joy", "sadness"]


@pytest.fixture(scope="module")
def ns():
    """Fonctions du notebook, avec les globales qu'elles lisent."""
    return notebook_namespace(LABEL_NAMES=LABELS, N_LABELS=len(LABELS),
                              LABEL_IDS=list(range(len(LABELS))),
                              LABEL_TO_ID={name: i for i, name in enumerate(LABELS)}, SEED=42)


@pytest.fixture
def stats(ns, tmp_path):
    """Le même espace de noms, avec OUTPUT dans un dossier neuf (prédictions et metrics.json)."""
    (tmp_path / "predictions").mkdir()
    ns["OUTPUT"] = tmp_path
    return ns


# --- Statistiques -------------------------------------------------------------------------------


def write_predictions(folder, name: str, truth, predicted) -> None:
    """Fichier de prédictions au format de record_run (classes données par leur indice)."""
    pd.DataFrame({"text": [f"texte {i}" if i else "NA" for i in range(len(truth))],
                  "label": np.array(LABELS)[truth], "prediction": np.array(LABELS)[predicted],
                  "confidence": 0.5, "id": np.arange(len(truth))}
                 ).to_csv(folder / "predictions" / f"{name}.csv", index=False)


def noisy(truth, rng, correct: float):
    """Prédictions justes avec la probabilité `correct`, tirées au hasard sinon."""
    guesses = rng.integers(0, len(LABELS), len(truth))
    return np.where(rng.random(len(truth)) < correct, truth, guesses)


def test_record_run_scores_the_probabilities_and_writes_the_predictions(stats, tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 120)  # la classe 4 n'est jamais la vraie : F1 macro sur 5 classes
    probabilities = rng.random((120, len(LABELS)))
    probabilities[np.arange(120), truth] += 0.6 * (rng.random(120) < 0.7)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    texts = ["NA", *(f"texte {i}" for i in range(1, 120))]
    stats["frames"] = {"test": pd.DataFrame({"text": texts, "label": truth,
                                             "label_name": np.array(LABELS)[truth],
                                             "id": np.arange(120) + 1000})}
    stats["runs"], stats["metrics"] = {}, {"runs": {}}
    stats["metrics"]["runs"] = stats["runs"]
    stats["record_run"]("model_a", probabilities, model="un modèle", train_seconds=1.5)
    run, predicted = stats["runs"]["model_a"], probabilities.argmax(axis=1)
    assert run["model"] == "un modèle" and run["train_seconds"] == 1.5 and run["n"] == 120
    assert run["accuracy"] == round(accuracy_score(truth, predicted), 5)
    expected_f1 = f1_score(truth, predicted, labels=range(5), average="macro", zero_division=0)
    assert run["macro_f1"] == round(expected_f1, 5)
    assert run["accuracy_ci95"][0] < run["accuracy"] < run["accuracy_ci95"][1]
    assert run["macro_f1_ci95"][0] < run["macro_f1"] < run["macro_f1_ci95"][1]
    assert run["predicted_classes"] == len(set(predicted))
    assert np.array(run["confusion_matrix"]).sum() == 120 and len(run["confusion_matrix"]) == 5
    assert run["per_class"]["hope"]["support"] == int((truth == 1).sum())
    saved = stats["load_predictions"]("model_a")
    assert saved["text"].tolist() == texts  # « NA » reste un texte
    assert saved["prediction"].tolist() == list(np.array(LABELS)[predicted])
    assert saved["id"].tolist() == list(range(1000, 1120))
    assert np.allclose(saved["confidence"], probabilities.max(axis=1), atol=1e-6)
    written = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert written["runs"]["model_a"]["accuracy"] == run["accuracy"]


def test_numeric_class_names_survive_the_prediction_files(tmp_path):
    names = ["0", "1", "2"]
    numeric = notebook_namespace(LABEL_NAMES=names, N_LABELS=3, LABEL_IDS=[0, 1, 2],
                                 LABEL_TO_ID={name: i for i, name in enumerate(names)}, SEED=42,
                                 OUTPUT=tmp_path)
    (tmp_path / "predictions").mkdir()
    truth = np.array([0, 1, 2] * 6)
    numeric["frames"] = {"test": pd.DataFrame({"text": [f"t{i}" for i in range(18)],
                                               "label": truth, "label_name": np.array(names)[truth],
                                               "id": np.arange(18)})}
    numeric["runs"] = {}
    numeric["metrics"] = {"runs": numeric["runs"]}
    numeric["record_run"]("right", np.eye(3)[truth], model="juste")
    numeric["record_run"]("shifted", np.eye(3)[(truth + 1) % 3], model="décalé")
    assert numeric["load_predictions"]("right")["label"].tolist() == list(np.array(names)[truth])
    result = numeric["compare_pair"]("right", "shifted")
    assert (result["only_first_correct"], result["only_second_correct"]) == (18, 0)


def test_bootstrap_ci_is_reproducible_rounded_and_degenerate_for_a_constant(stats):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 5, 200)
    predicted = noisy(truth, rng, 0.6)
    interval = stats["bootstrap_ci"](accuracy_score, truth, predicted)
    assert interval == stats["bootstrap_ci"](accuracy_score, truth, predicted)
    assert all(bound == round(bound, 3) for bound in interval)
    assert interval[0] < accuracy_score(truth, predicted) < interval[1]
    assert stats["bootstrap_ci"](accuracy_score, truth, truth) == [1.0, 1.0]


def test_identical_predictions_give_zero_differences_and_p_value_one(stats, tmp_path):
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 5, 80)
    predicted = noisy(truth, rng, 0.6)
    write_predictions(tmp_path, "a", truth, predicted)
    write_predictions(tmp_path, "b", truth, predicted)
    result = stats["compare_pair"]("a", "b")
    assert result["pair"] == ["a", "b"]
    assert result["only_first_correct"] == result["only_second_correct"] == 0
    assert result["p_value"] == 1.0
    assert result["accuracy_diff"] == 0 and result["macro_f1_diff"] == 0
    assert result["accuracy_diff_ci95"] == [0.0, 0.0] == result["macro_f1_diff_ci95"]


def test_mcnemar_worked_example(stats, tmp_path):
    # 8 exemples que seul le premier réussit, 1 que seul le second réussit, 11 que les deux
    # réussissent :
    # p = 2 × P(X ≤ 1), X ~ Binomiale(9, 1/2) = 2 × (1 + 9) / 2⁹ = 0.0390625
    truth = np.zeros(20, dtype=int)
    first, second = np.zeros(20, dtype=int), np.zeros(20, dtype=int)
    second[:8] = 3  # le second se trompe sur les 8 premiers
    first[8] = 3  # le premier se trompe sur le 9e
    write_predictions(tmp_path, "first", truth, first)
    write_predictions(tmp_path, "second", truth, second)
    result = stats["compare_pair"]("first", "second")
    assert (result["only_first_correct"], result["only_second_correct"]) == (8, 1)
    assert result["p_value"] == pytest.approx(0.0390625, rel=1e-9)
    assert result["accuracy_diff"] == pytest.approx(7 / 20)


def test_mcnemar_counts_and_swapping_the_pair_flips_every_difference(stats, tmp_path):
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 150)
    x, y = noisy(truth, rng, 0.7), noisy(truth, rng, 0.5)
    write_predictions(tmp_path, "x", truth, x)
    write_predictions(tmp_path, "y", truth, y)
    forward = stats["compare_pair"]("x", "y")
    only_x = sum(a == t != b for t, a, b in zip(truth, x, y))
    only_y = sum(b == t != a for t, a, b in zip(truth, x, y))
    assert (forward["only_first_correct"], forward["only_second_correct"]) == (only_x, only_y)
    assert forward["p_value"] == pytest.approx(binomtest(only_x, only_x + only_y).pvalue, rel=1e-12)
    assert forward["accuracy_diff"] == round(np.mean(x == truth) - np.mean(y == truth), 5)
    f1 = [f1_score(truth, p, labels=range(5), average="macro", zero_division=0) for p in (x, y)]
    assert forward["macro_f1_diff"] == round(f1[0] - f1[1], 5)
    backward = stats["compare_pair"]("y", "x")
    assert backward["pair"] == ["y", "x"]
    assert backward["only_first_correct"] == only_y and backward["only_second_correct"] == only_x
    assert backward["p_value"] == pytest.approx(forward["p_value"])
    for name in ("accuracy", "macro_f1"):
        low, high = forward[f"{name}_diff_ci95"]
        assert low <= forward[f"{name}_diff"] <= high
        assert backward[f"{name}_diff"] == -forward[f"{name}_diff"]
        assert backward[f"{name}_diff_ci95"] == [-high, -low]


def test_paired_bootstrap_cancels_what_both_models_share(stats, tmp_path):
    """Mêmes exemples justes, autres erreurs : tout tirage apparié donne une différence
    d'exactitude nulle, donc l'intervalle [0, 0], alors que chaque exactitude varie d'un tirage à
    l'autre (un tirage non apparié donnerait un intervalle large)."""
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 5, 100)
    right = rng.random(100) < 0.6
    x = np.where(right, truth, (truth + 1) % 5)
    y = np.where(right, truth, (truth + 2) % 5)
    write_predictions(tmp_path, "x", truth, x)
    write_predictions(tmp_path, "y", truth, y)
    result = stats["compare_pair"]("x", "y")
    assert result["accuracy_diff_ci95"] == [0.0, 0.0]
    assert result["only_first_correct"] == result["only_second_correct"] == 0
    low, high = stats["bootstrap_ci"](accuracy_score, truth, x)
    assert high - low > 0.1


def test_difference_intervals_match_a_hand_written_paired_bootstrap(stats, tmp_path):
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 5, 300)
    x = noisy(truth, rng, 0.75)
    y = np.where(rng.random(300) < 0.85, x, noisy(truth, rng, 0.5))  # y suit x le plus souvent
    write_predictions(tmp_path, "x", truth, x)
    write_predictions(tmp_path, "y", truth, y)
    low, high = stats["compare_pair"]("x", "y")["accuracy_diff_ci95"]
    correct_x, correct_y = (x == truth).astype(float), (y == truth).astype(float)
    draws = np.random.default_rng(123).integers(0, 300, (4000, 300))  # mêmes indices pour les deux
    paired = (correct_x[draws] - correct_y[draws]).mean(axis=1)
    expected = np.percentile(paired, [2.5, 97.5])
    assert [low, high] == pytest.approx(expected, abs=0.01)
    other = np.random.default_rng(321).integers(0, 300, (4000, 300))  # indices indépendants
    unpaired = correct_x[draws].mean(axis=1) - correct_y[other].mean(axis=1)
    unpaired_width = np.subtract(*np.percentile(unpaired, [97.5, 2.5]))
    assert high - low < 0.75 * unpaired_width  # l'appariement resserre l'intervalle


def test_holm_worked_example(ns):
    # triées : 0.005 × 4 = 0.02, 0.01 × 3 = 0.03, 0.03 × 2 = 0.06, 0.04 × 1 = 0.04 → max cumulé 0.06
    adjusted = ns["holm"]([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert ns["holm"]([0.5, 0.6]) == [1.0, 1.0]  # plafonné à 1
    assert ns["holm"]([0.2]) == [0.2]  # un seul test : rien à corriger
    assert ns["holm"]([]) == []


def reference_holm(p_values: list) -> list:
    """Holm écrit d'après sa définition : max sur j ≤ k de (m − j + 1) p₍ⱼ₎, plafonné à 1."""
    m, order = len(p_values), sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    for k, i in enumerate(order):
        adjusted[i] = min(1.0, max((m - j) * p_values[order[j]] for j in range(k + 1)))
    return adjusted


def test_holm_is_monotone_capped_and_never_below_the_raw_p_values(ns):
    rng = np.random.default_rng(7)
    for size in (2, 3, 7, 12):
        p_values = list(rng.random(size) ** 3)
        adjusted = ns["holm"](p_values)
        assert adjusted == pytest.approx(reference_holm(p_values))
        assert all(a >= p for a, p in zip(adjusted, p_values)) and max(adjusted) <= 1.0
        ranked = [adjusted[i] for i in np.argsort(p_values)]
        assert ranked == sorted(ranked)  # l'ordre des p-valeurs est conservé


# --- Lectures : expériences (section 5) ---------------------------------------------------------


def test_read_effect_detected_upwards(ns):
    text = ns["read_effect"]("de 100 à 200 exemples", [0.60, 0.62, 0.61], [0.70, 0.71, 0.72])
    assert "effet **détecté**" in text and "non détecté" not in text
    assert "0.610 → 0.710" in text and "+0.100" in text and "écart entre graines 0.020" in text
    assert text.startswith("- de 100 à 200 exemples : F1 macro")


def test_read_effect_detected_downwards(ns):
    text = ns["read_effect"]("sans mots-clés", [0.60, 0.62, 0.61], [0.50, 0.51, 0.52])
    assert "effet **détecté**" in text and "-0.100" in text


def test_read_effect_not_detected_within_the_seed_spread(ns):
    text = ns["read_effect"]("changement", [0.60, 0.62, 0.61], [0.60, 0.64, 0.62], "exactitude")
    assert "effet non détecté" in text and "**détecté**" not in text
    assert "exactitude" in text and "+0.010" in text and "écart entre graines 0.040" in text
    # un écart des moyennes exactement égal à l'écart entre graines n'est pas « au-delà »
    edge = ns["read_effect"]("au bord", [0.5, 0.75], [0.75, 1.0])
    assert "effet non détecté" in edge


def test_read_effect_does_not_judge_a_single_seed(ns):
    text = ns["read_effect"]("une graine", [0.60], [0.90])
    assert "une seule graine : effet non jugé" in text and "détecté" not in text
    assert "+0.300" in text


def test_read_keyword_masking_encoder_more_robust(ns):
    text = ns["read_keyword_masking"]([0.20] * 3, [0.05, 0.06, 0.07])
    assert "l'encodeur est **plus robuste**" in text and "TF-IDF est" not in text
    assert "baisse de 0.200 pour le TF-IDF et de 0.060 pour l'encodeur" in text
    assert "écart entre graines des baisses : 0.020" in text


def test_read_keyword_masking_tfidf_more_robust(ns):
    text = ns["read_keyword_masking"]([0.02] * 3, [0.15, 0.16, 0.17])
    assert "le TF-IDF est **plus robuste**" in text and "l'encodeur est" not in text


def test_read_keyword_masking_not_detected(ns):
    text = ns["read_keyword_masking"]([0.10] * 3, [0.05, 0.10, 0.15])
    assert "différence non détectée" in text and "plus robuste" not in text


def test_read_keyword_masking_does_not_judge_a_single_seed(ns):
    text = ns["read_keyword_masking"]([0.20], [0.05])
    assert "une seule graine : différence non jugée" in text and "plus robuste" not in text


# --- Lectures : les paires déclarées (section 7) ------------------------------------------------


def comparison(accuracy_diff: float, p_holm: float, f1_ci: tuple,
               pair=("encoder_finetuned", "tfidf_logreg")) -> dict:
    """Résultat de compare_pair, complété de la p-valeur de Holm, construit à la main."""
    return {"pair": list(pair), "only_first_correct": 10, "only_second_correct": 3,
            "p_value": p_holm / 2, "p_value_holm": p_holm, "accuracy_diff": accuracy_diff,
            "accuracy_diff_ci95": [round(accuracy_diff - 0.02, 3), round(accuracy_diff + 0.02, 3)],
            "macro_f1_diff": round((f1_ci[0] + f1_ci[1]) / 2, 3), "macro_f1_diff_ci95": list(f1_ci)}


def verdicts(text: str) -> dict:
    """Verdict écrit pour chaque score : le modèle nommé, ou None si non détectée."""
    found = {}
    for score in ("exactitude", "F1 macro"):
        match = re.search(score + r" : différence (?:\*\*détectée\*\*, en faveur de (\w+)|non dé)",
                          text)
        assert match, f"pas de verdict pour {score} dans : {text}"
        found[score] = match.group(1)
    return found


@pytest.mark.parametrize("accuracy_diff, p_holm, f1_ci, expected", [
    (0.05, 0.01, (-0.01, 0.03), ("encoder_finetuned", None)),  # exactitude, au premier
    (-0.05, 0.01, (-0.03, 0.01), ("tfidf_logreg", None)),  # exactitude, au second
    (0.01, 0.40, (0.01, 0.05), (None, "encoder_finetuned")),  # F1 macro : intervalle > 0
    (-0.01, 0.40, (-0.05, -0.01), (None, "tfidf_logreg")),  # F1 macro : intervalle < 0
    (0.06, 0.001, (0.02, 0.08), ("encoder_finetuned", "encoder_finetuned")),
    (0.02, 0.05, (0.0, 0.04), (None, None)),  # p = 0,05 et borne à 0 : rien n'est détecté
    (0.01, 0.30, (-0.02, 0.04), (None, None)),
])
def test_winners_and_read_pair_follow_the_reading_rule(ns, accuracy_diff, p_holm, f1_ci, expected):
    test = comparison(accuracy_diff, p_holm, f1_ci)
    assert ns["winners"](test) == dict(zip(("exactitude", "F1 macro"), expected))
    text = ns["read_pair"](test)
    assert verdicts(text) == dict(zip(("exactitude", "F1 macro"), expected))
    assert text.startswith("- **encoder_finetuned** − **tfidf_logreg** : exactitude ")
    assert f"(p de Holm {p_holm:.2g})" in text and "(non ajusté)" in text
    assert f"exactitude {accuracy_diff:+.3f}" in text and f"{list(f1_ci)}" in text
    for word in ("équivalent", "égaux", "se valent", "identiques"):
        assert word not in text
    assert "matched_curves" not in text


def test_read_pair_explains_a_matched_encoder_that_beats_the_full_train(ns):
    pair = ("encoder_finetuned", "encoder_matched")
    matched_wins = ns["read_pair"](comparison(-0.04, 0.01, (-0.05, -0.01), pair))
    assert "en faveur de encoder_matched" in matched_wins
    assert "sous-entraîné ou mal réglé" in matched_wins and "matched_curves" in matched_wins
    only_f1 = ns["read_pair"](comparison(-0.01, 0.5, (-0.05, -0.01), pair))
    assert "matched_curves" in only_f1
    for test in (comparison(0.04, 0.01, (0.01, 0.05), pair), comparison(-0.01, 0.5, (-0.05, 0.01),
                                                                         pair)):
        assert "matched_curves" not in ns["read_pair"](test)  # complet en tête, ou rien détecté


# --- Lectures : chaque modèle contre la classe majoritaire --------------------------------------


MAJORITY = {"macro_f1": 0.12}


def model_run(low: float, high: float, classes: int = 5) -> dict:
    """Un modèle décrit par son intervalle de F1 macro et son nombre de classes prédites."""
    return {"macro_f1": (low + high) / 2, "macro_f1_ci95": [low, high],
            "predicted_classes": classes}


def test_read_model_collapsed_models_learnt_nothing(ns):
    scratch = ns["read_model"]("encoder_scratch", model_run(0.05, 0.07, classes=1), MAJORITY)
    assert "rien appris" in scratch and "poids aléatoires" in scratch
    assert "classe majoritaire" not in scratch
    tuned = ns["read_model"]("encoder_finetuned", model_run(0.05, 0.07, classes=1), MAJORITY)
    assert "rien appris" in tuned and "poids aléatoires" not in tuned and "à revoir" in tuned
    assert tuned.startswith("- **encoder_finetuned**")


@pytest.mark.parametrize("name, low, high, verdict", [
    ("encoder_scratch", 0.05, 0.10, "fait **moins bien** que"),
    ("llm_zero_shot", 0.04, 0.09, "fait **moins bien** que"),  # zéro-shot sous la majorité
    ("encoder_lora", 0.10, 0.20, "ne se distingue pas de"),
    ("encoder_lora", 0.05, 0.12, "ne se distingue pas de"),  # borne haute au niveau
    ("encoder_lora", 0.12, 0.30, "ne se distingue pas de"),  # borne basse au niveau
    ("encoder_finetuned", 0.20, 0.30, "fait **mieux** que"),
])
def test_read_model_compares_the_interval_to_the_majority(ns, name, low, high, verdict):
    text = ns["read_model"](name, model_run(low, high), MAJORITY)
    assert f"**{name}** {verdict} la classe majoritaire en F1 macro" in text
    assert f"[{low:.3f}, {high:.3f}] contre 0.120" in text
    others = {"fait **moins bien** que", "ne se distingue pas de", "fait **mieux** que"} - {verdict}
    assert not any(other in text for other in others) and "rien appris" not in text


# --- Conclusion ---------------------------------------------------------------------------------


def conclusion_metrics(with_llm: bool) -> dict:
    """metrics minimal : quatre modèles (six avec le LLM) et deux ou trois paires déclarées."""
    runs = {  # l'ordre des exactitudes n'est pas celui des F1 macro
        "majority_class": {"macro_f1": 0.10, "macro_f1_ci95": [0.09, 0.11], "accuracy": 0.35},
        "tfidf_logreg": {"macro_f1": 0.55, "macro_f1_ci95": [0.5, 0.6], "accuracy": 0.90},
        "encoder_finetuned": {"macro_f1": 0.80, "macro_f1_ci95": [0.75, 0.85], "accuracy": 0.85},
        "encoder_scratch": {"macro_f1": 0.20, "macro_f1_ci95": [0.15, 0.25], "accuracy": 0.40},
    }
    comparisons = [
        comparison(0.45, 0.001, (0.55, 0.65), ("encoder_finetuned", "encoder_scratch")),
        comparison(-0.05, 0.20, (0.20, 0.30), ("encoder_finetuned", "tfidf_logreg")),
    ]
    if with_llm:
        runs["llm_zero_shot"] = {"macro_f1": 0.15, "macro_f1_ci95": [0.1, 0.2], "accuracy": 0.3}
        runs["llm_qlora"] = {"macro_f1": 0.70, "macro_f1_ci95": [0.65, 0.75], "accuracy": 0.8}
        comparisons.append(comparison(0.01, 0.9, (-0.02, 0.03), ("llm_qlora", "llm_zero_shot")))
    return {"runs": runs, "comparisons": comparisons}


def test_render_conclusion_ranks_by_macro_f1_and_sorts_the_pairs(ns):
    text = ns["render_conclusion"](conclusion_metrics(with_llm=True))
    assert text.startswith("### Résultats de cette exécution")
    ranking = re.findall(r"^(\d+)\. (\w+) : F1 macro ([\d.]+)", text, re.M)
    assert [name for _, name, _ in ranking] == ["encoder_finetuned", "llm_qlora", "tfidf_logreg",
                                                "encoder_scratch", "llm_zero_shot",
                                                "majority_class"]
    assert [int(i) for i, _, _ in ranking] == list(range(1, 7))
    assert "1. encoder_finetuned : F1 macro 0.800 [0.75, 0.85], exactitude 0.850" in text
    detected, not_detected = text.split("**Non détectées**")
    assert ("encoder_finetuned / encoder_scratch (exactitude : encoder_finetuned, "
            "F1 macro : encoder_finetuned)") in detected
    assert "encoder_finetuned / tfidf_logreg (F1 macro : encoder_finetuned)" in detected
    assert "llm_qlora / llm_zero_shot" in not_detected and "llm_qlora" not in detected.split(
        "**Différences détectées**")[1]
    assert "ne veut pas dire que les modèles se valent" in not_detected
    assert "n'a pas tourné" not in text


def test_render_conclusion_without_the_llm_says_so(ns):
    metrics = conclusion_metrics(with_llm=False)
    text = ns["render_conclusion"](metrics)
    assert "La section du LLM n'a pas tourné" in text and "aucune conclusion sur TinyLlama" in text
    assert "**Non détectées** (ce qui ne veut pas dire que les modèles se valent) : aucune." in text
    for test in metrics["comparisons"]:
        test.update(p_value_holm=0.5, macro_f1_diff_ci95=[-0.1, 0.1])
    nothing = ns["render_conclusion"](metrics)
    assert "**Différences détectées** : aucune." in nothing
    assert "encoder_finetuned / encoder_scratch; encoder_finetuned / tfidf_logreg." in nothing
