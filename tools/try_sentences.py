"""Classe de nouvelles phrases avec les modèles sauvegardés par le notebook, sans rien réentraîner.

    .venv/bin/python tools/try_sentences.py outputs "I finally got the job!" "I heard a noise in the dark."

C'est la section 8 du notebook (« Essayez vos propres phrases ») lancée seule, par exemple dans une nouvelle
session : les classes sont relues dans OUTPUT_DIR/metrics.json, les modèles dans OUTPUT_DIR/models/, et les
prédictions viennent de la fonction `demo_predictions` du notebook lui-même (extraite comme dans les tests).
TinyLlama affiné n'est rechargé que si son adaptateur existe et qu'un GPU CUDA est là (ou avec --llm).
"""

import json
import sys
from pathlib import Path

import torch
import transformers
from tabulate import tabulate
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]

from nbtools import notebook_namespace  # noqa: E402


def predict(output_dir: Path, texts: list, with_llm: bool | None = None) -> list:
    """Prédictions de chaque modèle sauvegardé : [{text, predictions: {modèle: {label, confidence}}}]."""
    metrics = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
    labels = metrics["dataset"]["label_names"]
    adapter = output_dir / "models" / "llm_qlora" / "adapter_config.json"
    cuda = torch.cuda.is_available()
    with_llm = adapter.exists() and (cuda if with_llm is None else with_llm)
    overrides = {
        "OUTPUT": output_dir,
        "LABEL_NAMES": labels,
        "N_LABELS": len(labels),
        "CUDA": cuda,
        "RUN_LLM_SECTION": with_llm,
        "LLM_COMPUTE_DTYPE": torch.float16 if cuda else torch.float32,
        "TEXT_TOKEN_BUDGET": 256,
        "ENCODER_MAX_LENGTH": metrics["runs"]["encoder_finetuned"]["max_length"],
    }
    if with_llm:
        base = json.loads(adapter.read_text(encoding="utf-8"))["base_model_name_or_path"]
        template = metrics["runs"].get("llm_qlora", {}).get("prompt_template")
        overrides.update(LLM_MODEL=base, llm_tokenizer=AutoTokenizer.from_pretrained(base))
        if template:
            overrides["PROMPT_TEMPLATE"] = template
    return notebook_namespace(**overrides)["demo_predictions"](texts)


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
        [row["text"], *(f"{p['label']} ({p['confidence']:.2f})" for p in row["predictions"].values())] for row in table
    ]
    print(tabulate(rows, headers=["phrase", *runs], maxcolwidths=[50] + [None] * len(runs)))


if __name__ == "__main__":
    main(sys.argv[1:])
