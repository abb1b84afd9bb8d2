"""Classe de nouvelles phrases avec les modèles sauvegardés par le notebook, sans rien réentraîner.

    .venv/bin/python tools/try_sentences.py outputs "I finally got the job!" "I heard a noise."

C'est la section 8 du notebook (« Essayez vos propres phrases ») lancée seule, par exemple dans une
nouvelle session : les classes et les réglages sont relus dans OUTPUT_DIR/metrics.json, les modèles
dans OUTPUT_DIR/models/, et les prédictions viennent des fonctions `load_saved_models` et `classify`
du notebook lui-même (extraites comme dans les tests, par tools/nbtools.py). TinyLlama affiné n'est
rechargé que si son adaptateur existe et qu'un GPU CUDA est là (ou avec --llm).
"""

import json
import sys
from pathlib import Path

import torch
import transformers
from tabulate import tabulate
from transformers import AutoTokenizer

from nbtools import notebook_namespace  # tools/ : le dossier du script


def saved_namespace(output_dir: Path, with_llm: bool | None = None) -> dict:
    """Espace de noms du notebook réglé sur une exécution passée, modèles sauvegardés chargés."""
    metrics = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
    labels = metrics["dataset"]["label_names"]
    adapter = output_dir / "models" / "llm_qlora" / "adapter_config.json"
    cuda = torch.cuda.is_available()
    with_llm = adapter.exists() and (cuda if with_llm is None else with_llm)
    bf16 = cuda and torch.cuda.get_device_capability()[0] >= 8  # comme la section 1
    overrides = {
        "OUTPUT": output_dir,
        "LABEL_NAMES": labels,
        "N_LABELS": len(labels),
        "LABEL_IDS": list(range(len(labels))),
        "LABEL_TO_ID": {name: i for i, name in enumerate(labels)},
        "CUDA": cuda,
        "USE_BF16": bf16,
        "USE_FP16": cuda and not bf16,
        "RUN_LLM_SECTION": with_llm,
        "LLM_DTYPE": torch.bfloat16 if bf16 else torch.float16 if cuda else torch.float32,
        "ENCODER_MAX_LENGTH": metrics["dataset"]["tokens"]["encoder_max_length"],
    }
    qlora = metrics["runs"].get("llm_qlora", {})
    if with_llm:
        base = json.loads(adapter.read_text(encoding="utf-8"))["base_model_name_or_path"]
        overrides.update(LLM_MODEL=base, llm_tokenizer=AutoTokenizer.from_pretrained(base))
        if qlora.get("prompt_template"):
            overrides["PROMPT_TEMPLATE"] = qlora["prompt_template"]
    ns = notebook_namespace(**overrides)
    if with_llm:  # le budget du texte calculé par le notebook (section 6.2)
        ns["TEXT_TOKEN_BUDGET"] = qlora["text_token_budget"]
    ns["saved_models"] = ns["load_saved_models"]()
    return ns


def predict(output_dir: Path, texts: list, with_llm: bool | None = None) -> list:
    """Prédictions de chaque modèle sauvegardé : [{text, predictions: {modèle: {label, ...}}}]."""
    return saved_namespace(Path(output_dir), with_llm)["classify"](list(texts))


def main(arguments: list) -> None:
    """Affiche le tableau phrase × modèle."""
    with_llm = True if "--llm" in arguments else None
    arguments = [argument for argument in arguments if argument != "--llm"]
    if len(arguments) < 2:
        sys.exit(__doc__)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    table = predict(Path(arguments[0]), arguments[1:], with_llm)
    runs = list(table[0]["predictions"])
    rows = [
        [
            row["text"],
            *(f"{p['label']} ({p['confidence']:.2f})" for p in row["predictions"].values()),
        ]
        for row in table
    ]
    print(tabulate(rows, headers=["phrase", *runs], maxcolwidths=[50] + [None] * len(runs)))


if __name__ == "__main__":
    main(sys.argv[1:])
