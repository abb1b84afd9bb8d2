"""Les chiffres et les lectures du notebook : chaque verdict vient des nombres, dans chaque sens.

Deux parties :
- les statistiques des comparaisons (section 4.1 et 7) : `record_run`, `bootstrap_ci`,
  `compare_pair` (différences appariées, McNemar exact, permutation appariée du F1 macro) et
  `holm`, vérifiées contre un calcul fait à la main sur de petits fichiers de prédictions ;
- les lectures en Markdown (`read_effect`, `read_keyword_masking`, `read_pair`, `read_model`,
  `read_per_class`, `render_conclusion`) : un jeu de chiffres construit à la main par issue
  possible, et le verdict attendu dans le texte.
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


def test_macro_f1_permutation_p_value_matches_a_hand_written_paired_permutation(stats, tmp_path):
    """Sous H0, échanger les deux prédictions d'un exemple ne change rien : la p-valeur est la part
    des échanges aléatoires (exemple par exemple) qui donnent un écart de F1 macro au moins aussi
    grand que l'écart observé, (compte + 1) / (tirages + 1) comme dans scipy."""
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 5, 150)
    x = noisy(truth, rng, 0.7)
    y = np.where(rng.random(150) < 0.8, x, noisy(truth, rng, 0.45))
    write_predictions(tmp_path, "x", truth, x)
    write_predictions(tmp_path, "y", truth, y)
    result = stats["compare_pair"]("x", "y")

    def gap(u, v):
        return (f1_score(truth, u, labels=range(5), average="macro", zero_division=0)
                - f1_score(truth, v, labels=range(5), average="macro", zero_division=0))

    observed, draws = gap(x, y), np.random.default_rng(99)
    swapped = [draws.random(150) < 0.5 for _ in range(2000)]
    null = np.array([gap(np.where(s, y, x), np.where(s, x, y)) for s in swapped])
    expected = (np.sum(np.abs(null) >= abs(observed) - 1e-12) + 1) / (2000 + 1)
    assert result["macro_f1_p_value"] == pytest.approx(expected, abs=0.03)
    assert 0 < result["macro_f1_p_value"] <= 1


def test_macro_f1_permutation_p_value_is_one_for_identical_and_small_for_a_clear_gap(stats,
                                                                                     tmp_path):
    rng = np.random.default_rng(12)
    truth = rng.integers(0, 5, 200)
    good, bad = noisy(truth, rng, 0.95), noisy(truth, rng, 0.3)
    for name, predicted in (("good", good), ("copy", good), ("bad", bad)):
        write_predictions(tmp_path, name, truth, predicted)
    assert stats["compare_pair"]("good", "copy")["macro_f1_p_value"] == 1.0
    clear = stats["compare_pair"]("good", "bad")
    assert clear["macro_f1_p_value"] < 0.001 and clear["macro_f1_diff"] > 0.4
    assert clear["macro_f1_p_value"] == stats["compare_pair"]("good", "bad")["macro_f1_p_value"]


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


def test_read_effect_indicates_an_effect_beyond_the_seed_spread(ns):
    text = ns["read_effect"]("de 100 à 200 exemples", [0.60, 0.62, 0.61], [0.70, 0.71, 0.72])
    assert "**indication d'un effet**" in text and "pas d'effet" not in text
    assert "0.610 → 0.710" in text and "+0.100" in text and "écart entre graines 0.020" in text
    assert "['0.600', '0.620', '0.610'] → ['0.700', '0.710', '0.720']" in text  # chaque graine
    assert text.startswith("- de 100 à 200 exemples : F1 macro")
    down = ns["read_effect"]("sans mots-clés", [0.60, 0.62, 0.61], [0.50, 0.51, 0.52])
    assert "**indication d'un effet**" in down and "-0.100" in down


def test_read_effect_no_effect_within_the_seed_spread(ns):
    text = ns["read_effect"]("changement", [0.60, 0.62, 0.61], [0.60, 0.64, 0.62])
    assert "pas d'effet indiqué" in text and "indication" not in text
    assert "+0.010" in text and "écart entre graines 0.040" in text
    # un écart des moyennes égal à l'écart entre graines n'est pas « au-delà »
    edge = ns["read_effect"]("au bord", [0.5, 0.6, 0.75], [0.75, 0.85, 1.0])
    assert "pas d'effet indiqué" in edge


def test_read_effect_calls_a_tiny_gap_negligible_even_with_identical_seeds(ns):
    # +0.001 avec des graines presque identiques : au-delà de l'écart entre graines, mais ≤ 0,01
    text = ns["read_effect"]("presque rien", [0.700, 0.7001, 0.7002], [0.701, 0.7011, 0.7012])
    assert "pas d'effet indiqué" in text and "indication" not in text and "+0.001" in text


@pytest.mark.parametrize("seeds", [1, 2])
def test_read_effect_gives_no_verdict_below_three_seeds(ns, seeds):
    text = ns["read_effect"]("peu de graines", [0.60, 0.61][:seeds], [0.90, 0.91][:seeds])
    assert "moins de 3 graines : pas de verdict" in text
    assert "indication" not in text and "pas d'effet" not in text and "+0.300" in text


def test_read_effect_appends_the_epoch_caveat_and_names_the_metric(ns):
    text = ns["read_effect"]("de 150 à 300 exemples", [0.5, 0.5, 0.5], [0.4, 0.41, 0.4],
                             caveat=" ; attention, 8 contre 4 époques", metric="part perdue")
    assert text.endswith("; attention, 8 contre 4 époques.")
    assert ": part perdue 0.500 → 0.403" in text


def masking_rows(scores: dict) -> pd.DataFrame:
    """Lignes de l'expérience 5.2 : scores[(modèle, retrait)] = F1 macro par graine."""
    return pd.DataFrame([{"model": model, "removal": removal, "seed": seed, "macro_f1": value}
                         for (model, removal), values in scores.items()
                         for seed, value in zip((42, 43, 44), values)])


def masking_lines(text: str) -> dict:
    """Les trois lignes de read_keyword_masking, par sujet."""
    lines = text.split("\n")
    assert len(lines) == 3, text
    return {"tfidf": lines[0], "encoder": lines[1], "shares": lines[2]}


def test_read_keyword_masking_keywords_cost_more_than_the_control_for_tfidf_only(ns):
    text = ns["read_keyword_masking"](masking_rows({
        ("tfidf_logreg", "none"): [0.80] * 3, ("tfidf_logreg", "keywords"): [0.40] * 3,
        ("tfidf_logreg", "random"): [0.78, 0.79, 0.77],
        ("encoder", "none"): [0.90, 0.91, 0.92], ("encoder", "keywords"): [0.85, 0.86, 0.87],
        ("encoder", "random"): [0.84, 0.88, 0.90]}), 0.17)
    lines = masking_lines(text)
    assert lines["tfidf"].startswith("- tfidf_logreg : retrait au hasard → retrait des mots-clés")
    assert "**indication d'un effet**" in lines["tfidf"] and "0.780 → 0.400" in lines["tfidf"]
    assert "pas d'effet indiqué" in lines["encoder"]  # les mots-clés ne coûtent pas plus
    # parts perdues : TF-IDF 0,5, encodeur 0,055 : l'encodeur perd une part plus petite
    assert "part perdue 0.500 → 0.055" in lines["shares"]
    assert "**indication d'un effet**" in lines["shares"]
    assert "contexte" not in text and "robuste" not in text


def test_read_keyword_masking_compares_relative_not_absolute_drops(ns):
    # TF-IDF 0,50 → 0,25 (−0,25, moitié perdue), encodeur 0,90 → 0,55 (−0,35, 39 % perdus) :
    # en absolu l'encodeur perd plus, en part perdue c'est le TF-IDF
    text = ns["read_keyword_masking"](masking_rows({
        ("tfidf_logreg", "none"): [0.50] * 3, ("tfidf_logreg", "keywords"): [0.25] * 3,
        ("tfidf_logreg", "random"): [0.49, 0.48, 0.50],
        ("encoder", "none"): [0.90, 0.90, 0.90], ("encoder", "keywords"): [0.55, 0.55, 0.55],
        ("encoder", "random"): [0.88, 0.89, 0.90]}), 0.17)
    shares = masking_lines(text)["shares"]
    assert "part perdue 0.500 → 0.389" in shares and "-0.111" in shares
    assert "**indication d'un effet**" in shares


def test_read_keyword_masking_does_not_read_a_model_that_learned_nothing(ns):
    text = ns["read_keyword_masking"](masking_rows({
        ("tfidf_logreg", "none"): [0.70] * 3, ("tfidf_logreg", "keywords"): [0.40] * 3,
        ("tfidf_logreg", "random"): [0.69, 0.70, 0.68],
        ("encoder", "none"): [0.10, 0.10, 0.10], ("encoder", "keywords"): [0.10, 0.10, 0.10],
        ("encoder", "random"): [0.10, 0.10, 0.10]}), 0.17)
    shares = masking_lines(text)["shares"]
    assert "Parts perdues non comparées : encoder ne dépasse pas" in shares
    assert "hasard (0.170)" in shares and "part perdue" not in shares


def test_read_keyword_masking_gives_no_verdict_with_two_seeds(ns):
    rows = masking_rows({
        ("tfidf_logreg", "none"): [0.80] * 2, ("tfidf_logreg", "keywords"): [0.40] * 2,
        ("tfidf_logreg", "random"): [0.78, 0.79],
        ("encoder", "none"): [0.90, 0.91], ("encoder", "keywords"): [0.85, 0.86],
        ("encoder", "random"): [0.84, 0.88]})
    text = ns["read_keyword_masking"](rows, 0.17)
    assert text.count("moins de 3 graines : pas de verdict") == 3 and "indication" not in text


# --- Lectures : les paires déclarées (section 7) ------------------------------------------------


def comparison(accuracy_diff: float, p_holm: float, f1_diff: float, f1_p_holm: float,
               pair=("encoder_finetuned", "tfidf_logreg")) -> dict:
    """Résultat de compare_pair, complété des p-valeurs de Holm, construit à la main."""
    return {"pair": list(pair), "only_first_correct": 10, "only_second_correct": 3,
            "p_value": p_holm / 2, "p_value_holm": p_holm, "accuracy_diff": accuracy_diff,
            "accuracy_diff_ci95": [round(accuracy_diff - 0.02, 3), round(accuracy_diff + 0.02, 3)],
            "macro_f1_diff": f1_diff, "macro_f1_p_value": f1_p_holm / 2,
            "macro_f1_p_value_holm": f1_p_holm,
            "macro_f1_diff_ci95": [round(f1_diff - 0.03, 3), round(f1_diff + 0.03, 3)]}


def verdicts(text: str) -> dict:
    """Verdict écrit pour chaque score : le modèle nommé, ou None si non détectée."""
    found = {}
    for score in ("F1 macro", "exactitude"):
        match = re.search(score + r" [+-][\d.]+ \[[^]]*\] \(p de Holm [^)]*\) : différence "
                          r"(?:\*\*détectée\*\*, en faveur de (\w+)|non dé)", text)
        assert match, f"pas de verdict pour {score} dans : {text}"
        found[score] = match.group(1)
    return found


@pytest.mark.parametrize("accuracy_diff, p_holm, f1_diff, f1_p_holm, expected", [
    (0.05, 0.01, 0.01, 0.30, (None, "encoder_finetuned")),  # exactitude seule, au premier
    (-0.05, 0.01, -0.01, 0.30, (None, "tfidf_logreg")),  # exactitude seule, au second
    (0.01, 0.40, 0.03, 0.004, ("encoder_finetuned", None)),  # F1 macro seul
    (-0.01, 0.40, -0.03, 0.004, ("tfidf_logreg", None)),
    (0.06, 0.001, 0.05, 0.001, ("encoder_finetuned", "encoder_finetuned")),
    (-0.02, 0.01, 0.03, 0.01, ("encoder_finetuned", "tfidf_logreg")),  # deux scores opposés
    (0.02, 0.05, 0.02, 0.05, (None, None)),  # p ajustée = 0,05 : rien n'est détecté
    # l'intervalle non ajusté du F1 macro exclut 0, mais la p de Holm ne passe pas : non détectée
    (0.01, 0.30, 0.04, 0.08, (None, None)),
])
def test_read_pair_detects_on_the_holm_p_value_of_each_score(ns, accuracy_diff, p_holm, f1_diff,
                                                             f1_p_holm, expected):
    test = comparison(accuracy_diff, p_holm, f1_diff, f1_p_holm)
    text = ns["read_pair"](test)
    assert verdicts(text) == dict(zip(("F1 macro", "exactitude"), expected))
    assert text.startswith("- **encoder_finetuned** − **tfidf_logreg** : F1 macro ")
    assert text.index("F1 macro") < text.index("exactitude")  # le score principal d'abord
    assert f"(p de Holm {f1_p_holm:.2g})" in text and f"(p de Holm {p_holm:.2g})" in text
    assert f"exactitude {accuracy_diff:+.3f}" in text and f"F1 macro {f1_diff:+.3f}" in text
    assert "non ajusté" not in text
    for word in ("équivalent", "égaux", "se valent", "identiques"):
        assert word not in text


def test_read_pair_does_not_explain_a_matched_encoder_that_wins(ns):
    """Un modèle entraîné une fois ne dit rien des données : pas d'explication inventée."""
    pair = ("encoder_finetuned", "encoder_matched")
    text = ns["read_pair"](comparison(-0.04, 0.01, -0.05, 0.01, pair))
    assert verdicts(text) == {"F1 macro": "encoder_matched", "exactitude": "encoder_matched"}
    assert "sous-entraîné" not in text and "probable" not in text


# --- Lectures : chaque modèle contre le hasard --------------------------------------------------


CHANCE = 0.17


def model_run(low: float, high: float, classes: int = 5, trainable: int = 1000) -> dict:
    """Un modèle décrit par son intervalle de F1 macro et son nombre de classes prédites."""
    return {"macro_f1": (low + high) / 2, "macro_f1_ci95": [low, high],
            "predicted_classes": classes, "trainable_params": trainable}


def test_read_model_collapsed_models_learnt_nothing_and_the_cause_depends_on_training(ns):
    scratch = ns["read_model"]("encoder_scratch", model_run(0.05, 0.07, classes=1), CHANCE)
    assert "rien appris" in scratch and "échec d'optimisation à diagnostiquer" in scratch
    assert "attendu" not in scratch and "hasard" not in scratch
    zero = ns["read_model"]("llm_zero_shot", model_run(0.05, 0.07, 1, trainable=0), CHANCE)
    assert "rien appris" in zero and "consigne ou sa notation" in zero
    assert "entraînement" not in zero.replace("pas été entraîné", "")  # jamais entraîné
    assert zero.startswith("- **llm_zero_shot**")


@pytest.mark.parametrize("name, low, high, verdict", [
    ("encoder_scratch", 0.05, 0.10, "fait **moins bien** que le hasard"),
    ("llm_zero_shot", 0.04, 0.16, "fait **moins bien** que le hasard"),
    ("encoder_lora", 0.10, 0.20, "ne se distingue pas du hasard"),
    ("encoder_lora", 0.05, 0.17, "ne se distingue pas du hasard"),  # borne haute au niveau
    ("encoder_lora", 0.17, 0.30, "ne se distingue pas du hasard"),  # borne basse au niveau
    ("encoder_finetuned", 0.20, 0.30, "fait **mieux** que le hasard"),
])
def test_read_model_compares_the_interval_to_the_chance_level(ns, name, low, high, verdict):
    text = ns["read_model"](name, model_run(low, high), CHANCE)
    assert f"**{name}** {verdict} en F1 macro" in text
    assert f"[{low:.3f}, {high:.3f}] contre 0.170" in text
    others = {"fait **moins bien** que le hasard", "ne se distingue pas du hasard",
              "fait **mieux** que le hasard"} - {verdict}
    assert not any(other in text for other in others) and "rien appris" not in text


# --- Lecture : résultats par émotion ------------------------------------------------------------


PER_CLASS_TRAIN = pd.Series({"anger": 300, "hope": 40, "hopelessness": 300, "joy": 500,
                             "sadness": 30})  # rares : sous la moitié de la moyenne (117)


def test_read_per_class_names_weakest_classes_and_rare_classes_hardest_for_all(ns):
    f1 = pd.DataFrame({"anger": [0.8, 0.7, 0.9], "hope": [0.3, 0.2, 0.4],
                       "hopelessness": [0.7, 0.6, 0.8], "joy": [0.9, 0.9, 0.95],
                       "sadness": [0.5, 0.1, 0.6]},
                      index=["tfidf_logreg", "encoder_finetuned", "llm_qlora"])
    text = ns["read_per_class"](f1, PER_CLASS_TRAIN, ["tfidf_logreg", "encoder_finetuned",
                                                      "llm_qlora"])
    assert "- **encoder_finetuned** : classe la plus faible : sadness (F1 0.100)" in text
    assert "- **llm_qlora** : classe la plus faible : hope (F1 0.400)" in text
    assert "tfidf_logreg** : classe" not in text  # seuls les modèles nommés d'avance
    assert "classes rares du train (hope, sadness)" in text
    assert text.endswith("de chaque modèle entraîné : vrai.")


def test_read_per_class_says_false_and_names_the_models_for_which_it_holds(ns):
    f1 = pd.DataFrame({"anger": [0.2, 0.7], "hope": [0.3, 0.2], "hopelessness": [0.7, 0.6],
                       "joy": [0.9, 0.9], "sadness": [0.5, 0.1]},
                      index=["tfidf_logreg", "encoder_finetuned"])
    text = ns["read_per_class"](f1, PER_CLASS_TRAIN, ["tfidf_logreg", "encoder_finetuned"])
    assert "- **encoder_finetuned** : classe la plus faible : sadness (F1" in text
    assert "llm_qlora" not in text  # le LLM n'a pas tourné
    assert text.endswith("faux (vrai pour 1 sur 2 : encoder_finetuned).")


def test_read_per_class_names_every_class_tied_at_the_minimum(ns):
    f1 = pd.DataFrame({"anger": [0.0], "hope": [0.0], "hopelessness": [0.7], "joy": [0.9],
                       "sadness": [0.5]}, index=["encoder_finetuned"])
    text = ns["read_per_class"](f1, PER_CLASS_TRAIN, ["encoder_finetuned"])
    assert "- **encoder_finetuned** : classe la plus faible : anger, hope (F1 0.000)" in text


def test_read_per_class_without_rare_classes_says_so(ns):
    balanced = pd.Series({"anger": 100, "hope": 90, "hopelessness": 110, "joy": 100, "sadness": 95})
    f1 = pd.DataFrame({c: [0.5] for c in balanced.index}, index=["encoder_finetuned"])
    text = ns["read_per_class"](f1, balanced, ["encoder_finetuned"])
    assert text.endswith("- Aucune classe rare dans le train.") and "vrai" not in text


# --- Conclusion ---------------------------------------------------------------------------------


def conclusion_metrics(with_llm: bool, seeds=(0.60, 0.63, 0.61)) -> dict:
    """metrics minimal : quatre modèles (six avec le LLM) et deux ou trois paires déclarées."""
    runs = {  # l'ordre des exactitudes n'est pas celui des F1 macro
        "majority_class": {"macro_f1": 0.10, "macro_f1_ci95": [0.09, 0.11], "accuracy": 0.35},
        "tfidf_logreg": {"macro_f1": 0.55, "macro_f1_ci95": [0.5, 0.6], "accuracy": 0.90},
        "encoder_finetuned": {"macro_f1": 0.80, "macro_f1_ci95": [0.75, 0.85], "accuracy": 0.85},
        "encoder_scratch": {"macro_f1": 0.20, "macro_f1_ci95": [0.15, 0.25], "accuracy": 0.40},
    }
    comparisons = [
        comparison(0.45, 0.001, 0.60, 0.001, ("encoder_finetuned", "encoder_scratch")),
        comparison(-0.05, 0.20, 0.025, 0.01, ("encoder_finetuned", "tfidf_logreg")),
    ]
    if with_llm:
        runs["llm_zero_shot"] = {"macro_f1": 0.15, "macro_f1_ci95": [0.1, 0.2], "accuracy": 0.3}
        runs["llm_qlora"] = {"macro_f1": 0.70, "macro_f1_ci95": [0.65, 0.75], "accuracy": 0.8}
        comparisons.append(comparison(0.01, 0.9, 0.01, 0.6, ("llm_qlora", "llm_zero_shot")))
    rows = [{"setting": "référence", "macro_f1": value} for value in seeds]
    rows += [{"setting": "150 exemples", "macro_f1": 0.2}] * len(seeds)
    ablations = {"learning_curve": {"rows": rows}} if seeds else {}
    return {"runs": runs, "comparisons": comparisons, "ablations": ablations}


def test_render_conclusion_ranks_by_macro_f1_and_separates_the_two_families(ns):
    text = ns["render_conclusion"](conclusion_metrics(with_llm=True))
    ranking = re.findall(r"^(\d+)\. (\w+) : F1 macro ([\d.]+)", text, re.M)
    assert [name for _, name, _ in ranking] == ["encoder_finetuned", "llm_qlora", "tfidf_logreg",
                                                "encoder_scratch", "llm_zero_shot",
                                                "majority_class"]
    assert "1. encoder_finetuned : F1 macro 0.800 [0.75, 0.85], exactitude 0.850" in text
    f1_part = text.split("**F1 macro** (score principal")[1].split("**Exactitude**")[0]
    accuracy_part = text.split("**Exactitude** (McNemar)")[1].split("\n\n")[0]
    assert "Holm sur 3 paires" in f1_part and "Holm sur 3 paires" in accuracy_part
    assert ("Détectées : encoder_finetuned − encoder_scratch = +0.600; encoder_finetuned − "
            "tfidf_logreg = +0.025.") in f1_part
    assert "Non détectées (ce qui ne veut pas dire égales) : llm_qlora − llm_zero_shot." in f1_part
    assert "Détectées : encoder_finetuned − encoder_scratch = +0.450." in accuracy_part
    assert ("Non détectées (ce qui ne veut pas dire égales) : encoder_finetuned − tfidf_logreg; "
            "llm_qlora − llm_zero_shot.") in accuracy_part
    assert "pas sur leurs méthodes" in text and "n'a pas tourné" not in text


def test_render_conclusion_flags_detected_differences_smaller_than_the_seed_spread(ns):
    text = ns["render_conclusion"](conclusion_metrics(with_llm=False))
    # 3 graines de référence : 0,60 ; 0,63 ; 0,61 → écart 0,030 ; +0,025 y tient, +0,600 non
    assert "3 entraînements qui ne diffèrent que par la graine s'étalent sur 0.030" in text
    assert "plus petites que cet écart : encoder_finetuned − tfidf_logreg." in text
    wide = ns["render_conclusion"](conclusion_metrics(with_llm=False, seeds=(0.6, 0.601, 0.6)))
    assert "plus petites que cet écart : aucune." in wide


def test_render_conclusion_without_the_llm_or_the_experiments_says_so(ns):
    metrics = conclusion_metrics(with_llm=False, seeds=())
    text = ns["render_conclusion"](metrics)
    assert "La section du LLM n'a pas tourné" in text and "aucune conclusion sur TinyLlama" in text
    assert "L'écart dû à la seule graine n'est pas mesuré ici" in text
    for test in metrics["comparisons"]:
        test.update(p_value_holm=0.5, macro_f1_p_value_holm=0.5)
    nothing = ns["render_conclusion"](metrics)
    assert nothing.count("Détectées : aucune.") == 2
