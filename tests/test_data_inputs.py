"""Les entrées de données du notebook, de bout en bout avec papermill, sur de petits fichiers
construits à la volée : JSON lines et Parquet avec des classes entières, un seul CSV de train, et
les formes fautives de DATA_FILES. Chaque exécution est la moins chère possible (CHEAP_PARAMETERS,
une centaine d'exemples) ; les cas d'erreur s'arrêtent en section 2.
"""

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import CHEAP_PARAMETERS, RUNS_WITHOUT_LLM, execute_notebook
from test_notebook_variants import failing_run, write_csv

# Des mots anglais du vocabulaire BERT : un mot-indice par classe, le reste pour varier les textes.
CUES = [
    "happy",
    "sad",
    "angry",
    "afraid",
    "calm",
    "tired",
    "proud",
    "bored",
    "lonely",
    "hungry",
    "curious",
]
SUBJECTS = ["i am", "she is", "he is", "we are", "they were"]
PLACES = ["at home", "at work", "in town", "at school", "on the train", "in the garden"]
TIMES = ["today", "tonight", "this morning", "again", "lately", "this week"]


def sentences(cue: str):
    """Phrases distinctes, de vrais mots, toutes porteuses du mot-indice de leur classe."""
    for subject, place, time in itertools.product(SUBJECTS, PLACES, TIMES):
        yield f"{subject} {cue} {place} {time}"


def labelled_rows(cues: dict, counts: dict, skip: int = 0) -> list:
    """Lignes (texte, classe) : counts[classe] phrases sur le mot-indice cues[classe], à partir de
    la phrase numéro skip (deux appels aux skip disjoints n'ont aucun texte commun)."""
    return [
        (text, label)
        for label, count in counts.items()
        for text in itertools.islice(sentences(cues[label]), skip, skip + count)
    ]


def run_cheap(folder: Path, manifest: dict, data_files: dict, **parameters) -> dict:
    """Exécute le notebook bon marché sur ces fichiers ; renvoie metrics.json et le dossier."""
    execute_notebook(
        folder, **{**manifest["params"], **CHEAP_PARAMETERS, "DATA_FILES": data_files, **parameters}
    )
    output = folder / "outputs"
    return {
        "output": output,
        "metrics": json.loads((output / "metrics.json").read_text(encoding="utf-8")),
    }


def read_predictions(output: Path, run: str) -> pd.DataFrame:
    """Prédictions d'un modèle, relues comme le conseille le README (tout en chaînes)."""
    return pd.read_csv(output / "predictions" / f"{run}.csv", keep_default_na=False, dtype=str)


# --- JSON lines + Parquet, classes entières 0..10 sans noms -------------------------------------

N_CLASSES = 11
TEST_COUNTS = {k: 2 + k % 5 for k in range(N_CLASSES)}  # inégaux : un ordre faux se voit


@pytest.fixture(scope="module")
def integer_run(tmp_path_factory, manifest):
    """Train en deux fichiers JSON lines, test en Parquet, classes entières 0..10, pas de
    validation."""
    folder = tmp_path_factory.mktemp("integer_labels")
    cues = dict(enumerate(CUES))
    train_rows = labelled_rows(cues, {k: 10 for k in range(N_CLASSES)})  # stratifiable
    test_rows = labelled_rows(cues, TEST_COUNTS, skip=10)
    train = pd.DataFrame(train_rows, columns=["phrase", "emotion"]).sample(frac=1, random_state=0)
    test = pd.DataFrame(test_rows, columns=["phrase", "emotion"]).sample(frac=1, random_state=1)
    # le train en deux fichiers JSON lines, l'un en .json, l'autre en .jsonl : un seul format
    train.iloc[:50].to_json(folder / "train-a.json", orient="records", lines=True)
    train.iloc[50:].to_json(folder / "train-b.jsonl", orient="records", lines=True)
    test.to_parquet(folder / "test.parquet", index=False)
    train_files = [str(folder / "train-a.json"), str(folder / "train-b.jsonl")]
    data_files = {"train": train_files, "test": str(folder / "test.parquet")}
    return {
        **run_cheap(folder, manifest, data_files),
        "test_file": folder / "test.parquet",
        "train_rows": len(train),
    }


def test_integer_classes_from_json_lines_and_parquet_are_in_numeric_order(integer_run):
    metrics = integer_run["metrics"]
    names = [str(k) for k in range(N_CLASSES)]
    assert metrics["dataset"]["label_names"] == names  # « 2 » avant « 10 »
    assert metrics["dataset"]["test_source"] == "test"
    splits = metrics["dataset"]["splits"]
    assert splits["validation"]["n_raw"] == 0 and splits["validation"]["n"] > 0  # découpée
    assert splits["train"]["n_raw"] == integer_run["train_rows"]  # les deux fichiers
    assert splits["train"]["n"] + splits["validation"]["n"] == integer_run["train_rows"]
    test = pd.read_parquet(integer_run["test_file"])
    expected = [int((test["emotion"] == k).sum()) for k in range(N_CLASSES)]
    assert expected == list(TEST_COUNTS.values())
    assert list(splits["test"]["class_counts"]) == names
    assert list(splits["test"]["class_counts"].values()) == expected
    assert list(metrics["runs"]) == RUNS_WITHOUT_LLM
    for name, run in metrics["runs"].items():
        matrix = run["confusion_matrix"]
        assert len(matrix) == N_CLASSES and all(len(row) == N_CLASSES for row in matrix), name
        assert [sum(row) for row in matrix] == expected, name  # lignes : vraie classe, en ordre
        assert list(run["per_class"]) == names, name
    predictions = read_predictions(integer_run["output"], "encoder_finetuned")
    assert len(predictions) == len(test)
    assert set(predictions["label"]) == set(names) and set(predictions["prediction"]) <= set(names)
    rows = test.iloc[predictions["id"].astype(int)]  # id : ligne du fichier Parquet du test
    assert rows["phrase"].tolist() == predictions["text"].tolist()
    assert rows["emotion"].astype(str).tolist() == predictions["label"].tolist()


# --- Un seul CSV de train, classes en chaînes ---------------------------------------------------

TRAIN_ONLY_COUNTS = {"joy": 40, "sadness": 30, "anger": 25, "fear": 20}
TRAIN_ONLY_CUES = {"joy": "happy", "sadness": "sad", "anger": "angry", "fear": "afraid"}


@pytest.fixture(scope="module")
def train_only_run(tmp_path_factory, manifest):
    """Un seul CSV, classes en chaînes : test et validation découpés dans le train."""
    folder = tmp_path_factory.mktemp("train_only")
    rows = labelled_rows(TRAIN_ONLY_CUES, TRAIN_ONLY_COUNTS)
    rows += rows[:12:2]  # des textes en double : chacun doit tomber d'un seul côté
    frame = pd.DataFrame(rows, columns=["phrase", "emotion"]).sample(frac=1, random_state=0)
    train = write_csv(folder / "train.csv", frame.values.tolist())
    return {**run_cheap(folder, manifest, {"train": train}), "train_file": Path(train)}


def test_a_train_only_csv_gives_test_and_validation_without_shared_texts(train_only_run):
    metrics = train_only_run["metrics"]
    assert metrics["dataset"]["test_source"] == "train"
    assert metrics["dataset"]["label_names"] == sorted(TRAIN_ONLY_COUNTS)
    train = pd.read_csv(train_only_run["train_file"], keep_default_na=False, dtype=str)
    splits = metrics["dataset"]["splits"]
    assert splits["test"]["n_raw"] == 0 and splits["validation"]["n_raw"] == 0
    assert splits["train"]["n_raw"] == len(train)
    assert sum(splits[s]["n"] for s in ("train", "validation", "test")) == len(train)  # rien perdu
    for run in metrics["runs"]:
        predictions = read_predictions(train_only_run["output"], run)
        assert len(predictions) == splits["test"]["n"], run
        ids = predictions["id"].astype(int)
        assert ids.is_unique, run
        rows = train.iloc[ids]  # id : ligne du CSV de train d'où le test a été découpé
        assert rows["phrase"].tolist() == predictions["text"].tolist(), run
        assert rows["emotion"].tolist() == predictions["label"].tolist(), run
        elsewhere = set(train.drop(index=ids)["phrase"])  # ce qui reste : train et validation
        assert not elsewhere & set(predictions["text"]), run  # aucun texte des deux côtés
    matched_ids = metrics["runs"]["encoder_matched"]["train_ids"]  # ids du train gardé
    assert not set(train.iloc[matched_ids]["phrase"]) & set(predictions["text"])


# --- Formes fautives de DATA_FILES --------------------------------------------------------------


def bad_data_files(tmp_path, shape: str):
    """DATA_FILES fautif de la forme demandée, sur de petits fichiers réels."""
    rows = labelled_rows(TRAIN_ONLY_CUES, {"joy": 6, "sadness": 6})
    csv = write_csv(tmp_path / "train.csv", rows)
    if shape == "dev_key":
        return {"train": csv, "dev": write_csv(tmp_path / "dev.csv", rows[:4])}
    if shape == "no_train":
        return {"validation": csv, "test": csv}
    if shape == "not_a_dict":
        return csv
    if shape == "mixed_formats":
        parquet = tmp_path / "more.parquet"
        pd.DataFrame(rows, columns=["phrase", "emotion"]).to_parquet(parquet)
        return {"train": [csv, str(parquet)]}
    assert shape == "missing_file_in_list"
    return {"train": [csv, str(tmp_path / "absent.csv")]}


EXPECTED_MESSAGES = {
    "dev_key": ["'dev'", "« dev »", "nommez-la « validation »", "« train » (obligatoire)"],
    "no_train": ["« train » (obligatoire)", "['validation', 'test']"],
    "not_a_dict": ["DATA_FILES est un dictionnaire", "['str']"],
    "mixed_formats": ["DATA_FILES[« train »]", "mélange les formats", "['csv', 'parquet']"],
    "missing_file_in_list": [
        "DATA_FILES[« train »]",
        "introuvable",
        "absent.csv",
        ".csv, .json, .jsonl ou .parquet",
    ],
}


@pytest.mark.parametrize("shape", list(EXPECTED_MESSAGES))
def test_a_bad_data_files_shape_says_what_to_fix(tmp_path, manifest, shape):
    message = failing_run(tmp_path, manifest, bad_data_files(tmp_path, shape))
    for expected in EXPECTED_MESSAGES[shape]:
        assert expected in message, (expected, message)
    if shape != "dev_key":
        assert "nommez-la" not in message  # l'indice seulement pour dev, val, valid
