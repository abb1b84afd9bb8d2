"""Le notebook apprend vraiment, et le pré-entraînement compte.

Jeu « synonymes » : les textes de test n'emploient que des synonymes des mots-indices du train ;
seul un encodeur pré-entraîné (MiniLM) peut généraliser. La même architecture initialisée au hasard
ne le peut pas. Les chiffres obtenus sont affichés (pytest -rA) pour suivre leur évolution.
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
        "ENCODER_LRS": [1e-4],
        "SCRATCH_LRS": [1e-4],
        "ENCODER_LORA_LRS": [1e-3],
        "ENCODER_MIN_STEPS": 0,
        "LLM_TRAIN_EXAMPLES": 32,
        "SEED": seed,
    }
    execute_notebook(tmp_path, **parameters)
    metrics = json.loads((tmp_path / "outputs" / "metrics.json").read_text(encoding="utf-8"))
    runs = metrics["runs"]
    finetuned, scratch = runs["encoder_finetuned"], runs["encoder_scratch"]
    majority, tfidf = runs["majority_class"], runs["tfidf_logreg"]
    print(
        f"graine {seed} : encoder_finetuned exactitude {finetuned['accuracy']:.3f}, "
        f"F1 macro {finetuned['macro_f1']:.3f} ; encoder_scratch F1 macro "
        f"{scratch['macro_f1']:.3f} ; majority_class exactitude {majority['accuracy']:.3f}, "
        f"F1 macro {majority['macro_f1']:.3f} ; tfidf_logreg F1 macro {tfidf['macro_f1']:.3f} "
        f"(C = {tfidf['choice']['C']})"
    )
    assert finetuned["accuracy"] >= majority["accuracy"] + 0.3
    assert finetuned["macro_f1"] >= scratch["macro_f1"] + 0.2
    assert tfidf["at_edge"] is False, tfidf["choice"]  # la grille du TF-IDF a été assez large
