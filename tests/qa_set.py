"""Questions about the reference recordings, with the fact a right answer states.

Each entry: (question, the clip that holds the answer or None, facts): an answer is right
when its normalised text holds one of ``facts`` (English, or the original words that a
quote of a foreign recording brings) and it cites that clip; for questions the archive
cannot answer (clip None) the right answer says so and cites nothing. The archive holds the
25 FLEURS clips (English, Spanish, German, French, Portuguese) and jfk.flac as Whisper base
hears them, so each question asks for a fact the transcript holds: where Whisper mishears
the key word ("Kovloom" for Kowloon, "Sky Folding" for scaffolding, "Goat, Fist" for
Goethe, Fichte), the question is about another part of the sentence.
"""

from __future__ import annotations

QA: list[tuple[str, str | None, tuple[str, ...]]] = [
    # English recordings
    ("How long could styles in the west lag behind?", "fleurs-en-000", ("25 to 30",)),
    ("Why could styles in the west lag behind?", "fleurs-en-000", ("slow communication",)),
    (
        "What always begins with a capital letter, even in the middle of a sentence?",
        "fleurs-en-001",
        ("nouns",),
    ),
    ("Who made the town of Sintra famous to foreigners?", "fleurs-en-002", ("byron",)),
    (
        "What does the colour of cabbage juice depend on?",
        "fleurs-en-003",
        ("acidic", "alkaline", "basic"),
    ),
    (
        "Why do many people not think of birds as dinosaurs?",
        "fleurs-en-004",
        ("feathers", "can fly"),
    ),
    ("What did the president ask Americans to do?", "jfk", ("your country",)),
    ("What did Kennedy ask of Americans?", "jfk", ("your country",)),
    ("Which town did Lord Byron make famous?", "fleurs-en-002", ("cintra", "sintra")),
    # Spanish recordings, asked in English
    (
        "What should travellers find out about before their trip?",
        "fleurs-es-000",
        ("weather", "clima", "extreme", "extremo"),
    ),
    ("How can blogs help students?", "fleurs-es-001", ("critical", "criticos", "analytic")),
    ("Where was the funeral held?", "fleurs-es-002", ("peter", "pedro")),
    (
        "Who could not get into the funeral in Saint Peter's Square?",
        "fleurs-es-002",
        ("not everyone", "no todos"),
    ),
    ("How many individual races did Carpanedo take part in?", "fleurs-es-004", ("two", "dos")),
    ("What can we not perceive on the Earth?", "fleurs-es-003", ("movement", "movimiento")),
    # German recordings
    (
        "What should you do for the best views of Hong Kong?",
        "fleurs-de-000",
        ("leave the island", "insel verlassen"),
    ),
    ("Which dinosaur was no match for it?", "fleurs-de-001", ("rex",)),
    (
        "What was drawn on the back of the Declaration of Independence in the film?",
        "fleurs-de-002",
        ("map", "schatzkarte"),
    ),
    (
        "What is completely isolated from the rest of the world?",
        "fleurs-de-004",
        ("hohle", "mountains", "berge"),
    ),
    (
        "Who is still alive after surviving their time there?",
        "fleurs-de-003",
        ("men and women", "manner und frauen"),
    ),
    # French recordings
    ("Where did the accident happen?", "fleurs-fr-000", ("mountainous", "montagneux")),
    ("Whose interests could be better served?", "fleurs-fr-001", ("athletes", "clubs")),
    ("How many people died when the plane hit a wall?", "fleurs-fr-004", ("17",)),
    ("Whose statement did they agree with?", "fleurs-fr-001", ("olympic", "olympique", "usoc")),
    (
        "What should they not be asked to take on?",
        "fleurs-fr-002",
        ("obligations", "responsibilit"),
    ),
    # Portuguese recordings
    ("Who built the great pyramid?", "fleurs-pt-001", ("egyp", "egipcios")),
    (
        "What happened to the car right after the start?",
        "fleurs-pt-002",
        ("lost control", "perdeu o controle"),
    ),
    (
        "What did Romanticism have a large element of?",
        "fleurs-pt-003",
        ("determinism", "determinismo"),
    ),
    ("What did Bieber say about the tragic incident?", "fleurs-pt-000", ("thoughts", "prayers")),
    (
        "Who is the help for, if it is not a learning method?",
        "fleurs-pt-004",
        ("students", "new learning experience"),
    ),
    # Not in the recordings: the right answer says so
    ("What is the boiling point of mercury?", None, ()),
    ("Who won the 1998 football world cup?", None, ()),
    ("What did the lecturer say about neural networks?", None, ()),
    ("How much did the new office building cost?", None, ()),
    ("What is the capital of Australia?", None, ()),
    ("When does the library close on Sundays?", None, ()),
    ("Which programming language did the speaker recommend?", None, ()),
]

# A quick subset for the test suite: every language, and refusals.
QUICK = [QA[i] for i in (0, 3, 11, 16, 21, 27, 31, 32, 34)]
