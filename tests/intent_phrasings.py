"""Held-out phrasings for intent recognition: commands as people say them, and ordinary
speech that must stay ordinary. None of these is an example in voiceflow/intents.yaml.

Each entry: (language, text, English as Whisper's translation gives it or None for English,
intent or None, a word the extracted argument must hold or None). Some texts carry
Whisper's own mistakes (a dropped article, "generator" for "generate", split words).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Phrasing = tuple[str, str, str | None, str | None, str | None]

# One phrasing a line reads best as a table.
# fmt: off

PAINT: list[Phrasing] = [
    # English
    ("en", "Paint me a watercolour of a Japanese garden in spring.", None, "paint", "garden"),
    ("en", "Could you sketch a fox sleeping under a tree?", None, "paint", "fox"),
    ("en", "I'd like an oil painting of a harbour at night.", None, "paint", "harbour"),
    ("en", "Make me a poster with a rocket flying to the moon.", None, "paint", "rocket"),
    ("en", "Draw a robot reading a newspaper.", None, "paint", "robot"),
    ("en", "Can I get a picture of a snowy village?", None, "paint", "village"),
    ("en", "Generator picture of a cat wearing a hat.", None, "paint", "cat"),
    ("en", "Create an image showing a castle in the clouds.", None, "paint", "castle"),
    ("en", "Show me what a purple elephant would look like.", None, "paint", "elephant"),
    ("en", "Render a futuristic city skyline at sunset.", None, "paint", "city"),
    ("en", "Illustrate a dragon guarding a pile of gold.", None, "paint", "dragon"),
    ("en", "Please produce a portrait of an old fisherman.", None, "paint", "fisherman"),
    ("en", "I want a drawing of two horses running on a beach.", None, "paint", "horses"),
    ("en", "Design a logo with a mountain and a river.", None, "paint", "mountain"),
    ("en", "Visualise a forest made of glass.", None, "paint", "forest"),
    ("en", "Give me an illustration of a whale in space.", None, "paint", "whale"),
    ("en", "Paint the Eiffel tower in the style of Van Gogh.", None, "paint", "eiffel"),
    ("en", "Draw for me a small boat on a calm lake.", None, "paint", "boat"),
    ("en", "Make a picture. A red bicycle leaning on a wall.", None, "paint", "bicycle"),
    ("en", "Can you generate an image of a lighthouse in a storm?", None, "paint", "lighthouse"),
    ("en", "Imagine a tiger made of flowers and paint it.", None, "paint", "tiger"),
    ("en", "Sketch out a cozy cabin in the woods for me.", None, "paint", "cabin"),
    # Spanish
    ("es", "Píntame una acuarela de un jardín japonés.", "Paint me a watercolor of a Japanese garden.", "paint", "garden"),
    ("es", "Hazme un dibujo de un perro jugando en la nieve.", "Make me a drawing of a dog playing in the snow.", "paint", "dog"),
    ("es", "Quiero una imagen de un volcán al atardecer.", "I want an image of a volcano at sunset.", "paint", "volcano"),
    ("es", "¿Puedes dibujar un barco pirata?", "Can you draw a pirate ship?", "paint", "ship"),
    ("es", "Crea un retrato de una reina medieval.", "Create a portrait of a medieval queen.", "paint", "queen"),
    ("es", "Genera una ilustración de un bosque encantado.", "Generate an illustration of an enchanted forest.", "paint", "forest"),
    ("es", "Dibuja un gato durmiendo en el sofá.", "Draw a cat sleeping on the sofa.", "paint", "cat"),
    ("es", "Me gustaría un cuadro de una playa tropical.", "I would like a painting of a tropical beach.", "paint", "beach"),
    ("es", "Pinta un tren atravesando las montañas.", "Paint a train crossing the mountains.", "paint", "train"),
    ("es", "Muéstrame cómo sería una ciudad bajo el mar.", "Show me what a city under the sea would look like.", "paint", "city"),
    ("es", "Hazme una foto de un astronauta en Marte.", "Make me a photo of an astronaut on Mars.", "paint", "astronaut"),
    # German
    ("de", "Male mir ein Aquarell von einem Leuchtturm.", "Paint me a watercolor of a lighthouse.", "paint", "lighthouse"),
    ("de", "Zeichne einen Drachen über einer Burg.", "Draw a dragon over a castle.", "paint", "dragon"),
    ("de", "Kannst du ein Bild von einem Wald im Herbst machen?", "Can you make a picture of a forest in autumn?", "paint", "forest"),
    ("de", "Erstelle eine Illustration von einem Roboter.", "Create an illustration of a robot.", "paint", "robot"),
    ("de", "Ich hätte gern ein Gemälde von einem Segelboot.", "I would like a painting of a sailboat.", "paint", "sailboat"),
    ("de", "Mal bitte eine Katze mit Sonnenbrille.", "Please paint a cat with sunglasses.", "paint", "cat"),
    ("de", "Generiere ein Bild von einer Stadt bei Nacht.", "Generate a picture of a city at night.", "paint", "city"),
    ("de", "Zeig mir ein Bild von einem fliegenden Wal.", "Show me a picture of a flying whale.", "paint", "whale"),
    ("de", "Skizziere ein Haus am See.", "Sketch a house by the lake.", "paint", "house"),
    ("de", "Mach mir ein Porträt von einem alten Seemann.", "Make me a portrait of an old sailor.", "paint", "sailor"),
    # French
    ("fr", "Peins-moi une aquarelle d'un jardin japonais.", "Paint me a watercolor of a Japanese garden.", "paint", "garden"),
    ("fr", "Dessine un renard dans la neige.", "Draw a fox in the snow.", "paint", "fox"),
    ("fr", "Tu peux faire une image d'un château hanté ?", "Can you make an image of a haunted castle?", "paint", "castle"),
    ("fr", "Crée une illustration d'un marché en Provence.", "Create an illustration of a market in Provence.", "paint", "market"),
    ("fr", "Je voudrais un tableau d'un port de pêche.", "I would like a painting of a fishing port.", "paint", "port"),
    ("fr", "Génère une photo d'un chat sur un toit.", "Generate a photo of a cat on a roof.", "paint", "cat"),
    ("fr", "Montre-moi à quoi ressemblerait une ville sur Mars.", "Show me what a city on Mars would look like.", "paint", "city"),
    ("fr", "Fais-moi un portrait d'une danseuse.", "Make me a portrait of a dancer.", "paint", "dancer"),
    ("fr", "Dessine-moi une fusée qui décolle.", "Draw me a rocket taking off.", "paint", "rocket"),
    ("fr", "Peins un coucher de soleil sur l'océan.", "Paint a sunset over the ocean.", "paint", "sunset"),
    # Portuguese
    ("pt", "Pinta-me uma aquarela de um jardim japonês.", "Paint me a watercolor of a Japanese garden.", "paint", "garden"),
    ("pt", "Desenhe um leão na savana.", "Draw a lion in the savanna.", "paint", "lion"),
    ("pt", "Você pode fazer uma imagem de uma praia deserta?", "Can you make an image of a deserted beach?", "paint", "beach"),
    ("pt", "Crie um retrato de um velho pescador.", "Create a portrait of an old fisherman.", "paint", "fisherman"),
    ("pt", "Eu queria um quadro de uma floresta tropical.", "I wanted a painting of a tropical forest.", "paint", "forest"),
    ("pt", "Gere uma ilustração de um trem a vapor.", "Generate an illustration of a steam train.", "paint", "train"),
    ("pt", "Mostre-me como seria um castelo nas nuvens.", "Show me what a castle in the clouds would look like.", "paint", "castle"),
    ("pt", "Faça um desenho de uma coruja numa árvore.", "Make a drawing of an owl in a tree.", "paint", "owl"),
    ("pt", "Desenha-me um barco à vela.", "Draw me a sailing boat.", "paint", "boat"),
    ("pt", "Pinte uma cidade ao amanhecer.", "Paint a city at dawn.", "paint", "city"),
]

QUESTION: list[Phrasing] = [
    # English
    ("en", "Ask my lectures: who built the great pyramid?", None, "question", "pyramid"),
    ("en", "Check my notes for what the doctor said about vitamins.", None, "question", "vitamins"),
    ("en", "In the last meeting, what was decided about the budget?", None, "question", "budget"),
    ("en", "Find the part of the lecture about photosynthesis.", None, "question", "photosynthesis"),
    ("en", "Did anyone in the meetings mention the new office?", None, "question", "office"),
    ("en", "Look through my recordings for the exam date.", None, "question", "exam"),
    ("en", "What was the professor's point about entropy?", None, "question", "entropy"),
    ("en", "Remind me what the speaker said about climate change.", None, "question", "climate"),
    ("en", "Search my classes for anything about the French revolution.", None, "question", "revolution"),
    ("en", "According to the lecture, why did the Roman empire fall?", None, "question", "roman"),
    ("en", "Which recording talks about dinosaurs?", None, "question", "dinosaurs"),
    ("en", "Query the archive: when is the project deadline?", None, "question", "deadline"),
    ("en", "Go through the meeting notes and tell me who is in charge of hiring.", None, "question", "hiring"),
    ("en", "What did we agree on in yesterday's call?", None, "question", "agree"),
    ("en", "Has the teacher ever talked about black holes?", None, "question", "black"),
    ("en", "Pull up what was said about the marketing plan.", None, "question", "marketing"),
    ("en", "Ask the archive how long styles in the west lagged behind.", None, "question", "styles"),
    ("en", "Tell me from my lectures what causes the seasons.", None, "question", "seasons"),
    ("en", "Is there anything in my recordings about Lord Byron?", None, "question", "byron"),
    ("en", "Quiz my notes: what is the boiling point of water?", None, "question", "boiling"),
    ("en", "What did the guest speaker recommend reading?", None, "question", "reading"),
    ("en", "Ask my meetings whether the launch was postponed.", None, "question", "launch"),
    # Spanish
    ("es", "Pregunta a mis clases quién construyó la gran pirámide.", "Ask my classes who built the great pyramid.", "question", "pyramid"),
    ("es", "¿Qué dijo el profesor sobre la inflación?", "What did the teacher say about inflation?", "question", "inflation"),
    ("es", "Busca en mis grabaciones la fecha del examen.", "Look in my recordings for the date of the exam.", "question", "exam"),
    ("es", "¿En qué reunión se habló del presupuesto?", "In which meeting was the budget discussed?", "question", "budget"),
    ("es", "Recuérdame lo que se dijo sobre el proyecto nuevo.", "Remind me what was said about the new project.", "question", "project"),
    ("es", "Según la conferencia, ¿por qué cayó el imperio romano?", "According to the conference, why did the Roman Empire fall?", "question", "roman"),
    ("es", "Consulta mis notas: ¿cuándo es la entrega?", "Check my notes: when is the delivery?", "question", "delivery"),
    ("es", "¿Alguien mencionó las vacaciones en la reunión?", "Did anyone mention the holidays in the meeting?", "question", "holidays"),
    # German
    ("de", "Frag meine Vorlesungen, wer die große Pyramide gebaut hat.", "Ask my lectures who built the great pyramid.", "question", "pyramid"),
    ("de", "Was hat der Professor über Entropie gesagt?", "What did the professor say about entropy?", "question", "entropy"),
    ("de", "Such in meinen Aufnahmen nach dem Prüfungstermin.", "Search my recordings for the exam date.", "question", "exam"),
    ("de", "Was wurde in der Besprechung über das Budget beschlossen?", "What was decided about the budget in the meeting?", "question", "budget"),
    ("de", "Erinnere mich, was die Rednerin über Bienen erzählt hat.", "Remind me what the speaker said about bees.", "question", "bees"),
    ("de", "Steht in meinen Notizen etwas über die Frist?", "Is there something in my notes about the deadline?", "question", "deadline"),
    ("de", "In welcher Vorlesung ging es um Photosynthese?", "Which lecture was about photosynthesis?", "question", "photosynthesis"),
    ("de", "Hat jemand in der Sitzung den Umzug erwähnt?", "Did anyone in the meeting mention the move?", "question", "move"),
    # French
    ("fr", "Demande à mes cours qui a construit la grande pyramide.", "Ask my classes who built the great pyramid.", "question", "pyramid"),
    ("fr", "Qu'est-ce que le professeur a dit sur l'entropie ?", "What did the teacher say about entropy?", "question", "entropy"),
    ("fr", "Cherche dans mes enregistrements la date de l'examen.", "Look in my recordings for the date of the exam.", "question", "exam"),
    ("fr", "De quoi a-t-on parlé à la réunion sur le budget ?", "What did we talk about at the meeting about the budget?", "question", "budget"),
    ("fr", "Rappelle-moi ce qui a été dit sur le déménagement.", "Remind me what was said about the move.", "question", "move"),
    ("fr", "Selon la conférence, pourquoi l'empire romain est-il tombé ?", "According to the conference, why did the Roman Empire fall?", "question", "roman"),
    ("fr", "Est-ce que mes notes parlent des vacances ?", "Do my notes talk about the holidays?", "question", "holidays"),
    ("fr", "Quelle séance portait sur la photosynthèse ?", "Which session was about photosynthesis?", "question", "photosynthesis"),
    # Portuguese
    ("pt", "Pergunte às minhas aulas quem construiu a grande pirâmide.", "Ask my classes who built the great pyramid.", "question", "pyramid"),
    ("pt", "O que o professor disse sobre a inflação?", "What did the teacher say about inflation?", "question", "inflation"),
    ("pt", "Procure nas minhas gravações a data da prova.", "Look in my recordings for the date of the test.", "question", "test"),
    ("pt", "Em qual reunião se falou do orçamento?", "In which meeting did we talk about the budget?", "question", "budget"),
    ("pt", "Lembre-me o que foi dito sobre o projeto novo.", "Remind me what was said about the new project.", "question", "project"),
    ("pt", "Segundo a palestra, por que caiu o império romano?", "According to the lecture, why did the Roman Empire fall?", "question", "roman"),
    ("pt", "As minhas anotações falam das férias?", "Do my notes talk about the holidays?", "question", "holidays"),
    ("pt", "Alguém mencionou a mudança na reunião?", "Did anyone mention the move in the meeting?", "question", "move"),
]

ORDINARY: list[Phrasing] = [
    # English: dictation, small talk, other requests, and near misses
    ("en", "I painted the fence yesterday and it already needs another coat.", None, None, None),
    ("en", "The picture on the wall in the hallway is crooked.", None, None, None),
    ("en", "Could you draw the curtains, please?", None, None, None),
    ("en", "Turn on the living room light.", None, None, None),
    ("en", "What time is it?", None, None, None),
    ("en", "The meeting is moved to Thursday afternoon.", None, None, None),
    ("en", "My daughter loves drawing horses.", None, None, None),
    ("en", "Set a timer for ten minutes.", None, None, None),
    ("en", "We need to buy milk, eggs and bread.", None, None, None),
    ("en", "The lecture starts at nine tomorrow morning.", None, None, None),
    ("en", "I think the image quality of this camera is great.", None, None, None),
    ("en", "Photosynthesis converts light into chemical energy.", None, None, None),
    ("en", "She showed me her photos from the trip.", None, None, None),
    ("en", "The museum has a famous painting by Rembrandt.", None, None, None),
    ("en", "Remember to call your mother on Sunday.", None, None, None),
    ("en", "How are you doing today?", None, None, None),
    ("en", "Play some relaxing music.", None, None, None),
    ("en", "The budget for next year was approved last week.", None, None, None),
    ("en", "In the second part of the talk we will look at examples.", None, None, None),
    ("en", "He asked whether the train was on time.", None, None, None),
    ("en", "Let's meet at the café near the station.", None, None, None),
    ("en", "This chapter explains how the Roman empire fell.", None, None, None),
    # Spanish
    ("es", "Ayer pinté la cerca del jardín.", "Yesterday I painted the garden fence.", None, None),
    ("es", "Mañana tenemos una reunión importante.", "Tomorrow we have an important meeting.", None, None),
    ("es", "Enciende la luz del salón.", "Turn on the light in the living room.", None, None),
    ("es", "El cuadro del pasillo está torcido.", "The painting in the hallway is crooked.", None, None),
    ("es", "¿Qué hora es?", "What time is it?", None, None),
    ("es", "La clase de hoy trata de la fotosíntesis.", "Today's class is about photosynthesis.", None, None),
    ("es", "Compra pan y leche, por favor.", "Buy bread and milk, please.", None, None),
    ("es", "Mi hija dibuja muy bien.", "My daughter draws very well.", None, None),
    # German
    ("de", "Schalte das Wohnzimmerlicht ein.", "Turn on the living room light.", None, None),
    ("de", "Ich habe gestern den Zaun gestrichen.", "I painted the fence yesterday.", None, None),
    ("de", "Die Besprechung ist auf Donnerstag verschoben.", "The meeting has been moved to Thursday.", None, None),
    ("de", "Das Bild im Flur hängt schief.", "The picture in the hallway is crooked.", None, None),
    ("de", "Wie spät ist es?", "What time is it?", None, None),
    ("de", "Die Vorlesung beginnt morgen um neun.", "The lecture begins tomorrow at nine.", None, None),
    ("de", "Wir brauchen noch Milch und Eier.", "We still need milk and eggs.", None, None),
    ("de", "Meine Tochter malt gern Pferde.", "My daughter likes to paint horses.", None, None),
    # French
    ("fr", "Il fait beau aujourd'hui.", "The weather is nice today.", None, None),
    ("fr", "J'ai peint la clôture hier.", "I painted the fence yesterday.", None, None),
    ("fr", "La réunion est reportée à jeudi.", "The meeting is postponed to Thursday.", None, None),
    ("fr", "Le tableau du couloir est de travers.", "The painting in the hallway is crooked.", None, None),
    ("fr", "Quelle heure est-il ?", "What time is it?", None, None),
    ("fr", "Le cours commence à neuf heures demain.", "The class starts at nine tomorrow.", None, None),
    ("fr", "Allume la lumière de la cuisine.", "Turn on the kitchen light.", None, None),
    ("fr", "Ma fille dessine tous les jours.", "My daughter draws every day.", None, None),
    # Portuguese
    ("pt", "Vou comprar pão amanhã.", "I will buy bread tomorrow.", None, None),
    ("pt", "Ontem pintei a cerca do quintal.", "Yesterday I painted the backyard fence.", None, None),
    ("pt", "A reunião foi adiada para quinta-feira.", "The meeting was postponed to Thursday.", None, None),
    ("pt", "O quadro do corredor está torto.", "The painting in the hallway is crooked.", None, None),
    ("pt", "Que horas são?", "What time is it?", None, None),
    ("pt", "A aula de amanhã começa às nove.", "Tomorrow's class starts at nine.", None, None),
    ("pt", "Acenda a luz da sala.", "Turn on the light in the room.", None, None),
    ("pt", "Minha filha adora desenhar cavalos.", "My daughter loves to draw horses.", None, None),
]

PHRASINGS = PAINT + QUESTION + ORDINARY
# fmt: on

# espeak-ng voice, words a minute and gap between words (10 ms units). Its non-English
# voices are hard for Whisper base to hear; slower speech with gaps halves the word error
# rate (es 0.83 -> 0.53, de 0.75 -> 0.45 on 8 phrasings), French and Portuguese stay poor.
VOICES = {"en": "en-us", "es": "es-419", "de": "de", "fr": "fr", "pt": "pt-br"}
SPEED = {"en": (130, 0), "es": (105, 6), "de": (105, 6), "fr": (105, 6), "pt": (105, 6)}


def say(text: str, language: str, wav: Path) -> Path:
    """``text`` spoken by espeak-ng into ``wav``."""
    speed, gap = SPEED[language]
    voice = ["-v", VOICES[language], "-s", str(speed), "-g", str(gap)]
    subprocess.run(["espeak-ng", *voice, "-w", str(wav), text], check=True)
    return wav


@dataclass
class Judged:
    language: str  # the language the phrasing is in
    said: str
    heard: str  # what the recogniser was given (the text, or Whisper's transcript)
    heard_language: str
    english: str | None
    expected: str | None
    got: str | None
    argument: str
    argument_right: bool  # the argument holds the phrasing's key word

    @property
    def right(self) -> bool:
        """The expected intent: a command taken as that command, ordinary speech as none."""
        return self.got == self.expected

    @property
    def false_action(self) -> bool:
        return self.expected is None and self.got is not None


def judge(
    recognizer: Any,
    p: Phrasing,
    heard: str | None = None,
    lang: str | None = None,
    english: str | None = None,
) -> Judged:
    """What the recogniser makes of phrasing ``p`` as written, or as heard (``heard`` in
    ``lang`` with its ``english``)."""
    from voiceflow.text import normalize

    if heard is None:
        heard, lang, english = p[1], p[0], p[2]
    assert lang is not None
    expected, word = p[3], p[4]
    match = recognizer.recognize(heard, lang, english)
    got = match.intent if match else None
    argument = (match.args.get("prompt") or match.args.get("question") or "") if match else ""
    argument_right = got == expected and (not word or word in normalize(argument))
    return Judged(p[0], p[1], heard, lang, english, expected, got, argument, argument_right)
