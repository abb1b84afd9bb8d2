"""Variantes bon marché du notebook : autre encodeur, LLM coupé, données fautives, LLM en échec."""

import json

import pandas as pd
import pytest
from conftest import CHEAP_PARAMETERS, RUNS_WITHOUT_LLM, execute_notebook
from papermill.exceptions import PapermillExecutionError

ENCODER_PAIRS = [
    ("encoder_finetuned", "encoder_scratch"),
    ("encoder_finetuned", "tfidf_logreg"),
    ("encoder_finetuned", "encoder_lora"),
    ("encoder_finetuned", "encoder_matched"),
]


def read_metrics(folder) -> dict:
    """metrics.json d'un dossier de sortie."""
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory, manifest):
    """Le notebook avec un encodeur BERT pré-entraîné (MiniLM), LLM et expériences coupés."""
    folder = tmp_path_factory.mktemp("bert_run")
    parameters = {
        **manifest["params"],
        **CHEAP_PARAMETERS,
        "ENCODER_MODEL": manifest["pretrained_encoder"],
        "ENCODER_LRS": [1e-4],
    }
    executed = execute_notebook(folder, **parameters)
    return {
        "folder": folder,
        "executed": executed,
        "parameters": parameters,
        "metrics": read_metrics(folder / "outputs"),
    }


def test_a_bert_encoder_runs_without_the_llm(bert_run):
    metrics = bert_run["metrics"]
    assert list(metrics["runs"]) == RUNS_WITHOUT_LLM  # aucun llm_* quand la section ne tourne pas
    assert metrics["ablations"] == {}
    finetuned = metrics["runs"]["encoder_finetuned"]
    assert finetuned["total_params"] > 20_000_000  # MiniLM, 22,7 M paramètres
    assert finetuned["max_length"] <= 512
    text = bert_run["executed"].read_text(encoding="utf-8")
    assert "Section QLoRA sautée : RUN_LLM = False" in text
    assert "La section du LLM n'a pas tourné" in text
    pairs = [tuple(test["pair"]) for test in metrics["comparisons"]]
    assert pairs == ENCODER_PAIRS  # les paires déclarées du LLM sont absentes
    for test in metrics["comparisons"]:
        assert test["p_value_holm"] >= test["p_value"]
    lora = metrics["runs"]["encoder_lora"]
    # BERT nomme ses projections autrement que DistilBERT
    assert lora["lora_targets"] == ["query", "value"]
    assert 0 < lora["trainable_params"] / lora["total_params"] < 0.05
    assert lora["learning_rate"] in bert_run["parameters"]["ENCODER_LORA_LRS"]
    assert finetuned["learning_rate"] == 1e-4 and finetuned["candidates"] == 1
    assert metrics["runs"]["encoder_matched"]["learning_rate"] == finetuned["learning_rate"]
    matched = metrics["runs"]["encoder_matched"]
    assert len(matched["train_ids"]) == min(
        bert_run["parameters"]["LLM_TRAIN_EXAMPLES"], metrics["dataset"]["splits"]["train"]["n"]
    )
    assert metrics["demo"] and all(
        list(row["predictions"]) == ["tfidf_logreg", "encoder_finetuned", "encoder_lora"]
        for row in metrics["demo"]
    )
    assert not (bert_run["folder"] / "outputs" / "checkpoints").exists()


def write_csv(path, rows, columns=("phrase", "emotion")):
    """Petit CSV de test."""
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return str(path)


def failing_run(tmp_path, manifest, data_files, **parameters) -> str:
    """Exécute le notebook, qui doit échouer ; vérifie que metrics.json est intact."""
    output = tmp_path / "outputs"
    output.mkdir(parents=True)
    previous = {"runs": {"tfidf_logreg": {"accuracy": 0.5}}}
    (output / "metrics.json").write_text(json.dumps(previous), encoding="utf-8")
    with pytest.raises(PapermillExecutionError) as error:
        execute_notebook(
            tmp_path,
            **{
                **manifest["params"],
                **CHEAP_PARAMETERS,
                "DATA_FILES": data_files,
                "OUTPUT_DIR": str(output),
                **parameters,
            },
        )
    assert (
        json.loads((output / "metrics.json").read_text(encoding="utf-8")) == previous
    )  # rien de perdu
    assert error.value.ename == "DatasetError"
    return error.value.evalue


def test_wrong_text_column_lists_the_available_columns(tmp_path, manifest):
    message = failing_run(tmp_path, manifest, manifest["params"]["DATA_FILES"], TEXT_COLUMN="texte")
    assert (
        "texte" in message
        and "phrase" in message
        and "emotion" in message
        and "TEXT_COLUMN" in message
    )


def test_a_test_label_unknown_to_train_is_named(tmp_path, manifest):
    train = write_csv(tmp_path / "train.csv", [("i am happy", "joy"), ("i am sad", "sadness")] * 10)
    test = write_csv(tmp_path / "test.csv", [("i am angry", "anger"), ("so happy", "joy")])
    message = failing_run(tmp_path, manifest, {"train": train, "test": test})
    assert "Le split « test »" in message and "['anger']" in message  # la classe inconnue
    assert "joy" in message and "sadness" in message  # et celles du train


def test_a_missing_label_stops_the_notebook(tmp_path, manifest):
    train = write_csv(
        tmp_path / "train.csv", [("i am happy", "joy"), ("i am sad", ""), ("so sad", "sadness")] * 5
    )
    message = failing_run(tmp_path, manifest, {"train": train})
    assert "n'ont pas de classe" in message


def test_a_split_empty_after_cleaning_is_reported(tmp_path, manifest):
    train = write_csv(tmp_path / "train.csv", [("i am happy", "joy"), ("i am sad", "sadness")] * 10)
    test = write_csv(tmp_path / "test.csv", [("   ", "joy"), ("", "sadness")])
    message = failing_run(tmp_path, manifest, {"train": train, "test": test})
    assert message.startswith("Le split « test » est vide"), message


def test_a_failure_in_the_llm_section_keeps_what_was_finished(tmp_path, manifest):
    parameters = {
        **manifest["params"],
        **CHEAP_PARAMETERS,
        "RUN_LLM": True,
        "LLM_MODEL": str(tmp_path / "absent"),
    }
    with pytest.raises(PapermillExecutionError):
        execute_notebook(tmp_path, **parameters)
    metrics = read_metrics(tmp_path / "outputs")
    assert list(metrics["runs"]) == RUNS_WITHOUT_LLM
    assert metrics["dataset"]["label_names"]
