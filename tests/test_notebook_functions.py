"""Tests unitaires des fonctions du notebook (extraites par nbtools) sur ce qui peut être faux en silence."""

import numpy as np
import pandas as pd
import pytest
import torch
from bitsandbytes.functional import dequantize_4bit
from nbtools import cpu_llm_namespace, notebook_namespace
from sklearn.metrics import f1_score
from transformers import AutoTokenizer

LABELS = ["anger", "hope", "hopelessness", "joy", "sadness"]


@pytest.fixture(scope="module")
def llm_namespace(manifest):
    """Fonctions LLM du notebook, avec le Llama minuscule chargé en 4 bits sur CPU."""
    tokenizer = AutoTokenizer.from_pretrained(manifest["params"]["LLM_MODEL"])
    ns = cpu_llm_namespace(tokenizer, LABELS)
    ns["llm"] = ns["load_llm_4bit"](manifest["params"]["LLM_MODEL"])
    ns["set_pad_token"](tokenizer, ns["llm"])
    return ns


PROMPT_TEXTS = [
    "i feel so happy today",
    "this makes me furious and i cannot stop thinking about the letter",
    "NA",
    "sad",
    "i am so hopeless about the new job and the weather and my neighbor and everything",
]


def brute_force_scores(model, tokenizer, prompt: str) -> list:
    """Score de chaque classe recalculé sans les fonctions du notebook : une chaîne complète à la fois."""
    prompt_length = len(tokenizer(prompt).input_ids)
    scores = []
    for label in LABELS:
        ids = tokenizer(prompt + " " + label).input_ids + [tokenizer.eos_token_id]
        with torch.no_grad():
            log_probs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
        scores.append(sum(float(log_probs[position - 1, ids[position]]) for position in range(prompt_length, len(ids))))
    return scores


def test_pad_token_is_not_eos(llm_namespace):
    tokenizer, model = llm_namespace["llm_tokenizer"], llm_namespace["llm"]
    assert tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id


def test_joint_tokenization_holds_for_every_label(llm_namespace):
    ns = llm_namespace
    prompt = ns["build_prompt"]("i feel so happy today")
    rows = ns["joint_tokenization_table"](prompt)
    assert [row[0] for row in rows] == LABELS and all(row[3] for row in rows)
    lengths = {row[0]: row[2] for row in rows}
    assert lengths["hopelessness"] > lengths["hope"] >= 2 and lengths["sadness"] >= 3  # plusieurs tokens + EOS


def test_label_scores_equal_a_brute_force_computation(llm_namespace):
    ns = llm_namespace
    prompts = [ns["build_prompt"](text) for text in PROMPT_TEXTS]
    scores = ns["score_labels"](ns["llm"], prompts, batch_size=3, description="test")
    expected = np.array([brute_force_scores(ns["llm"], ns["llm_tokenizer"], prompt) for prompt in prompts])
    np.testing.assert_allclose(scores, expected, atol=2e-4, rtol=1e-4)
    assert len({tuple(np.round(row, 3)) for row in scores}) == len(prompts)  # chaque texte compte


def test_training_labels_mask_everything_but_the_answer(llm_namespace):
    ns = llm_namespace
    tokenizer = ns["llm_tokenizer"]
    prompt = ns["build_prompt"]("i am so hopeless")
    for label in LABELS:
        example = ns["encode_training_example"](prompt, label)
        prompt_length = len(tokenizer(prompt).input_ids)
        assert example["labels"][:prompt_length] == [-100] * prompt_length
        answer = example["labels"][prompt_length:]
        assert -100 not in answer and answer[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(answer[:-1]).strip() == label
    batch = ns["collate_causal"](
        [ns["encode_training_example"](prompt, "joy"), ns["encode_training_example"](prompt, "hopelessness")]
    )
    short = batch["attention_mask"][0] == 0
    assert short.any() and (batch["labels"][0][short] == -100).all()
    assert (batch["input_ids"][0][short] == tokenizer.pad_token_id).all()
    with torch.no_grad():
        loss = ns["llm"](**batch).loss
        logits = ns["llm"](input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    targets = batch["labels"][:, 1:]
    manual = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100
    )
    assert float(loss) == pytest.approx(float(manual), rel=1e-4)


def frozen_fingerprints(model) -> dict:
    """Somme et norme L1 de chaque poids gelé ; les poids 4 bits sont d'abord déquantifiés."""
    fingerprints = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            continue
        weight = parameter.data
        if parameter.__class__.__name__ == "Params4bit":
            weight = dequantize_4bit(weight, parameter.quant_state)
        fingerprints[name] = (float(weight.float().sum()), float(weight.float().abs().sum()))
    return fingerprints


def test_lora_trains_only_the_adapters(llm_namespace, manifest):
    ns = llm_namespace
    base = ns["load_llm_4bit"](manifest["params"]["LLM_MODEL"])
    ns["set_pad_token"](ns["llm_tokenizer"], base)
    expected = ns["lora_expected_parameters"](base)
    model = ns["add_lora"](base)
    trainable, total = model.get_nb_trainable_parameters()
    assert trainable == expected == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert all("lora_" in name for name, p in model.named_parameters() if p.requires_grad)
    frozen_before = frozen_fingerprints(model)
    assert any(p.__class__.__name__ == "Params4bit" for p in model.parameters())  # des poids 4 bits sont bien suivis
    lora_before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    batch = ns["collate_causal"]([ns["encode_training_example"](ns["build_prompt"]("i feel happy"), "joy")] * 4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    ns["score_labels"](model, [ns["build_prompt"]("i feel happy")], description="test")  # une inférence au passage
    assert frozen_fingerprints(model) == frozen_before
    assert all(
        not torch.equal(p.detach(), lora_before[name]) for name, p in model.named_parameters() if name in lora_before
    )


@pytest.fixture(scope="module")
def data_namespace():
    """Fonctions de données et de métriques du notebook."""
    return notebook_namespace(LABEL_NAMES=LABELS, N_LABELS=len(LABELS))


def labelled_frame(rows) -> pd.DataFrame:
    """DataFrame au format du notebook (text, label_name, label, id)."""
    frame = pd.DataFrame(rows, columns=["text", "label_name"])
    frame["label"] = frame["label_name"].map({name: i for i, name in enumerate(LABELS)})
    frame["id"] = np.arange(len(frame))
    return frame


def test_carving_never_puts_one_text_in_two_splits(data_namespace):
    rng = np.random.default_rng(0)
    rows = [(f"text {rng.integers(0, 120)}", LABELS[i % 3]) for i in range(400)]  # beaucoup de doublons
    frame = labelled_frame(rows)
    rest, held = data_namespace["split_by_text"](frame, 0.2, 42)
    assert len(rest) + len(held) == len(frame)
    assert not set(rest["text"]) & set(held["text"])
    assert 0.1 < held["text"].nunique() / frame["text"].nunique() < 0.3
    again_rest, again_held = data_namespace["split_by_text"](frame, 0.2, 42)
    assert again_held["id"].tolist() == held["id"].tolist()  # même graine, même découpage


def test_caps_are_stratified_and_keep_the_original_order(data_namespace):
    frame = labelled_frame([(f"t{i}", LABELS[0] if i % 4 else LABELS[1]) for i in range(200)])
    capped = data_namespace["cap_examples"](frame, 40, 42)
    assert len(capped) == 40 and capped["id"].is_monotonic_increasing
    assert (capped["label_name"] == LABELS[1]).sum() == 10


def test_na_stays_a_text_and_ids_are_source_rows(data_namespace, tmp_path):
    # le retrait des textes vides est vérifié de bout en bout (test_dataset_block_matches_the_known_answers)
    path = tmp_path / "train.csv"
    pd.DataFrame({"phrase": ["NA", "", "   ", "ok", "null"], "emotion": ["joy"] * 5}).to_csv(path, index=False)
    splits = data_namespace["load_local_splits"]({"train": str(path)})
    frame = data_namespace["to_frame"](splits["train"], "phrase", "emotion", None)
    assert frame["text"].tolist() == ["NA", "", "   ", "ok", "null"] and frame["id"].tolist() == [0, 1, 2, 3, 4]
    assert frame["label_name"].tolist() == ["joy"] * 5


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_json_lines_and_parquet_load_by_extension(data_namespace, tmp_path, suffix):
    frame = pd.DataFrame({"text": ["i am happy", "NA", "so sad"], "label": ["joy", "joy", "sadness"]})
    path = tmp_path / f"train{suffix}"
    frame.to_json(path, orient="records", lines=True) if suffix == ".jsonl" else frame.to_parquet(path)
    splits = data_namespace["load_local_splits"]({"train": str(path)})
    assert splits["train"]["text"] == ["i am happy", "NA", "so sad"] and splits["train"]["label"] == [
        "joy",
        "joy",
        "sadness",
    ]


def test_data_errors_name_the_problem(data_namespace, tmp_path):
    error = data_namespace["DatasetError"]
    assert issubclass(error, ValueError)
    with pytest.raises(error, match="Extension"):
        data_namespace["file_format"]("data.xlsx")
    with pytest.raises(error, match="introuvable"):
        data_namespace["load_local_splits"]({"train": str(tmp_path / "absent.csv")})
    with pytest.raises(error, match="au moins « train »"):
        data_namespace["load_local_splits"]({"test": "x.csv"})
    frames = {"train": labelled_frame([("a", "joy")]), "test": labelled_frame([("b", "anger")])}
    frames["test"]["label_name"] = ["fear"]
    with pytest.raises(error, match="fear"):
        data_namespace["check_labels"](frames, LABELS)


def test_bootstrap_and_macro_f1_agree_with_scikit_learn(data_namespace):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 300)  # la 5e classe n'apparaît jamais : F1 macro sur toutes les classes
    predicted = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 5, 300))
    scores = data_namespace["accuracy_and_macro_f1"](truth, predicted)
    expected = f1_score(truth, predicted, labels=list(range(5)), average="macro", zero_division=0)
    assert scores["macro_f1"] == pytest.approx(expected, abs=1e-5)
    accuracy_ci, f1_ci = data_namespace["bootstrap_intervals"](truth, predicted, seed=3)
    assert accuracy_ci == data_namespace["bootstrap_intervals"](truth, predicted, seed=3)[0]
    assert accuracy_ci[0] < scores["accuracy"] < accuracy_ci[1] and f1_ci[0] < scores["macro_f1"] < f1_ci[1]
    assert 0.03 < accuracy_ci[1] - accuracy_ci[0] < 0.2
