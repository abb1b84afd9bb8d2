"""Mesure le score des classes du notebook (cache clé-valeur du prompt partagé) contre une notation naïve.

    .venv/bin/python bench/bench_llm_scoring.py

Sur le Llama minuscule des fixtures, chargé en 4 bits par `load_llm_4bit` du notebook (CPU, calcul en fp32), on
note les mêmes ~200 prompts de deux façons : `score_labels` du notebook (une passe sur le prompt, cache répété pour
chaque classe, seconde passe sur les seules réponses) et une référence naïve écrite ici (une passe complète par
chaîne prompt + réponse, par lots de même taille). On vérifie que les scores coïncident, on compte les tokens que
chaque méthode fait passer dans le modèle et on chronomètre les deux.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pandas as pd
import torch
import transformers
from tabulate import tabulate
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cpu_share import CpuShare
from fixtures import make_emotion_csvs, make_tiny_llama
from nbtools import notebook_namespace

N_PROMPTS = 200
REPEATS = 3  # meilleure de trois mesures pour chaque méthode
TOLERANCE = 1e-3


class TokenCounter:
    """Compte, à chaque passe du modèle, les positions calculées et les vrais tokens (hors remplissage)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Remet les compteurs à zéro."""
        self.positions = self.real = self.passes = 0

    def __call__(self, module, args, kwargs) -> None:
        """Crochet avant la passe : lit input_ids et la fin du masque d'attention (les nouveaux tokens)."""
        input_ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        self.positions += input_ids.numel()
        self.real += int(mask[:, -input_ids.shape[1] :].sum())
        self.passes += 1


def load_texts(folder: Path) -> tuple[list, list]:
    """Textes de test non vides des fixtures d'émotions, et noms de classes triés (comme le notebook)."""
    paths = make_emotion_csvs(folder / "data", n_train=240, n_test=N_PROMPTS + 10)
    train = pd.read_csv(paths["train"], keep_default_na=False)
    test = pd.read_csv(paths["test"], keep_default_na=False)
    texts = [text for text in test["phrase"] if text.strip()][:N_PROMPTS]
    return texts, sorted(set(train["emotion"]))


def build_namespace(model_dir: Path, label_names: list) -> dict:
    """Fonctions du notebook avec les variables globales de la section QLoRA (CPU, fp32)."""
    return notebook_namespace(
        CUDA=False,
        LLM_COMPUTE_DTYPE=torch.float32,
        llm_tokenizer=AutoTokenizer.from_pretrained(model_dir),
        LABEL_NAMES=label_names,
        N_LABELS=len(label_names),
    )


def naive_rows(namespace: dict, prompts: list) -> tuple[list, list]:
    """Chaînes complètes prompt + réponse + EOS (une par couple prompt, classe) et début de chaque réponse."""
    encoded = [namespace["encode_answer"](prompt, name) for prompt in prompts for name in namespace["LABEL_NAMES"]]
    return [ids for ids, _ in encoded], [start for _, start in encoded]


@torch.no_grad()
def naive_batch(namespace: dict, model, prompts: list) -> np.ndarray:
    """Référence : une passe complète par chaîne prompt + réponse, somme des log-probabilités de la réponse."""
    rows, starts = naive_rows(namespace, prompts)
    pad_rows, pad = namespace["pad_rows"], namespace["llm_tokenizer"].pad_token_id
    width = max(len(row) for row in rows)
    input_ids = pad_rows(rows, pad, width)
    mask = pad_rows([[1] * len(row) for row in rows], 0, width)
    logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    positions = torch.arange(1, width)[None, :]
    lengths = torch.tensor([len(row) for row in rows])[:, None]
    scored = (positions >= torch.tensor(starts)[:, None]) & (positions < lengths)
    return (log_probs * scored).sum(-1).view(len(prompts), -1).numpy()


def naive_scores(namespace: dict, model, prompts: list) -> np.ndarray:
    """Scores naïfs par lots de LLM_EVAL_BATCH_SIZE prompts triés par longueur, comme `score_labels`."""
    batch_size = namespace["LLM_EVAL_BATCH_SIZE"]
    order = np.argsort([len(prompt) for prompt in prompts], kind="stable")
    scores = np.zeros((len(prompts), namespace["N_LABELS"]))
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        scores[chosen] = naive_batch(namespace, model, [prompts[i] for i in chosen])
    return scores


def best_time(function, repeats: int = REPEATS) -> tuple[float, np.ndarray]:
    """Meilleure durée sur plusieurs appels, et le résultat du dernier."""
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        durations.append(time.perf_counter() - start)
    return min(durations), result


def measure(method, counter: TokenCounter) -> dict:
    """Compte les tokens d'un appel puis chronomètre la méthode."""
    counter.reset()
    scores = method()
    counts = {"positions": counter.positions, "real": counter.real, "passes": counter.passes}
    seconds, _ = best_time(method)
    return {"scores": scores, "seconds": seconds, **counts}


def describe_setup(namespace: dict, model, prompts: list) -> None:
    """Affiche le modèle, les classes et la taille des prompts et réponses."""
    tokenizer = namespace["llm_tokenizer"]
    prompt_lengths = [len(namespace["token_ids"](prompt)) for prompt in prompts]
    answers = {name: tokenizer.tokenize(name) for name in namespace["LABEL_NAMES"]}
    print(
        f"Modèle : Llama minuscule en 4 bits ({model.num_parameters():,} paramètres, "
        f"{model.get_memory_footprint() / 2**20:.2f} Mio) sur CPU, {torch.get_num_threads()} fils."
    )
    print(f"Classes et tokens de réponse : {answers}")
    print(
        f"{len(prompts)} prompts : {np.mean(prompt_lengths):.1f} tokens en moyenne (de {min(prompt_lengths)} à "
        f"{max(prompt_lengths)}) ; lots de {namespace['LLM_EVAL_BATCH_SIZE']} prompts."
    )


def print_results(cached: dict, naive: dict, n_prompts: int) -> None:
    """Tableau des deux méthodes, puis les chiffres clés."""
    rows = [
        (name, run["passes"], run["positions"], run["real"], run["seconds"], n_prompts / run["seconds"])
        for name, run in (("score_labels (cache partagé, notebook)", cached), ("naïf (une passe par chaîne)", naive))
    ]
    headers = ["méthode", "passes", "positions calculées", "vrais tokens", "durée (s)", "prompts/s"]
    print(tabulate(rows, headers=headers, floatfmt=("", "", ",", ",", ".3f", ".1f"), intfmt=","))
    difference = float(np.abs(cached["scores"] - naive["scores"]).max())
    same_choice = float((cached["scores"].argmax(1) == naive["scores"].argmax(1)).mean())
    verdict = "identiques" if difference < TOLERANCE else "DIFFÉRENTS"
    print(
        f"Écart maximal absolu entre les scores : {difference:.2e} (tolérance {TOLERANCE:g} : {verdict}) ; "
        f"même classe prédite pour {same_choice:.1%} des prompts."
    )
    print(
        f"Tokens passés dans le modèle : {cached['positions']:,} positions ({cached['real']:,} vrais tokens) avec "
        f"score_labels contre {naive['positions']:,} ({naive['real']:,}) en naïf, soit "
        f"{naive['positions'] / cached['positions']:.2f}× moins de positions."
    )
    print(
        f"Durée de score_labels : {cached['seconds']:.3f} s contre {naive['seconds']:.3f} s en naïf, soit "
        f"{naive['seconds'] / cached['seconds']:.2f}× plus rapide (meilleure de {REPEATS} mesures, même machine)."
    )


def main() -> None:
    """Construit le modèle et les prompts, mesure les deux méthodes et affiche les résultats."""
    start = time.time()
    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="bench_llm_") as folder:
        texts, label_names = load_texts(Path(folder))
        model_dir = make_tiny_llama(Path(folder) / "llama", extra_texts=texts)
        namespace = build_namespace(model_dir, label_names)
        model = namespace["load_llm_4bit"](str(model_dir))
    namespace["set_pad_token"](namespace["llm_tokenizer"], model)
    model.eval()
    prompts = [namespace["build_prompt"](text) for text in texts]
    describe_setup(namespace, model, prompts)
    counter = TokenCounter()
    model.register_forward_pre_hook(counter, with_kwargs=True)
    namespace["score_labels"](model, prompts[:16])  # échauffement
    load = CpuShare().start()
    cached = measure(lambda: namespace["score_labels"](model, prompts), counter)
    naive = measure(lambda: naive_scores(namespace, model, prompts), counter)
    load_report = load.report()
    print_results(cached, naive, len(prompts))
    print(load_report)
    print(f"Durée du script : {time.time() - start:.0f} s.")


if __name__ == "__main__":
    main()
