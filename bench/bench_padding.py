"""Remplissage dynamique groupé par longueur (celui du notebook) contre remplissage à MAX_LENGTH.

    .venv/bin/python bench/bench_padding.py

Trois réglages sur les mêmes données et le même modèle (MiniLM-L6 pré-entraîné, tokenizer BERT en
minuscules) : remplissage fixe à MAX_LENGTH, remplissage dynamique en ordre aléatoire, remplissage
dynamique avec lots groupés par longueur (`DataCollatorWithPadding` +
`train_sampling_strategy="group_by_length"`). On mesure (a) la part de vrais tokens dans les lots
d'une époque du chargeur que construit `Trainer.get_train_dataloader()`, et (b) le débit
d'entraînement (exemples par seconde) sur une époque courte réelle. Données : phrases anglaises
synthétiques dont le nombre de mots suit une loi log-normale proche de celle de dair-ai/emotion
(moyenne ~19 mots, queue jusqu'à ~66).
"""

import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import torch
import transformers
from tabulate import tabulate
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from cpu_share import CpuShare
from fixtures import minilm_dir
from nbtools import notebook_namespace

SEED = 42
N_EXAMPLES = 3000  # jeu complet : part de vrais tokens sur une époque
N_TIMED = 1280  # sous-ensemble chronométré : une époque de 40 pas (tous les méga-lots vus)
BATCH_SIZE = 32
N_LABELS = 6
# log-normale : moyenne ~19, 99e centile ~50
MEDIAN_WORDS, SIGMA_WORDS, MIN_WORDS, MAX_WORDS = 17.0, 0.47, 2, 66
COMPOUND_SHARE = 0.1  # part de mots composés (coupés en plusieurs pièces WordPiece)
TARGET_REAL_SHARE = 0.85
SETTINGS = {
    "fixe (MAX_LENGTH)": ("max_length", "random"),
    "dynamique, ordre aléatoire": ("dynamic", "random"),
    "dynamique, groupé par longueur (notebook)": ("dynamic", "group_by_length"),
}


def common_words(tokenizer, count: int = 8000) -> list:
    """Mots entiers alphabétiques du vocabulaire BERT, dans son ordre (à peu près par fréquence)."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return [word for word, _ in vocab if word.isalpha() and word.isascii() and len(word) > 1][
        :count
    ]


def make_sentence(words: list, weights: np.ndarray, n_words: int, rng: np.random.Generator) -> str:
    """Phrase de n_words mots tirés selon une loi de Zipf, avec quelques mots composés."""
    picked = rng.choice(len(words), size=(n_words, 2), p=weights)
    compound = rng.random(n_words) < COMPOUND_SHARE
    return " ".join(
        words[a] + words[b] if joined else words[a] for (a, b), joined in zip(picked, compound)
    )


def make_frame(tokenizer, n_rows: int, seed: int) -> pd.DataFrame:
    """Jeu synthétique (text, label) à la distribution de longueurs proche de dair-ai/emotion."""
    rng = np.random.default_rng(seed)
    words = common_words(tokenizer)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    counts = np.clip(
        np.rint(rng.lognormal(math.log(MEDIAN_WORDS), SIGMA_WORDS, n_rows)), MIN_WORDS, MAX_WORDS
    )
    texts = [make_sentence(words, weights, int(n), rng) for n in counts]
    return pd.DataFrame({"text": texts, "label": rng.integers(0, N_LABELS, n_rows)})


def choose_max_length(namespace: dict, tokenizer, texts: list) -> tuple[int, np.ndarray]:
    """MAX_LENGTH comme le notebook : 99e centile des longueurs (tokens spéciaux compris), par 8."""
    ids = tokenizer(texts, add_special_tokens=False).input_ids  # comme la section 3 du notebook
    lengths = np.array([len(row) for row in ids]) + tokenizer.num_special_tokens_to_add()
    return int(math.ceil(np.percentile(lengths, 99) / 8) * 8), lengths


def fixed_dataset(namespace: dict, frame: pd.DataFrame, max_length: int):
    """Jeu tokenisé et complété à max_length (remplissage fixe)."""
    encoded = namespace["encoder_tokenizer"](
        frame["text"].tolist(), truncation=True, max_length=max_length, padding="max_length"
    )
    return namespace["datasets"].Dataset.from_dict(
        {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "labels": frame["label"].tolist(),
            "length": [sum(mask) for mask in encoded["attention_mask"]],
        }
    )


def build_dataset(namespace: dict, frame: pd.DataFrame, max_length: int, padding: str):
    """Jeu du réglage : `tokenize` du notebook (dynamique) ou remplissage fixe."""
    if padding == "dynamic":
        return namespace["tokenize"](frame, max_length)
    return fixed_dataset(namespace, frame, max_length)


def bench_arguments(run_dir: str, sampling: str) -> TrainingArguments:
    """Arguments d'entraînement de l'encodeur du notebook (lot, taux, échauffement, CPU fp32)."""
    return TrainingArguments(
        output_dir=run_dir,
        learning_rate=5e-5,
        num_train_epochs=1,
        per_device_train_batch_size=BATCH_SIZE,
        train_sampling_strategy=sampling,
        warmup_steps=0.1,
        weight_decay=0.01,
        use_cpu=True,
        seed=SEED,
        report_to="none",
        dataloader_num_workers=0,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )


class StepTimer(TrainerCallback):
    """Note le début du premier pas et la fin du dernier."""

    def __init__(self):
        self.start = self.end = None
        self.steps = 0

    def on_step_begin(self, args, state, control, **kwargs):
        """Début d'un pas."""
        if self.start is None:
            self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        """Fin d'un pas."""
        self.end = time.perf_counter()
        self.steps += 1


def make_trainer(
    namespace: dict, model, dataset, sampling: str, run_dir: str, callbacks=()
) -> Trainer:
    """Trainer d'un réglage, avec le collateur du notebook (sans affichage des métriques de fin)."""
    trainer = Trainer(
        model=model,
        args=bench_arguments(run_dir, sampling),
        train_dataset=dataset,
        data_collator=namespace["data_collator"],
        processing_class=namespace["encoder_tokenizer"],
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def padding_stats(trainer: Trainer) -> dict:
    """Part de vrais tokens et largeur moyenne des lots sur une époque du chargeur."""
    transformers.set_seed(SEED)
    real = total = examples = 0
    for batch in trainer.get_train_dataloader():
        real += int(batch["attention_mask"].sum())
        total += batch["attention_mask"].numel()
        examples += len(batch["attention_mask"])
    return {"real_share": real / total, "mean_width": total / examples, "tokens": total}


def load_model():
    """MiniLM-L6 pré-entraîné avec une tête de classification à 6 classes (graine fixe)."""
    transformers.set_seed(SEED)
    return AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=N_LABELS)


def timed_epoch(namespace: dict, dataset, sampling: str, run_dir: str) -> dict:
    """Une époque d'entraînement réelle ; débit mesuré du premier au dernier pas."""
    timer = StepTimer()
    trainer = make_trainer(namespace, load_model(), dataset, sampling, run_dir, [timer])
    trainer.train()
    seconds = timer.end - timer.start
    return {"seconds": seconds, "steps": timer.steps, "examples_per_second": len(dataset) / seconds}


def warm_up(namespace: dict, dataset, run_dir: str) -> None:
    """Quelques pas jetables pour que le premier réglage chronométré ne paie pas l'échauffement."""
    trainer = make_trainer(
        namespace, load_model(), dataset.select(range(2 * BATCH_SIZE)), "random", run_dir
    )
    trainer.train()


def describe_data(frame: pd.DataFrame, lengths: np.ndarray, max_length: int) -> None:
    """Affiche la distribution des longueurs du jeu synthétique."""
    words = frame["text"].str.split().str.len()
    print(
        f"Jeu synthétique : {len(frame)} phrases ; mots par texte : moyenne {words.mean():.1f}, "
        f"médiane {words.median():.0f}, 99e centile {words.quantile(0.99):.0f}, max "
        f"{words.max()} ; tokens par mot {(lengths - 2).sum() / words.sum():.2f}."
    )
    print(
        f"MAX_LENGTH choisi comme dans le notebook : {max_length} tokens "
        f"({(lengths > max_length).mean():.2%} des textes tronqués) ; longueur moyenne "
        f"{lengths.mean():.1f} tokens."
    )


def run_settings(namespace: dict, frame: pd.DataFrame, max_length: int, run_dir: str) -> list:
    """Mesure chaque réglage : remplissage sur le jeu complet, débit sur le sous-ensemble."""
    timed_frame = frame.iloc[:N_TIMED].reset_index(drop=True)
    warm_up(namespace, build_dataset(namespace, timed_frame, max_length, "dynamic"), run_dir)
    probe = load_model()  # ne sert qu'à construire les chargeurs
    rows = []
    for name, (padding, sampling) in SETTINGS.items():
        full = build_dataset(namespace, frame, max_length, padding)
        timed = build_dataset(namespace, timed_frame, max_length, padding)
        stats = padding_stats(make_trainer(namespace, probe, full, sampling, run_dir))
        timed_stats = padding_stats(make_trainer(namespace, probe, timed, sampling, run_dir))
        speed = timed_epoch(namespace, timed, sampling, run_dir)
        rows.append({"name": name, **stats, "timed_real_share": timed_stats["real_share"], **speed})
        print(f"  {name} : {speed['steps']} pas en {speed['seconds']:.1f} s")
    return rows


def print_results(rows: list) -> None:
    """Tableau des réglages puis les deux chiffres clés."""
    table = [
        (
            row["name"],
            row["real_share"],
            row["mean_width"],
            row["tokens"],
            row["timed_real_share"],
            row["steps"],
            row["seconds"],
            row["examples_per_second"],
        )
        for row in rows
    ]
    headers = [
        "réglage",
        f"part vrais tokens ({N_EXAMPLES} ex.)",
        "largeur moy. (tokens)",
        "tokens/époque",
        f"part vrais tokens ({N_TIMED} ex.)",
        "pas",
        "durée (s)",
        "ex./s",
    ]
    print(
        tabulate(table, headers=headers, floatfmt=("", ".3f", ".1f", ",", ".3f", "", ".1f", ".1f"))
    )
    fixed, grouped = rows[0], rows[-1]
    verdict = "atteinte" if grouped["real_share"] >= TARGET_REAL_SHARE else "MANQUÉE"
    print(
        f"Part de vrais tokens avec groupement par longueur : {grouped['real_share']:.3f} "
        f"(cible ≥ {TARGET_REAL_SHARE} : {verdict} ; fixe : {fixed['real_share']:.3f})."
    )
    print(
        "Débit d'entraînement groupé / fixe : "
        f"{grouped['examples_per_second'] / fixed['examples_per_second']:.2f}× "
        f"({grouped['examples_per_second']:.1f} contre {fixed['examples_per_second']:.1f} ex./s, "
        f"une seule mesure, CPU {os.cpu_count()} cœurs, {torch.get_num_threads()} fils)."
    )


def main() -> None:
    """Construit les données, mesure les trois réglages et affiche les résultats."""
    start = time.time()
    transformers.logging.set_verbosity_error()
    random.seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    namespace = notebook_namespace(
        encoder_tokenizer=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        ENCODER_BATCH_SIZE=BATCH_SIZE,
        CUDA=False,
        USE_FP16=False,
        USE_BF16=False,
    )
    frame = make_frame(tokenizer, N_EXAMPLES, SEED)
    max_length, lengths = choose_max_length(namespace, tokenizer, frame["text"].tolist())
    describe_data(frame, lengths, max_length)
    load = CpuShare().start()
    with tempfile.TemporaryDirectory(prefix="bench_padding_") as run_dir:
        rows = run_settings(namespace, frame, max_length, run_dir)
    load_report = load.report()
    print_results(rows)
    print(load_report)
    print(f"Durée du script : {time.time() - start:.0f} s.")


if __name__ == "__main__":
    main()
