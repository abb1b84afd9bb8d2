"""Quick checks that the offline fixtures in tools/fixtures.py behave as promised."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import fixtures  # noqa: E402

BYTE_TOKEN = re.compile(r"^<0x[0-9A-F]{2}>$")


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """Build all fixtures once per session."""
    root = tmp_path_factory.mktemp("fixtures")
    params = fixtures.build_all(root)
    return root, params


@pytest.fixture(scope="session")
def facts(built):
    """The known answers written next to the emotion CSVs."""
    root, _ = built
    return json.loads((root / "data" / "facts.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def llama_tokenizer(built):
    """The tiny Llama tokenizer reloaded through AutoTokenizer."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(built[1]["LLM_MODEL"])


def read(path, **kwargs) -> pd.DataFrame:
    """Read a fixture CSV keeping empty strings and the literal "NA" as text."""
    return pd.read_csv(path, keep_default_na=False, dtype=str, **kwargs)


def test_params_and_layout(built):
    root, params = built
    assert set(params) == {
        "DATA_FILES",
        "TEXT_COLUMN",
        "LABEL_COLUMN",
        "ENCODER_MODEL",
        "LLM_MODEL",
    }
    assert set(params["DATA_FILES"]) == {"train", "test"}
    assert (params["TEXT_COLUMN"], params["LABEL_COLUMN"]) == ("phrase", "emotion")
    assert all(Path(p).is_file() for p in params["DATA_FILES"].values())
    assert not (root / "data" / "validation.csv").exists()
    for folder in ("distilbert", "llama", "data", "synonyms"):
        assert (root / folder).is_dir()
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"] == params
    json.dumps(params)  # papermill parameters must be JSON/YAML serialisable


def test_llama_tokenizer_properties(llama_tokenizer):
    tok = llama_tokenizer
    assert tok.is_fast and type(tok).__name__ == "LlamaTokenizer"
    assert tok.pad_token is None and tok.pad_token_id is None
    assert (tok.unk_token, tok.bos_token, tok.eos_token) == ("<unk>", "<s>", "</s>")
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert tok.model_max_length >= 10**29
    ids = tok("hello world").input_ids
    assert ids[0] == 1 and ids.count(1) == 1 and tok.eos_token_id not in ids
    assert tok("hello world", add_special_tokens=False).input_ids == ids[1:]
    pieces = tok.tokenize("hello world")
    assert pieces[0].startswith("▁") and any(p.startswith("▁") for p in pieces[1:])
    assert all(f"<0x{b:02X}>" in tok.get_vocab() for b in range(256))
    for text in ("é", "café 😀"):
        assert any(BYTE_TOKEN.match(p) for p in tok.tokenize(text)), tok.tokenize(text)
        assert tok.unk_token_id not in tok(text).input_ids
        assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == text
    assert 300 < len(tok) < 1000


def test_llama_label_tokenization(llama_tokenizer, facts):
    tok = llama_tokenizer
    pieces = fixtures.check_label_tokenization(tok)
    lengths = {
        label: len(tok(label, add_special_tokens=False).input_ids) for label in facts["labels"]
    }
    assert any(n == 1 for n in lengths.values()) and any(n >= 2 for n in lengths.values())
    assert {label for label, n in lengths.items() if n == 1} == set(facts["single_token_labels"])
    assert {label for label, n in lengths.items() if n >= 2} == set(facts["multi_token_labels"])
    short, long = facts["prefix_label_pair"]
    assert pieces[long][: len(pieces[short])] == pieces[short] and len(pieces[long]) > len(
        pieces[short]
    )


def test_llama_4bit_forward_on_cpu(built, llama_tokenizer):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

    path = built[1]["LLM_MODEL"]
    config = AutoConfig.from_pretrained(path)
    assert config.vocab_size == len(llama_tokenizer)
    assert (config.num_attention_heads, config.num_key_value_heads) == (4, 2)
    assert config.tie_word_embeddings is False and config.pad_token_id is None
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=quant, device_map="cpu")
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    batch = llama_tokenizer(["i feel happy today"], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (1, batch.input_ids.shape[1], len(llama_tokenizer))
    assert torch.isfinite(logits).all()


def test_distilbert_fixture(built):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = built[1]["ENCODER_MODEL"]
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.is_fast and len(tok) == 30522 and tok.model_max_length == 512
    encoded = tok("I am feeling happy today")
    tokens = tok.convert_ids_to_tokens(encoded.input_ids)
    assert tokens == ["[CLS]", "i", "am", "feeling", "happy", "today", "[SEP]"]
    assert "token_type_ids" not in encoded
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=4)
    assert type(model).__name__ == "DistilBertForSequenceClassification"
    assert (model.config.dim, model.config.n_layers, model.config.vocab_size) == (32, 2, 30522)
    logits = model(**tok(["I am feeling happy today"], return_tensors="pt")).logits
    assert logits.shape == (1, 4)


def test_minilm_loads_as_classifier():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = fixtures.minilm_dir()
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
    tok = AutoTokenizer.from_pretrained(folder)
    assert model.config.num_labels == 3
    assert tok.convert_ids_to_tokens(tok("I am feeling happy today").input_ids)[1:-1] == [
        "i", "am", "feeling", "happy", "today",
    ]  # fmt: skip


def test_emotion_csv_facts(built, facts):
    files = built[1]["DATA_FILES"]
    frames = {split: read(path) for split, path in files.items()}
    for frame in frames.values():
        assert list(frame.columns) == ["phrase", "emotion"]
    train, test = frames["train"], frames["test"]
    assert "NA" in set(train["phrase"])  # the literal text survives keep_default_na=False
    assert (
        pd.read_csv(files["train"])["phrase"].isna().sum() == 4
    )  # default reading loses "" and "NA"
    assert facts["n_rows"] == {"train": len(train), "test": len(test)} == {"train": 240, "test": 60}
    blank = {split: int((f["phrase"].str.strip() == "").sum()) for split, f in frames.items()}
    assert blank == facts["blank_texts"] == {"train": 3, "test": 1}
    assert (test["phrase"] == "   ").sum() == 1 and (train["phrase"] == "").sum() == 3
    train_texts = train.loc[train["phrase"].str.strip() != "", "phrase"]
    test_texts = set(test.loc[test["phrase"].str.strip() != "", "phrase"])
    counts = Counter(train_texts)
    assert len(set(counts) & test_texts) == facts["train_texts_in_test"] == 3
    assert sum(n > 1 for n in counts.values()) == facts["duplicate_texts_train"] == 2
    dup_rows = train[train.duplicated("phrase", keep=False) & (train["phrase"] != "")]
    assert dup_rows.groupby("phrase")["emotion"].nunique().eq(1).all()  # exact duplicates
    for split, frame in frames.items():
        assert (
            frame["emotion"].value_counts().sort_index().to_dict() == facts["class_counts"][split]
        )
    assert facts["labels"] == sorted(train["emotion"].unique()) and len(facts["labels"]) >= 4
    shares = train["emotion"].value_counts(normalize=True)
    assert shares.max() >= 0.3 and shares.min() <= 0.1  # imbalanced
    clean = train[(train["phrase"].str.strip() != "") & ~train["phrase"].isin(test_texts)]
    clean = clean.drop_duplicates("phrase")
    assert len(clean) == facts["n_train_clean"]
    assert (
        clean["emotion"].value_counts().sort_index().to_dict() == facts["class_counts_train_clean"]
    )


def test_synonym_csvs(built):
    root, _ = built
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    frames = {split: read(path) for split, path in manifest["synonym_files"].items()}
    assert set(frames) == {"train", "validation", "test"}
    sizes = {split: len(frame) for split, frame in frames.items()}
    assert sizes == {"train": 150, "validation": 60, "test": 60}
    for frame in frames.values():
        assert list(frame.columns) == ["text", "label"]
        assert frame["label"].value_counts().nunique() == 1 and frame["label"].nunique() == 3

    def words(frame: pd.DataFrame) -> set[str]:
        """All words of a frame's texts."""
        return {w.strip(",") for text in frame["text"] for w in text.split()}

    train_cues = {cue for cues in fixtures.SYNONYM_TRAIN_CUES.values() for cue in cues}
    eval_cues = {cue for cues in fixtures.SYNONYM_EVAL_CUES.values() for cue in cues}
    assert train_cues <= words(frames["train"]) and not eval_cues & words(frames["train"])
    for split in ("validation", "test"):
        assert eval_cues <= words(frames[split]) and not train_cues & words(frames[split])
    assert not set(frames["train"]["text"]) & (
        set(frames["validation"]["text"]) | set(frames["test"]["text"])
    )


def test_deterministic_csvs(tmp_path, built):
    root, _ = built
    fixtures.make_emotion_csvs(tmp_path / "data")
    fixtures.make_synonym_csvs(tmp_path / "synonyms")
    for name in ("data/train.csv", "data/test.csv", "data/facts.json", "synonyms/test.csv"):
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes()
    other = fixtures.make_emotion_csvs(tmp_path / "other", seed=1)
    assert (
        read(other["train"])["phrase"].tolist()
        != read(root / "data" / "train.csv")["phrase"].tolist()
    )


def test_script_builds_identical_fixtures(tmp_path, built):
    root, params = built
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, fixtures.__file__, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    printed = json.loads(result.stdout)
    assert printed == json.loads(json.dumps(params).replace(str(root), str(tmp_path)))
    for name in ("llama/tokenizer.json", "llama/model.safetensors", "distilbert/model.safetensors"):
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes()
