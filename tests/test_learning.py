"""Le notebook apprend vraiment, et le pré-entraînement compte.

Jeu « synonymes » : les textes de test n'emploient que des synonymes des mots-indices du train ; seul un encodeur
pré-entraîné (MiniLM) peut généraliser. Même architecture initialisée au hasard : elle ne le peut pas.
"""

import json

import pytest
from conftest import execute_notebook


@pytest.mark.parametrize("seed", [1, 2])
def test_pretraining_beats_random_init_and_the_majority_class(tmp_path, manifest, seed):
    parameters = {
        "DATA_FILES": manifest["synonym_files"],
        "ENCODER_MODEL": manifest["pretrained_encoder"],
        "RUN_LLM": False,
        "RUN_ABLATIONS": False,
        "ENCODER_EPOCHS": 4,
        "ENCODER_BATCH_SIZE": 16,
        "ENCODER_LR": 1e-4,
        "SCRATCH_LRS": [1e-4],
        "ENCODER_LORA_LRS": [1e-3],
        "ENCODER_MIN_STEPS": 0,
        "LLM_TRAIN_EXAMPLES": 32,
        "SEED": seed,
    }
    execute_notebook(tmp_path, **parameters)
    runs = json.loads((tmp_path / "outputs" / "metrics.json").read_text(encoding="utf-8"))["runs"]
    finetuned, scratch, majority = runs["encoder_finetuned"], runs["encoder_scratch"], runs["majority_class"]
    assert finetuned["accuracy"] >= majority["accuracy"] + 0.3, (finetuned["accuracy"], majority["accuracy"])
    assert finetuned["macro_f1"] >= scratch["macro_f1"] + 0.2, (finetuned["macro_f1"], scratch["macro_f1"])
