"""Intent recognition across five languages, table-driven."""

from __future__ import annotations

import pytest

from tests.intent_phrasings import ORDINARY, PAINT, PHRASINGS, QUESTION, VOICES, judge, say
from voiceflow.intents import IntentRecognizer, normalize
from voiceflow.speech.audio import load_audio

# (language, text, English translation or None, intent or None, expected prompt words)
CASES = [
    ("en", "Generate a painting of a lighthouse at dawn.", None, "paint", "a lighthouse at dawn"),
    ("en", "Generator painting of a lighthouse at dawn", None, "paint", "a lighthouse at dawn"),
    (
        "en",
        "Please make a picture of two cats playing chess!",
        None,
        "paint",
        "two cats playing chess",
    ),
    (
        "en",
        "Draw me an image of a red bicycle in the rain.",
        None,
        "paint",
        "a red bicycle in the rain",
    ),
    (
        "en",
        "Can you create an illustration of a dragon over Paris?",
        None,
        "paint",
        "a dragon over paris",
    ),
    ("en", "Paint a sunset over the ocean.", None, "paint", "a sunset over the ocean"),
    ("en", "CREATE A PHOTO OF A MOUNTAIN LAKE", None, "paint", "a mountain lake"),
    ("en", "Show me a drawing of an old castle.", None, "paint", "an old castle"),
    (
        "es",
        "Genera una pintura de un faro al amanecer.",
        "Generate a painting of a lighthouse at dawn.",
        "paint",
        "a lighthouse at dawn",
    ),
    (
        "es",
        "Dibújame una imagen de un gato negro.",
        "Draw me a picture of a black cat.",
        "paint",
        "a black cat",
    ),
    (
        "es",
        "Crea un cuadro de un bosque nevado.",
        "Create a painting of a snowy forest.",
        "paint",
        "a snowy forest",
    ),
    (
        "es",
        "Pinta una casa roja junto al río.",
        "Paint a red house by the river.",
        "paint",
        "a red house by the river",
    ),
    (
        "de",
        "Erstelle ein Bild von einem Leuchtturm im Morgengrauen.",
        "Create a picture of a lighthouse at dawn.",
        "paint",
        "a lighthouse at dawn",
    ),
    (
        "de",
        "Male mir ein Gemälde von einem Segelboot.",
        "Paint me a painting of a sailboat.",
        "paint",
        "a sailboat",
    ),
    (
        "de",
        "Zeichne eine Katze auf dem Dach.",
        "Draw a cat on the roof.",
        "paint",
        "a cat on the roof",
    ),
    (
        "fr",
        "Génère une image d'un phare à l'aube.",
        "Generate an image of a lighthouse at dawn.",
        "paint",
        "a lighthouse at dawn",
    ),
    ("fr", "Dessine-moi un mouton.", "Draw me a sheep.", "paint", "a sheep"),
    (
        "fr",
        "Fais une peinture de la tour Eiffel la nuit.",
        "Make a painting of the Eiffel Tower at night.",
        "paint",
        "the eiffel tower at night",
    ),
    (
        "pt",
        "Gere uma imagem de um farol ao amanhecer.",
        "Generate an image of a lighthouse at dawn.",
        "paint",
        "a lighthouse at dawn",
    ),
    (
        "pt",
        "Desenhe um cachorro na praia.",
        "Draw a dog on the beach.",
        "paint",
        "a dog on the beach",
    ),
    (
        "pt",
        "Crie uma pintura de uma floresta tropical.",
        "Create a painting of a tropical forest.",
        "paint",
        "a tropical forest",
    ),
    # Loose translation: the English prompt is the whole translation.
    (
        "es",
        "Genera una imagen de un dragón azul.",
        "A blue dragon, please.",
        "paint",
        "a blue dragon please",
    ),
    ("en", "What did the lecturer say about neural networks?", None, "question", None),
    ("en", "Ask the archive about the budget for next year.", None, "question", None),
    ("en", "What was said in the meeting about hiring?", None, "question", None),
    ("en", "How did the professor explain gradient descent?", None, "question", None),
    ("en", "Which lecture covered photosynthesis?", None, "question", None),
    ("en", "Search for the part about the deadline.", None, "question", None),
    (
        "es",
        "¿Qué dijo el profesor sobre la fotosíntesis?",
        "What did the teacher say about photosynthesis?",
        "question",
        None,
    ),
    (
        "es",
        "Pregunta sobre el presupuesto del próximo año.",
        "Ask about next year's budget.",
        "question",
        None,
    ),
    (
        "de",
        "Was hat die Professorin über Quantenphysik gesagt?",
        "What did the professor say about quantum physics?",
        "question",
        None,
    ),
    (
        "de",
        "Worüber wurde in der Besprechung gesprochen?",
        "What was discussed in the meeting?",
        "question",
        None,
    ),
    (
        "fr",
        "Qu'est-ce que le professeur a dit sur la photosynthèse ?",
        "What did the teacher say about photosynthesis?",
        "question",
        None,
    ),
    (
        "fr",
        "De quoi a-t-on parlé pendant la réunion ?",
        "What was talked about in the meeting?",
        "question",
        None,
    ),
    (
        "pt",
        "O que o professor disse sobre a fotossíntese?",
        "What did the teacher say about photosynthesis?",
        "question",
        None,
    ),
    (
        "pt",
        "Pergunte sobre o orçamento do próximo ano.",
        "Ask about next year's budget.",
        "question",
        None,
    ),
    ("en", "Turn on the living room light.", None, None, None),
    ("en", "The meeting is moved to Thursday afternoon.", None, None, None),
    (
        "en",
        "And so my fellow Americans, ask not what your country can do for you.",
        None,
        None,
        None,
    ),
    ("en", "I painted the fence yesterday.", None, None, None),
    ("de", "Schalte das Wohnzimmerlicht ein.", "Turn on the living room light.", None, None),
    ("es", "Enciende la luz del salón.", "Turn on the living room light.", None, None),
    ("fr", "Il fait beau aujourd'hui.", "The weather is nice today.", None, None),
    ("pt", "Vou comprar pão amanhã.", "I will buy bread tomorrow.", None, None),
    (
        "es",
        "Mañana tenemos una reunión importante.",
        "Tomorrow we have an important meeting.",
        None,
        None,
    ),
]


@pytest.fixture(scope="module")
def recognizer():
    return IntentRecognizer.from_file()


def test_table_is_large_enough():
    assert len(CASES) >= 40
    assert {c[0] for c in CASES} == {"en", "es", "de", "fr", "pt"}


def test_at_least_95_percent_recognised(recognizer):
    wrong = []
    for lang, text, english, intent, prompt in CASES:
        match = recognizer.recognize(text, lang, english)
        got = match.intent if match else None
        ok = got == intent
        if ok and prompt is not None:
            ok = match is not None and normalize(match.args["prompt"]) == prompt
        if not ok:
            wrong.append((text, got, match.args if match else None))
    assert len(wrong) <= len(CASES) * 0.05, wrong


def test_non_english_prompt_keeps_the_original_too(recognizer):
    m = recognizer.recognize(
        "Genera una pintura de un faro al amanecer.",
        "es",
        "Generate a painting of a lighthouse at dawn.",
    )
    assert m is not None and m.args["prompt"] == "a lighthouse at dawn"
    assert m.args["prompt_original"] == "un faro al amanecer"


def test_normalize_strips_case_accents_and_punctuation():
    assert normalize("¿Qué DIJO, el   profesor?") == "que dijo el profesor"
    assert normalize("Génère l'image!") == "genere l image"


# -- by meaning: held-out phrasings (tests/intent_phrasings.py; bench/intents.py) ---------
def test_held_out_phrasings_are_understood_by_meaning(recognizer):
    assert len(PAINT) + len(QUESTION) >= 100 and len(ORDINARY) >= 50
    assert {p[0] for p in PHRASINGS} == {"en", "es", "de", "fr", "pt"}
    judged = [judge(recognizer, p) for p in PHRASINGS]
    wrong = [(j.said, j.got, j.argument) for j in judged if not j.right]
    assert len(wrong) <= 0.05 * len(PHRASINGS), wrong
    assert sum(j.false_action for j in judged) <= 0.01 * len(ORDINARY), wrong
    commands = [j for j in judged if j.expected is not None]
    misread = [(j.said, j.argument) for j in commands if not j.argument_right]
    assert len(misread) <= 0.05 * len(commands), misread


def test_the_commands_that_used_to_route_nowhere(recognizer):
    paint = recognizer.recognize("Paint me a watercolour of a Japanese garden in spring.")
    assert paint is not None and paint.intent == "paint"
    assert paint.args["prompt"] == "a watercolour of a japanese garden in spring"
    ask = recognizer.recognize("Ask my lectures: who built the great pyramid?")
    assert ask is not None and ask.args == {"question": "who built the great pyramid"}
    by_meaning = recognizer.recognize("Can I get a picture of a snowy village?")
    assert by_meaning is not None and by_meaning.args["prompt"] == "a snowy village"
    assert recognizer.by_pattern("Can I get a picture of a snowy village?") is None


def test_ordinary_speech_near_a_command_stays_ordinary(recognizer):
    for text in (
        "Could you draw the curtains, please?",
        "The meeting is moved to Thursday afternoon.",
        "I painted the fence yesterday and it already needs another coat.",
        "What time is it?",
        "I think they are said to be the best in town.",
        "The kids are saying it is too cold outside.",
    ):
        assert recognizer.recognize(text) is None, text
    for text, lang in (  # a question word inside a statement is no question
        ("Creo que dijo la verdad.", "es"),
        ("Ich glaube, was er gesagt hat, stimmt.", "de"),
        ("Je pense que tout le monde en parle.", "fr"),
        ("Acho que ele disse a verdade.", "pt"),
    ):
        assert recognizer.by_pattern(text, lang) is None, text


def test_a_table_without_examples_matches_patterns_only(tmp_path):
    table = tmp_path / "lights.yaml"
    table.write_text('intents: {lights: {en: ["turn (?P<state>on|off) the light"]}}\n')
    r = IntentRecognizer.from_file(table)
    assert not r.understands_meaning
    assert r.recognize("Turn on the light")
    assert r.recognize("Could you switch the lamp on?") is None


@pytest.mark.slow
def test_spoken_phrasings_through_whisper(recognizer, faster_base, tmp_path):
    """Said by espeak-ng, heard by Whisper base with its mistakes, translated as the speech
    node translates for the intent node: every third English command, every other ordinary
    English sentence and every fourth ordinary sentence of the other four languages
    (espeak's other voices are too hard for Whisper base to hear for their commands to be a
    fair test of recognition, and their sentences fall back through every temperature when
    translated; bench/intents.py reports every phrasing)."""
    english_commands = [p for p in PHRASINGS if p[0] == "en" and p[3] is not None]
    ordinary = [p for p in PHRASINGS if p[3] is None]
    foreign = [p for p in ordinary if p[0] != "en"]
    plain_english = [p for p in ordinary if p[0] == "en"]
    chosen = english_commands[::3] + plain_english[::2] + foreign[::4]
    judged = []
    for i, p in enumerate(chosen):
        wav = say(p[1], p[0], tmp_path / f"{i}.wav")
        heard = faster_base.transcribe(wav, languages=list(VOICES))
        if heard.language != "en":
            heard = faster_base.add_translation(load_audio(wav), heard)
        judged.append(judge(recognizer, p, heard.text, heard.language, heard.translation))
    false_actions = [(j.said, j.heard, j.english, j.got) for j in judged if j.false_action]
    assert not false_actions
    # Most English misses are espeak speech Whisper mishears ("Illustrate a dragon" heard as
    # "It was straight on Ragnarding"); 82 % of all English phrasings measured, written 98 %.
    english = [j for j in judged if j.language == "en"]
    wrong = [(j.said, j.heard, j.got) for j in english if not j.right]
    assert len(wrong) <= 0.25 * len(english), wrong
