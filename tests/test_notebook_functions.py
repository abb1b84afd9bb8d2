"""Tests unitaires des fonctions du notebook (extraites par nbtools) sur ce qui peut être faux en
silence : découpage et plafonds des données, chargement des fichiers, tokenisation des réponses du
LLM, score des classes, remplissage des lots, adaptateurs LoRA.

Les fonctions LLM tournent sur le Llama minuscule des fixtures, chargé en 4 bits sur CPU par
`load_llm`. Son tokenizer découpe « sadness » et « hopelessness » en plusieurs tokens, et « hope »
est un préfixe de « hopelessness » : une erreur d'alignement des réponses s'y voit.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from bitsandbytes.functional import dequantize_4bit
from nbtools import cpu_llm_namespace, notebook_namespace
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, BertConfig,
                          DataCollatorForSeq2Seq, GPT2Config)

LABELS = ["anger", "hope", "hopelessness", "joy", "sadness"]
TEXT_TOKEN_BUDGET = 12
LONG_TEXT = ("i am so hopeless about the new job and the weather and my neighbor and the letter "
             "and the meeting and the results and everything else this week")
PROMPT_TEXTS = [
    "i feel so happy today",
    "this makes me furious and i cannot stop thinking about the letter",
    "NA",
    "sad",
    LONG_TEXT,
]


# --- Données ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_ns():
    """Fonctions de données du notebook, colonnes « text » et « label »."""
    return notebook_namespace(LABEL_NAMES=LABELS, N_LABELS=len(LABELS),
                              LABEL_IDS=list(range(len(LABELS))),
                              LABEL_TO_ID={name: i for i, name in enumerate(LABELS)},
                              TEXT_COLUMN="text", LABEL_COLUMN="label")


def labelled_frame(rows) -> pd.DataFrame:
    """DataFrame au format du notebook (text, label_name, label, id)."""
    frame = pd.DataFrame(rows, columns=["text", "label_name"])
    frame["label"] = frame["label_name"].map({name: i for i, name in enumerate(LABELS)})
    frame["id"] = np.arange(len(frame))
    return frame


def test_split_by_text_never_puts_a_text_in_two_splits_and_is_reproducible(data_ns):
    rng = np.random.default_rng(0)
    # 120 textes distincts répétés au hasard : beaucoup de doublons ; la classe suit le texte
    numbers = rng.integers(0, 120, 400)
    frame = labelled_frame([(f"text {n}", LABELS[n % 3]) for n in numbers])
    rest, held = data_ns["split_by_text"](frame, 0.2, 42)
    assert sorted([*rest["id"], *held["id"]]) == list(range(len(frame)))  # rien perdu ni doublé
    assert not set(rest["text"]) & set(held["text"])
    distinct = frame.drop_duplicates("text")
    held_distinct = held.drop_duplicates("text")
    assert len(held_distinct) == pytest.approx(0.2 * len(distinct), abs=1)  # 20 % des textes
    for label, count in distinct["label"].value_counts().items():  # stratifié par classe
        assert (held_distinct["label"] == label).sum() == pytest.approx(0.2 * count, abs=1)
    again_rest, again_held = data_ns["split_by_text"](frame, 0.2, 42)
    assert again_held["id"].tolist() == held["id"].tolist()  # même graine, même découpage
    assert again_rest["id"].tolist() == rest["id"].tolist()
    _, other = data_ns["split_by_text"](frame, 0.2, 7)
    assert set(other["text"]) != set(held["text"])  # la graine compte


def test_split_by_text_falls_back_to_an_unstratified_cut(data_ns, capsys):
    frame = labelled_frame([(f"t{i}", "joy") for i in range(30)] + [("seul", "anger")])
    rest, held = data_ns["split_by_text"](frame, 0.2, 42)
    assert "non stratifié" in capsys.readouterr().out
    assert not set(rest["text"]) & set(held["text"]) and len(rest) + len(held) == len(frame)


def test_cap_examples_is_stratified_and_keeps_the_original_order(data_ns):
    frame = labelled_frame([(f"t{i}", LABELS[0] if i % 4 else LABELS[1]) for i in range(200)])
    capped = data_ns["cap_examples"](frame, 40, 42)
    assert len(capped) == 40 and capped["id"].is_monotonic_increasing
    assert (capped["label_name"] == LABELS[1]).sum() == 10  # un quart, comme dans le tout
    assert capped["id"].tolist() == data_ns["cap_examples"](frame, 40, 42)["id"].tolist()
    assert capped.index.tolist() == list(range(40))
    assert data_ns["cap_examples"](frame, None, 42) is frame  # pas de plafond
    assert data_ns["cap_examples"](frame, 500, 42) is frame  # plafond au-dessus de la taille


def test_cap_examples_just_below_the_frame_size(data_ns):
    frame = labelled_frame([(f"t{i}", LABELS[i % 3]) for i in range(100)])
    capped = data_ns["cap_examples"](frame, 99, 42)  # un seul exemple écarté, trois classes
    assert len(capped) == 99 and capped["id"].is_monotonic_increasing


def test_csv_keeps_na_and_empty_strings_as_texts(data_ns, tmp_path):
    path = tmp_path / "train.csv"
    texts = ["NA", "null", "N/A", "", "ok"]
    pd.DataFrame({"text": texts, "label": ["joy"] * 5}).to_csv(path, index=False)
    data = data_ns["load_split"]("train", str(path))
    assert data["text"] == texts and data["label"] == ["joy"] * 5
    frame = data_ns["to_frame"](data, None)
    assert frame["text"].tolist() == texts and frame["id"].tolist() == list(range(5))


@pytest.mark.parametrize("suffix", [".jsonl", ".JSONL", ".parquet"])
def test_json_lines_and_parquet_load_by_extension(data_ns, tmp_path, suffix):
    frame = pd.DataFrame({"text": ["i am happy", "NA", "so sad"],
                          "label": ["joy", "joy", "sadness"]})
    path = tmp_path / f"train{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    data = data_ns["load_split"]("train", str(path))
    assert data["text"] == ["i am happy", "NA", "so sad"]
    assert data["label"] == ["joy", "joy", "sadness"]


def test_load_split_raises_a_dataset_error_for_a_missing_file_or_a_bad_extension(data_ns, tmp_path):
    error = data_ns["DatasetError"]
    assert issubclass(error, ValueError)
    with pytest.raises(error, match="introuvable") as raised:
        data_ns["load_split"]("train", str(tmp_path / "absent.csv"))
    assert "DATA_FILES[« train »]" in str(raised.value)  # le split fautif est nommé
    spreadsheet = tmp_path / "data.xlsx"
    spreadsheet.write_bytes(b"")
    with pytest.raises(error, match=r"\.csv, \.json, \.jsonl ou \.parquet") as raised:
        data_ns["load_split"]("test", spreadsheet)  # un Path, pas seulement une chaîne
    assert "DATA_FILES[« test »]" in str(raised.value)


def write_rows(path, rows) -> str:
    """Petit fichier « text,label » au format donné par l'extension ; renvoie son chemin."""
    frame = pd.DataFrame(rows, columns=["text", "label"])
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix in (".json", ".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def test_load_split_concatenates_a_list_of_csv_files_in_order(data_ns, tmp_path):
    first = write_rows(tmp_path / "a.csv", [("i am happy", "joy"), ("NA", "joy")])
    second = write_rows(tmp_path / "b.csv", [("so sad", "sadness")])
    data = data_ns["load_split"]("train", [first, second])
    assert data["text"] == ["i am happy", "NA", "so sad"]  # « NA » reste un texte ici aussi
    assert data["label"] == ["joy", "joy", "sadness"]
    frame = data_ns["to_frame"](data, None)
    assert frame["id"].tolist() == [0, 1, 2]  # positions dans la concaténation


def test_load_split_accepts_json_and_jsonl_together(data_ns, tmp_path):
    first = write_rows(tmp_path / "a.json", [("i am happy", "joy")])
    write_rows(tmp_path / "b.jsonl", [("so sad", "sadness")])
    data = data_ns["load_split"]("validation", [first, tmp_path / "b.jsonl"])  # chaîne et Path
    assert data["text"] == ["i am happy", "so sad"] and data["label"] == ["joy", "sadness"]


def test_load_split_refuses_a_list_mixing_formats(data_ns, tmp_path):
    first = write_rows(tmp_path / "a.csv", [("i am happy", "joy")])
    second = write_rows(tmp_path / "b.parquet", [("so sad", "sadness")])
    with pytest.raises(data_ns["DatasetError"], match="mélange les formats") as raised:
        data_ns["load_split"]("train", [first, second])
    assert "DATA_FILES[« train »]" in str(raised.value)


def test_load_split_refuses_an_empty_list_and_a_missing_file_in_a_list(data_ns, tmp_path):
    error = data_ns["DatasetError"]
    with pytest.raises(error, match="DATA_FILES\\[« test »\\] = \\[\\] : aucun fichier"):
        data_ns["load_split"]("test", [])
    present = write_rows(tmp_path / "a.csv", [("i am happy", "joy")])
    absent = str(tmp_path / "absent.csv")
    with pytest.raises(error, match="introuvable") as raised:
        data_ns["load_split"]("train", [present, absent])
    assert absent in str(raised.value)


def test_to_frame_names_the_available_columns(data_ns):
    import datasets

    data = datasets.Dataset.from_dict({"phrase": ["a"], "emotion": ["joy"]})
    with pytest.raises(data_ns["DatasetError"], match=r"\['phrase', 'emotion'\]") as raised:
        data_ns["to_frame"](data, None)
    assert "TEXT_COLUMN" in str(raised.value) and "['text', 'label']" in str(raised.value)


def test_to_frame_maps_class_ids_to_names_and_marks_missing_labels(data_ns):
    import datasets

    data = datasets.Dataset.from_dict({"text": ["a", "b", None, "d"], "label": [0, 2, None, 4],
                                       "other": [1, 2, 3, 4]})
    frame = data_ns["to_frame"](data, LABELS)
    assert list(frame.columns) == ["text", "label_name", "id"]
    assert frame["label_name"].tolist()[:2] == ["anger", "hopelessness"]
    assert pd.isna(frame["label_name"][2]) and frame["label_name"][3] == "sadness"
    assert frame["text"].tolist() == ["a", "b", "", "d"]  # texte manquant : chaîne vide
    strings = datasets.Dataset.from_dict({"text": ["x", "y"], "label": ["joy", " "]})
    named = data_ns["to_frame"](strings, None)
    assert named["label_name"][0] == "joy" and pd.isna(named["label_name"][1])


# --- Le LLM minuscule en 4 bits -----------------------------------------------------------------


@pytest.fixture(scope="module")
def llm_ns(manifest):
    """Fonctions LLM du notebook, avec le Llama minuscule chargé en 4 bits sur CPU."""
    tokenizer = AutoTokenizer.from_pretrained(manifest["params"]["LLM_MODEL"])
    ns = cpu_llm_namespace(tokenizer, LABELS, TEXT_TOKEN_BUDGET=TEXT_TOKEN_BUDGET)
    ns["llm"] = ns["load_llm"](manifest["params"]["LLM_MODEL"])
    return ns


def test_load_llm_gives_a_4bit_model_and_a_pad_token_distinct_from_eos(llm_ns):
    tokenizer, model = llm_ns["llm_tokenizer"], llm_ns["llm"]
    assert tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert tokenizer.padding_side == "right"
    quantized = [p for p in model.parameters() if p.__class__.__name__ == "Params4bit"]
    assert len(quantized) == 7 * model.config.num_hidden_layers  # les sept projections par bloc


def test_load_llm_refuses_a_tokenizer_without_a_distinct_pad_token(manifest):
    tokenizer = AutoTokenizer.from_pretrained(manifest["params"]["LLM_MODEL"])
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.unk_token = tokenizer.eos_token  # plus rien pour remplacer le remplissage
    ns = cpu_llm_namespace(tokenizer, LABELS)
    with pytest.raises(ValueError, match="remplissage distinct"):
        ns["load_llm"](manifest["params"]["LLM_MODEL"])


@pytest.mark.parametrize("eos", [True, False])
def test_encode_example_masks_the_prompt_and_keeps_the_whole_answer(llm_ns, eos):
    ns, tokenizer = llm_ns, llm_ns["llm_tokenizer"]
    prompt = ns["build_prompt"]("i am so hopeless")
    prompt_ids = tokenizer(prompt).input_ids
    answers = {}
    for label in LABELS:
        example = ns["encode_example"](prompt, label, eos)
        ids, labels = example["input_ids"], example["labels"]
        assert len(ids) == len(labels) and ids[: len(prompt_ids)] == prompt_ids
        assert labels[: len(prompt_ids)] == [-100] * len(prompt_ids)  # la consigne : aucune perte
        answer = labels[len(prompt_ids):]
        assert answer == ids[len(prompt_ids):] and -100 not in answer
        if eos:
            assert answer[-1] == tokenizer.eos_token_id
            answer = answer[:-1]
        assert tokenizer.eos_token_id not in answer
        assert tokenizer.decode(answer).strip() == label
        answers[label] = answer
    assert len(answers["sadness"]) >= 2 and len(answers["hopelessness"]) >= 2  # plusieurs tokens
    assert answers["hopelessness"][: len(answers["hope"])] == answers["hope"]  # « hope », préfixe
    assert len(answers["hopelessness"]) > len(answers["hope"])


def test_prompts_for_cuts_only_long_texts_to_the_token_budget(llm_ns):
    ns, tokenizer = llm_ns, llm_ns["llm_tokenizer"]
    prompts = ns["prompts_for"](pd.Series(["NA", "i feel so happy today", LONG_TEXT]))
    assert prompts[:2] == [ns["build_prompt"]("NA"), ns["build_prompt"]("i feel so happy today")]
    cut = prompts[2].split("Text: ")[1].split("\nEmotion:")[0]
    assert LONG_TEXT.startswith(cut) and len(cut) < len(LONG_TEXT)
    assert len(tokenizer(LONG_TEXT, add_special_tokens=False).input_ids) > TEXT_TOKEN_BUDGET
    assert len(tokenizer(cut, add_special_tokens=False).input_ids) <= TEXT_TOKEN_BUDGET
    block = "Text: i am glad\nEmotion: joy\n\n"
    assert ns["prompts_for"](["NA"], block) == [ns["build_prompt"]("NA", block)]
    assert block + "Text: NA" in ns["build_prompt"]("NA", block)


def brute_force_scores(model, tokenizer, prompt: str, labels: list, eos: bool = True) -> list:
    """Score de chaque classe sans les fonctions du notebook : une passe par chaîne complète, sans
    lot ni remplissage, somme des log-probabilités des tokens de la réponse (et de EOS)."""
    prompt_ids = tokenizer(prompt).input_ids
    scores = []
    for label in labels:
        ids = tokenizer(prompt + " " + label).input_ids + ([tokenizer.eos_token_id] if eos else [])
        assert ids[: len(prompt_ids)] == prompt_ids  # la réponse commence après la consigne
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].float()
        log_probs = torch.log_softmax(logits, dim=-1)
        scores.append(sum(float(log_probs[position - 1, ids[position]])
                          for position in range(len(prompt_ids), len(ids))))
    return scores


@pytest.mark.parametrize("eos", [True, False])
def test_score_labels_equals_a_brute_force_computation(llm_ns, eos):
    ns = llm_ns
    prompts = [ns["build_prompt"](text) for text in PROMPT_TEXTS]
    # des lots de 2 pour 5 consignes : remplissage dans les lots, et un dernier lot incomplet
    scores = ns["score_labels"](ns["llm"], prompts, eos=eos, batch_size=2)
    assert scores.shape == (len(prompts), len(LABELS))
    expected = np.array([brute_force_scores(ns["llm"], ns["llm_tokenizer"], prompt, LABELS, eos)
                         for prompt in prompts])
    np.testing.assert_allclose(scores, expected, atol=2e-4, rtol=1e-4)
    assert len({tuple(np.round(row, 4)) for row in scores}) == len(prompts)  # chaque texte compte
    assert (scores < 0).all()


def test_eos_lowers_every_score_by_the_log_probability_of_eos(llm_ns):
    ns = llm_ns
    prompts = [ns["build_prompt"](text) for text in PROMPT_TEXTS[:3]]
    with_eos = ns["score_labels"](ns["llm"], prompts, eos=True, batch_size=4)
    without = ns["score_labels"](ns["llm"], prompts, eos=False, batch_size=4)
    assert (with_eos < without).all()  # un token de plus, de probabilité < 1


def test_seq2seq_collator_pads_on_the_right_and_the_loss_is_the_masked_cross_entropy(llm_ns):
    ns, tokenizer, model = llm_ns, llm_ns["llm_tokenizer"], llm_ns["llm"]
    examples = [ns["encode_example"](ns["build_prompt"]("sad"), "joy"),
                ns["encode_example"](ns["build_prompt"](LONG_TEXT), "hopelessness")]
    batch = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)(examples)
    short = len(examples[0]["input_ids"])
    assert batch["input_ids"].shape[1] == len(examples[1]["input_ids"]) > short
    assert batch["input_ids"][0, :short].tolist() == examples[0]["input_ids"]  # à gauche : le texte
    assert batch["labels"][0, :short].tolist() == examples[0]["labels"]
    assert (batch["input_ids"][0, short:] == tokenizer.pad_token_id).all()  # à droite : remplissage
    assert (batch["labels"][0, short:] == -100).all()
    assert (batch["attention_mask"][0, short:] == 0).all()
    assert (batch["attention_mask"][0, :short] == 1).all()
    assert (batch["attention_mask"][1] == 1).all()
    model.eval()
    with torch.no_grad():
        loss = model(**batch).loss
        logits = model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).logits.float()
    targets = batch["labels"][:, 1:]
    answer_tokens = int((targets != -100).sum())
    per_token = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets,
                                                  ignore_index=-100, reduction="none")
    assert float(loss) == pytest.approx(float(per_token.sum()) / answer_tokens, rel=1e-4)


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


def test_add_lora_trains_only_the_adapters(llm_ns, manifest):
    ns = llm_ns
    base = ns["load_llm"](manifest["params"]["LLM_MODEL"])
    # "all-linear" : les sept projections de chaque bloc Llama, pas la sortie lm_head
    rank = ns["LORA_R"]
    targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    targeted = [module for name, module in base.named_modules()
                if name.split(".")[-1] in targets and hasattr(module, "in_features")]
    assert len(targeted) == len(targets) * base.config.num_hidden_layers
    expected = sum(rank * (module.in_features + module.out_features) for module in targeted)
    model = ns["add_lora"](base)
    trainable, _ = model.get_nb_trainable_parameters()
    assert trainable == expected == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert all("lora_" in name for name, p in model.named_parameters() if p.requires_grad)
    assert model.peft_config["default"].lora_alpha == 2 * rank
    assert any(p.__class__.__name__ == "Params4bit" for p in model.parameters())  # bien suivis
    frozen_before = frozen_fingerprints(model)
    lora_before = {name: p.detach().clone()
                   for name, p in model.named_parameters() if p.requires_grad}
    prompt = ns["build_prompt"]("i feel happy")
    batch = DataCollatorForSeq2Seq(ns["llm_tokenizer"], label_pad_token_id=-100)(
        [ns["encode_example"](prompt, "joy"), ns["encode_example"](prompt, "hopelessness")])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(3):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    ns["score_labels"](model, [prompt])  # une inférence au passage…
    assert model.training  # … qui rend le modèle dans son mode d'entraînement
    assert frozen_fingerprints(model) == frozen_before
    assert all(not torch.equal(p.detach(), lora_before[name])
               for name, p in model.named_parameters() if name in lora_before)


def encoder_steps_change(model, batch, steps: int = 3) -> tuple[dict, dict]:
    """Quelques pas d'AdamW ; renvoie les paramètres (gelés, entraînables) avant l'entraînement."""
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return frozen, trained


def test_add_encoder_lora_targets_query_and_value_and_trains_the_head(data_ns, manifest):
    path = manifest["params"]["ENCODER_MODEL"]
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(LABELS))
    linear = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    targeted = [m for name, m in linear.items() if name.split(".")[-1] in ("q_lin", "v_lin")]
    head = sum(p.numel() for name in ("pre_classifier", "classifier")
               for p in getattr(model, name).parameters())
    expected = sum(8 * (m.in_features + m.out_features) for m in targeted) + head
    model = data_ns["add_encoder_lora"](model)
    assert sorted(model.peft_config["default"].target_modules) == ["q_lin", "v_lin"]
    trainable, _ = model.get_nb_trainable_parameters()
    assert trainable == expected
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "pre_classifier" in n or "classifier" in n for n in names)
    assert any("pre_classifier" in n for n in names) and any(".classifier." in n for n in names)
    tokenizer = AutoTokenizer.from_pretrained(path)
    batch = tokenizer(["i am happy", "i am so angry today"], padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([3, 0])
    frozen, trained = encoder_steps_change(model, batch)
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n].detach(), p) for n, p in frozen.items())  # base intacte
    assert all(not torch.equal(after[n].detach(), p) for n, p in trained.items())


def test_add_encoder_lora_finds_bert_projections_and_names_missing_ones(data_ns):
    bert = AutoModelForSequenceClassification.from_config(BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=3))
    assert sorted(data_ns["add_encoder_lora"](bert).peft_config["default"].target_modules) == [
        "query", "value"]
    gpt2 = AutoModelForSequenceClassification.from_config(GPT2Config(
        vocab_size=100, n_embd=16, n_layer=1, n_head=2, n_positions=32, num_labels=3))
    with pytest.raises(ValueError, match="introuvables"):
        data_ns["add_encoder_lora"](gpt2)
