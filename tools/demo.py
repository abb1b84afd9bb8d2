"""Démonstration hors ligne : tout le notebook sur CPU, avec de minuscules modèles et données.

    .venv/bin/python tools/demo.py [DOSSIER]      # par défaut : outputs/

Construit les fixtures de test (un DistilBERT et un Llama minuscules, un petit CSV d'émotions), puis
lance le notebook avec papermill en pointant dessus. Les chiffres obtenus NE VEULENT RIEN DIRE : la
démonstration vérifie seulement que toutes les sections tournent et écrivent leurs fichiers.
"""

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Réglages qui rendent l'exécution courte sur un CPU à 2 cœurs (quelques minutes).
DEMO_PARAMETERS = {
    "RUN_LLM": True,
    "ENCODER_EPOCHS": 4,
    "ENCODER_MIN_STEPS": 20,
    "ENCODER_BATCH_SIZE": 16,
    "ENCODER_LRS": [5e-3, 1e-2],
    "SCRATCH_LRS": [5e-3, 1e-2],
    "ENCODER_LORA_LRS": [5e-3, 1e-2],
    "ABLATION_TRAIN_EXAMPLES": 120,
    "ABLATION_SEEDS": 3,
    "LEARNING_CURVE_FRACTIONS": [0.25, 0.5],
    "KEYWORDS_PER_CLASS": 2,
    "LLM_TRAIN_EXAMPLES": 160,
    "LLM_EPOCHS": 2,
    "LLM_MIN_STEPS": 20,
    "LLM_LR": 1e-2,
    "LLM_BATCH_SIZE": 16,
    "LLM_VAL_EXAMPLES": 24,
}


def run_demo(output_root: Path) -> float:
    """Construit les fixtures, exécute le notebook et renvoie la durée totale en secondes."""
    import papermill
    from fixtures import build_all

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.time()
    output_root = output_root.resolve()
    parameters = build_all(output_root / "demo_fixtures")
    parameters.update(DEMO_PARAMETERS)
    parameters.update(OUTPUT_DIR=str(output_root), FIGURES_DIR=str(output_root / "figures"))
    papermill.execute_notebook(
        str(ROOT / "finetuning-projet.ipynb"),
        str(output_root / "finetuning-projet-demo.ipynb"),
        parameters=parameters,
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
    )
    return time.time() - start


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "outputs")
    seconds = run_demo(folder)
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    print(f"Démonstration terminée en {seconds:.0f} s : {folder / 'finetuning-projet-demo.ipynb'}")
    print(f"Modèles évalués : {', '.join(metrics['runs'])}")
    print(
        "⚠️ Modèles et données minuscules : ces chiffres ne mesurent rien, seule la chaîne "
        "complète est vérifiée."
    )
