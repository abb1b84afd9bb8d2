"""Les lectures en Markdown sont écrites par les chiffres : deux jeux de chiffres, deux conclusions différentes.

Chaque fonction de lecture du notebook (extraite par nbtools) reçoit deux entrées construites pour tomber de part
et d'autre de son seuil ; on vérifie le verdict attendu dans chaque texte, et que les deux textes diffèrent.
`render_conclusion` est essayée sur le metrics.json de l'exécution complète, modifié de deux façons opposées.
"""

import copy
import re

import numpy as np
import pandas as pd
import pytest
from nbtools import notebook_namespace

LABELS = ["anger", "hope", "hopelessness", "joy", "sadness"]


@pytest.fixture(scope="module")
def ns():
    """Fonctions de lecture du notebook."""
    return notebook_namespace(LABEL_NAMES=LABELS, N_LABELS=len(LABELS), LLM_NAME="TinyLlama-test")


def two_readings(first: str, second: str) -> tuple[str, str]:
    """Deux lectures qui doivent différer ; renvoyées pour vérifier leurs verdicts."""
    assert first != second
    return first, second


def seed_rows(settings: dict, field: str, spread: float = 0.0, **extra) -> list:
    """Deux graines par réglage : la moyenne voulue, plus ou moins spread / 2."""
    return [
        {"setting": str(key), field: key, "seed": seed, "accuracy": mean, "macro_f1": mean + sign * spread / 2, **extra}
        for key, mean in settings.items()
        for seed, sign in ((42, -1), (43, 1))
    ]


def test_noise_verdict(ns):
    assert ns["noise_verdict"](0.05, 0.01) == "au-delà du bruit"
    assert ns["noise_verdict"](-0.05, 0.01) == "au-delà du bruit"
    assert ns["noise_verdict"](0.005, 0.01) == "dans le bruit"


def test_learning_curve_saturates_or_still_climbs(ns):
    climbing = seed_rows({20: 0.30, 40: 0.45, 80: 0.70}, "n_train", spread=0.02)
    flat = seed_rows({20: 0.30, 40: 0.60, 80: 0.61}, "n_train", spread=0.04)
    climbs, saturates = two_readings(ns["read_learning_curve"](climbing), ns["read_learning_curve"](flat))
    assert "monte encore" in climbs and "sature" not in climbs
    assert "sature" in saturates and "monte encore" not in saturates
    assert "+0.250" in climbs and "+0.010" in saturates  # le dernier gain, lu dans les lignes
    single = ns["read_learning_curve"](seed_rows({80: 0.7}, "n_train"))
    assert "Une seule taille" in single


def test_class_weights_help_or_stay_in_the_noise(ns):
    def rows(weighted_f1: float, spread: float) -> list:
        plain = seed_rows({False: 0.60}, "weighted", spread=spread, recall_hopelessness=0.2)
        weighted = seed_rows({True: weighted_f1}, "weighted", spread=spread, recall_hopelessness=0.5)
        return plain + weighted

    helps, noise = two_readings(ns["read_class_weights"](rows(0.70, 0.02)), ns["read_class_weights"](rows(0.61, 0.05)))
    assert "au-delà du bruit" in helps and "mériterait d'être adoptée" in helps and "perte simple" not in helps
    assert "dans le bruit" in noise and "garder la perte simple" in noise and "adoptée" not in noise
    assert (
        "+0.100" in helps and "hopelessness" in helps and "0.200" in helps and "0.500" in helps
    )  # rappel du plus rare
    hurts = ns["read_class_weights"](rows(0.45, 0.02))
    assert "au-delà du bruit" in hurts and "garder la perte simple" in hurts  # pire au-delà du bruit : on n'adopte pas


def keyword_rows(tfidf: tuple, encoder: tuple) -> list:
    """Lignes de l'expérience de masquage : (F1 original, F1 masqué) pour chaque modèle."""
    rows = []
    for masked, (tfidf_f1, encoder_f1) in ((False, (tfidf[0], encoder[0])), (True, (tfidf[1], encoder[1]))):
        rows.append({"setting": "tfidf", "model": "tfidf_logreg", "masked": masked, "seed": 42, "macro_f1": tfidf_f1})
        rows += [
            {"setting": "encodeur", "model": "encoder", "masked": masked, "seed": seed, "macro_f1": encoder_f1}
            for seed in (42, 43)
        ]
    return rows


def test_keyword_masking_separates_context_from_keywords(ns):
    context, keywords = two_readings(
        ns["read_keyword_masking"](keyword_rows(tfidf=(0.80, 0.40), encoder=(0.80, 0.70))),
        ns["read_keyword_masking"](keyword_rows(tfidf=(0.80, 0.40), encoder=(0.80, 0.40))),
    )
    assert "nettement plus" in context and "même proportion" not in context and "0.800 à 0.700" in context
    assert "même proportion" in keywords and "nettement plus" not in keywords and keywords.count("50%") == 2
    assert "0.800 à 0.400" in context and "50%" in context  # le TF-IDF, identique dans les deux cas


def test_train_length_effect_is_read_against_the_seed_noise(ns):
    def rows(short_f1: float) -> list:
        return seed_rows({8: short_f1, 16: 0.70}, "max_length", spread=0.02)

    beyond, within = two_readings(
        ns["read_train_length"](rows(0.50), {8: 0.4}), ns["read_train_length"](rows(0.69), {8: 0.4})
    )
    verdict = re.compile(r"8 tokens[^;]*?(dans le bruit|au-delà du bruit)")  # le verdict de cette longueur
    assert "-0.200" in beyond and verdict.search(beyond).group(1) == "au-delà du bruit"
    assert "-0.010" in within and verdict.search(within).group(1) == "dans le bruit"
    assert "8 tokens" in beyond and "40%" in beyond


def test_comparison_is_significant_or_not(ns):
    def test(a: int, b: int, p: float) -> dict:
        return {
            "pair": ["encoder_finetuned", "tfidf_logreg"],
            "only_first_correct": a,
            "only_second_correct": b,
            "p_value": p,
        }

    tie, win = two_readings(ns["read_comparison"](test(6, 5, 1.0)), ns["read_comparison"](test(20, 2, 1e-4)))
    assert "pas significatif" in tie and "significativement meilleur" not in tie
    assert "**encoder_finetuned** est significativement meilleur" in win and "pas significatif" not in win
    loss = ns["read_comparison"](test(2, 20, 1e-4))
    assert "**tfidf_logreg** est significativement meilleur" in loss


def encoder_run(macro_f1: float, ci95: tuple, losses: list, **extra) -> dict:
    """Un modèle encodeur : F1 macro, intervalle, et pertes de validation (pas 0 puis une par époque)."""
    history = [{"step": 10 * i, "validation_loss": loss} for i, loss in enumerate(losses)]
    return {"macro_f1": macro_f1, "macro_f1_ci95": list(ci95), "history": history, **extra}


def test_scratch_versus_pretrained_reads_the_gap_and_the_overfitting(ns):
    pretrained = encoder_run(0.80, (0.75, 0.85), [1.6, 0.6, 0.5, 0.45])
    far = encoder_run(0.30, (0.25, 0.35), [1.6, 1.0, 1.2, 1.5])
    close = encoder_run(0.78, (0.73, 0.83), [1.6, 0.7, 0.6, 0.6])
    decisive, undecided = two_readings(
        ns["read_scratch_vs_pretrained"](far, pretrained), ns["read_scratch_vs_pretrained"](close, pretrained)
    )
    assert "+0.500" in decisive and "bien au-delà de l'intervalle" in decisive
    assert "+0.020" in undecided and "au-delà" not in undecided
    # le modèle aléatoire « far » sur-apprend (perte minimale à la 1re évaluation après le pas 0), « close » non
    assert "sur-apprend" in decisive.split("aléatoire :")[-1] and "1.000 → 1.500" in decisive
    assert "pas de sur-apprentissage" in undecided.split("aléatoire :")[-1]


def test_lora_reading_follows_the_test(ns):
    full = {"macro_f1": 0.80, "train_seconds": 100.0, "trainable_params": 1000, "total_params": 1000}
    lora = {"macro_f1": 0.78, "train_seconds": 80.0, "trainable_params": 10, "total_params": 1000}
    better = {**lora, "macro_f1": 0.85}
    keeps, loses = two_readings(
        ns["read_lora"](full, lora, {"p_value": 0.4}), ns["read_lora"](full, lora, {"p_value": 0.001})
    )
    assert "pas significative" in keeps and "garde la qualité" in keeps and "perd" not in keeps
    assert "perd 0.020" in loses and "perte significative" in loses and "garde la qualité" not in loses
    gains = ns["read_lora"](full, better, {"p_value": 0.001})
    assert "même mieux" in gains and "+0.050" in gains
    assert "1.00%" in keeps and "80%" in keeps  # part entraînée, temps relatif


def llm_run(matrix: list, macro_f1: float, **extra) -> dict:
    """Un modèle du LLM décrit par sa matrice de confusion."""
    matrix = np.array(matrix)
    accuracy = float(np.trace(matrix) / matrix.sum())
    return {"confusion_matrix": matrix.tolist(), "accuracy": accuracy, "macro_f1": macro_f1, **extra}


def test_zero_shot_versus_qlora_reads_the_confusion_matrices(ns):
    n = len(LABELS)
    one_column = np.zeros((n, n), dtype=int)
    one_column[:, LABELS.index("joy")] = 10  # le modèle de base répond toujours « joy »
    diagonal = (np.eye(n, dtype=int) * 8).tolist()
    zero = llm_run(one_column, 0.07)
    tuned = llm_run(diagonal, 0.80, trainable_params=1000, total_params=100_000, train_seconds=30.0)
    stuck = llm_run(one_column, 0.07, trainable_params=1000, total_params=100_000, train_seconds=30.0)
    improved, not_improved = two_readings(
        ns["read_zero_shot_vs_qlora"](zero, tuned), ns["read_zero_shot_vs_qlora"](zero, stuck)
    )
    assert "« joy »" in improved and "100%" in improved and "colonne écrase" in improved
    assert "diagonale domine" in improved and "n'a pas amélioré" not in improved
    assert "n'a pas amélioré la diagonale" in not_improved and "diagonale domine" not in not_improved
    assert "TinyLlama-test" in improved and "1.00%" in improved
    spread = llm_run(diagonal, 0.80)
    spread_reading = ns["read_zero_shot_vs_qlora"](spread, tuned)
    assert "répartit ses réponses" in spread_reading and "colonne écrase" not in spread_reading


def test_dataset_reading_follows_the_imbalance(ns, full_run):
    data = copy.deepcopy(full_run["metrics"]["dataset"])
    balanced = {**data, "imbalance_ratio": 1.2}
    skewed = {**data, "imbalance_ratio": 6.0}
    first, second = two_readings(ns["read_dataset"](skewed), ns["read_dataset"](balanced))
    assert "fortement déséquilibrées" in first and "6.0" in first
    assert "assez équilibrées" in second and "1.2" in second
    assert f"{data['splits']['train']['n']} exemples d'entraînement" in first


def test_confusions_name_the_most_confused_pair(ns):
    def predictions(pairs: list) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"text": f"texte {i}", "label": label, "prediction": predicted, "confidence": 0.5 + i / 100}
                for i, (label, predicted) in enumerate(pairs)
            ]
        )

    perfect = predictions([("joy", "joy"), ("anger", "anger")])
    mixed = predictions([("hope", "joy")] * 3 + [("anger", "sadness"), ("joy", "joy")])
    none, some = two_readings(ns["read_confusions"]("m", perfect), ns["read_confusions"]("m", mixed))
    assert "ne fait aucune erreur" in none
    assert "4 erreurs sur 5" in some and "aucune erreur" not in some
    line = next(
        line for line in some.splitlines() if "« hope » pris pour « joy »" in line
    )  # la paire la plus fréquente
    assert "3 fois" in line and "75%" in line and "*texte 2*" in line  # avec son exemple le plus assuré


def set_pvalue(metrics: dict, pair: tuple, p_value: float, first: int, second: int) -> None:
    """Remplace le résultat d'un test de McNemar déclaré."""
    for test in metrics["comparisons"]:
        if tuple(test["pair"]) == pair:
            test.update(p_value=p_value, only_first_correct=first, only_second_correct=second)


def set_curve(metrics: dict, gains: list) -> None:
    """Fixe la courbe d'apprentissage : une moyenne par taille, 0.01 d'écart entre graines."""
    sizes = sorted({row["n_train"] for row in metrics["ablations"]["learning_curve"]["rows"]})
    means = dict(zip(sizes, gains))
    for row in metrics["ablations"]["learning_curve"]["rows"]:
        row["macro_f1"] = means[row["n_train"]] + (0.005 if row["seed"] % 2 else -0.005)


def test_two_metrics_files_give_two_different_conclusions(ns, full_run):
    """Critère d'acceptation : la conclusion change avec les chiffres, pas seulement ses nombres."""
    strong = copy.deepcopy(full_run["metrics"])
    runs = strong["runs"]
    runs["encoder_finetuned"].update(macro_f1=0.80, macro_f1_ci95=[0.75, 0.85])
    runs["encoder_scratch"].update(macro_f1=0.30)
    runs["encoder_matched"].update(macro_f1=0.75)
    runs["llm_qlora"].update(macro_f1=0.60)
    set_pvalue(strong, ("encoder_finetuned", "encoder_lora"), 0.001, 12, 1)
    set_pvalue(strong, ("encoder_matched", "llm_qlora"), 0.001, 15, 2)
    set_curve(strong, [0.3, 0.5, 0.8])

    weak = copy.deepcopy(full_run["metrics"])
    runs = weak["runs"]
    runs["encoder_finetuned"].update(macro_f1=0.80, macro_f1_ci95=[0.75, 0.85])
    runs["encoder_scratch"].update(macro_f1=0.78)
    runs["encoder_matched"].update(macro_f1=0.75)
    runs["llm_qlora"].update(macro_f1=0.95)  # au-dessus de tous les autres modèles
    set_pvalue(weak, ("encoder_finetuned", "encoder_lora"), 0.6, 5, 4)
    set_pvalue(weak, ("encoder_matched", "llm_qlora"), 0.001, 2, 15)
    set_curve(weak, [0.3, 0.795, 0.8])

    first, second = two_readings(ns["render_conclusion"](strong), ns["render_conclusion"](weak))
    for text in (first, second):
        assert text.startswith("### Résultats de cette exécution")
    assert "décisif" in first and "+0.500" in first and "intervalle de confiance" not in first
    assert "intervalle de confiance" in second and "+0.020" in second and "décisif" not in second
    assert "significativement différent de l'affinage complet" in first
    assert "sans différence significative avec l'affinage complet" in second
    assert "l'encodeur l'emporte significativement" in first and "le LLM l'emporte significativement" in second
    assert "monte encore" in first and "sature" not in first
    assert "sature" in second and "monte encore" not in second
    assert "**llm_qlora** (" in second.split("En résumé")[1]  # le meilleur modèle sur le test

    without_llm = copy.deepcopy(weak)
    for name in ("llm_zero_shot", "llm_few_shot", "llm_qlora"):
        del without_llm["runs"][name]
    without_llm["comparisons"] = [t for t in without_llm["comparisons"] if "llm_qlora" not in t["pair"]]
    without_llm["ablations"] = {}
    third = ns["render_conclusion"](without_llm)
    assert "La section du LLM n'a pas été exécutée" in third and "sature" not in third
