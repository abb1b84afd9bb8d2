"""Les fonctions LLM du notebook sur un vrai LLM pré-entraîné : le score des classes est exact, et
QLoRA apprend une tâche que ce LLM ne résout pas sans entraînement.

Le modèle : SmolLM2-135M-Instruct (architecture Llama, construit hors Hub par `tests/smollm.py`),
chargé en 4 bits NF4 sur CPU par les fonctions du notebook (`load_llm`, `add_lora`, `build_prompt`,
`encode_example`, `score_labels`), avec le collateur de l'entraînement du notebook
(`DataCollatorForSeq2Seq`, étiquettes de remplissage à -100).

La tâche : le thème d'une phrase (animaux, nourriture, sport) annoncé par un nom de couleur
arbitraire (blue, red, green). Les phrases ne diffèrent que par le mot du thème, glissé dans des
gabarits neutres ; le test n'emploie que des mots et des gabarits absents de l'entraînement. Sans
entraînement, rien ne relie un thème à sa couleur : le modèle est au niveau du hasard (1/3). Après
QLoRA, seule la connaissance du langage acquise au pré-entraînement (une girafe est un animal, le
cricket un sport) permet de généraliser aux mots inédits ; un modèle aléatoire ou un apprentissage
par cœur des mots d'entraînement échouerait.
"""

import numpy as np
import pytest
import torch
from nbtools import cpu_llm_namespace
from smollm import SmolLMUnavailable, smollm2_path
from test_notebook_functions import brute_force_scores
from transformers import AutoTokenizer, DataCollatorForSeq2Seq

# Thème → (mots d'entraînement, mots réservés au test).
TOPICS = {
    "animals": (
        ["dogs", "cats", "horses", "cows", "rabbits", "lions", "wolves", "sheep", "ducks",
         "tigers", "bears", "foxes"],
        ["giraffes", "penguins", "elephants", "zebras", "owls", "dolphins", "squirrels", "camels"],
    ),
    "food": (
        ["bread", "cheese", "pasta", "soup", "rice", "pizza", "apples", "cake", "butter",
         "noodles", "potatoes", "cookies"],
        ["pancakes", "carrots", "sausages", "yogurt", "omelettes", "salad", "chocolate", "burgers"],
    ),
    "sports": (
        ["tennis", "football", "golf", "boxing", "hockey", "baseball", "cycling", "rugby",
         "skiing", "volleyball", "wrestling", "rowing"],
        ["basketball", "cricket", "badminton", "fencing", "surfing", "marathons", "karate",
         "snowboarding"],
    ),
}
LABEL_OF_TOPIC = {"animals": "blue", "food": "red", "sports": "green"}  # sans lien avec les thèmes
LABELS = list(LABEL_OF_TOPIC.values())
TRAIN_TEMPLATES = [
    "She kept talking about {w}.",
    "My notes today were all about {w}.",
    "Everyone at dinner discussed {w}.",
    "He wrote a long poem about {w}.",
    "I read a book on {w} last week.",
    "We argued about {w} for hours.",
    "The class spent the morning on {w}.",
    "Her new blog is mostly about {w}.",
]
TEST_TEMPLATES = ["The documentary focused on {w}.", "My grandfather loves {w}.",
                  "The podcast this week covered {w}."]
PROMPT_TEMPLATE = "Text: {text}\nAnswer ({labels}):"  # court : le coût d'un pas suit les tokens

SEED = 0
STEPS = 40
BATCH_SIZE = 8
LEARNING_RATE = 2e-3
MARGIN = 0.25  # gain d'exactitude exigé sur le zéro-shot


def sentences(templates: list, which: int) -> list:
    """(phrase, classe) pour chaque thème, mot (0 : entraînement, 1 : test) et gabarit."""
    return [
        (template.format(w=word), LABEL_OF_TOPIC[topic])
        for topic, words in TOPICS.items()
        for word in words[which]
        for template in templates
    ]


@pytest.fixture(scope="module")
def smollm2():
    """Dossier transformers de SmolLM2-135M-Instruct (construit au premier passage, puis lu dans
    le cache)."""
    try:
        return smollm2_path()
    except SmolLMUnavailable as error:
        pytest.fail(str(error), pytrace=False)


def smollm2_namespace(smollm2, labels: list) -> dict:
    """Fonctions LLM du notebook réglées pour SmolLM2 sur CPU, et le modèle chargé en 4 bits."""
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # SmolLM2 livre pad = eos
    ns = cpu_llm_namespace(tokenizer, labels, PROMPT_TEMPLATE=PROMPT_TEMPLATE)
    ns["llm"] = ns["load_llm"](str(smollm2))
    assert tokenizer.pad_token_id != tokenizer.eos_token_id  # load_llm en a choisi un autre
    assert ns["llm"].config.pad_token_id == tokenizer.pad_token_id
    return ns


def test_score_labels_equals_a_brute_force_computation_on_smollm2(smollm2):
    labels = [*LABELS, "magenta"]  # « magenta » : deux tokens chez SmolLM2
    ns = smollm2_namespace(smollm2, labels)
    tokenizer, model = ns["llm_tokenizer"], ns["llm"]
    assert len(tokenizer(" magenta", add_special_tokens=False).input_ids) >= 2
    long_text = ("The podcast this week covered long and winding stories about pancakes, "
                 "badminton tournaments and the camels of the desert.")
    texts = ["I like giraffes.", "NA", long_text]
    prompts = [ns["build_prompt"](text) for text in texts]
    for eos in (True, False):
        scores = ns["score_labels"](model, prompts, eos=eos, batch_size=2)
        expected = np.array([brute_force_scores(model, tokenizer, prompt, labels, eos)
                             for prompt in prompts])
        np.testing.assert_allclose(scores, expected, atol=2e-4, rtol=1e-4)


def accuracy(ns, model, examples: list) -> float:
    """Exactitude de la classe de meilleur score (fonction `score_labels` du notebook)."""
    scores = ns["score_labels"](model, [ns["build_prompt"](text) for text, _ in examples])
    truth = np.array([LABELS.index(label) for _, label in examples])
    return float((scores.argmax(axis=1) == truth).mean())


def test_qlora_learns_on_a_real_pretrained_llm_what_it_cannot_do_zero_shot(smollm2):
    ns = smollm2_namespace(smollm2, LABELS)
    model = ns["llm"]
    quantized = sum(p.__class__.__name__ == "Params4bit" for p in model.parameters())
    assert quantized == 7 * model.config.num_hidden_layers

    train, test = sentences(TRAIN_TEMPLATES, 0), sentences(TEST_TEMPLATES, 1)
    assert not {text for text, _ in train} & {text for text, _ in test}
    zero_shot = accuracy(ns, model, test)

    torch.manual_seed(SEED)
    model = ns["add_lora"](model)
    examples = [ns["encode_example"](ns["build_prompt"](text), label) for text, label in train]
    collator = DataCollatorForSeq2Seq(ns["llm_tokenizer"], label_pad_token_id=-100)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(SEED)
    order, losses = [], []
    model.train()
    for _ in range(STEPS):
        if len(order) < BATCH_SIZE:  # nouvelle époque, nouvel ordre
            order += torch.randperm(len(examples), generator=generator).tolist()
        batch = collator([examples[i] for i in order[:BATCH_SIZE]])
        order = order[BATCH_SIZE:]
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    qlora = accuracy(ns, model, test)

    summary = (f"SmolLM2-135M, {len(test)} phrases de test : exactitude zéro-shot {zero_shot:.3f}, "
               f"après QLoRA {qlora:.3f} ; pertes {[round(x, 2) for x in losses]}")
    print(summary)  # visible avec pytest -s ou -rA
    assert zero_shot < 0.5, summary  # la tâche n'est pas résolue sans entraînement
    assert qlora >= zero_shot + MARGIN, summary
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10]), summary
