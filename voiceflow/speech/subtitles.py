"""Subtitles people can read: cues cut from word timestamps within reading rules.

The defaults are the usual broadcast rules: at most 42 characters a line and 2 lines a cue,
at most 7 s a cue, and time enough to read it at 17 characters a second. Cues and lines
break where a reader pauses (after a sentence, a comma, before a conjunction), found by
dynamic programming over the words rather than greedily, so a cue never ends on "the".
A cue is shown a little longer than its speech, into the following pause, when that is
what reading it needs; it never overlaps the next.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from voiceflow.messages import Segment, Transcript, Word

SENTENCE_END = (".", "?", "!", "…", "。", "？", "！", '."', '?"', '!"')
CLAUSE_END = (",", ";", ":", "—", ")", "，", "、")
# A line or cue may start with one of these rather than end with it.
CONJUNCTIONS = {
    "en": "and but or so because that which who when while if although though than as",
    "es": "y e o u pero que porque cuando como si aunque ni mientras donde",
    "fr": "et ou mais que qui quand parce car si comme lorsque donc puisque",
    "de": "und oder aber dass weil wenn denn als ob sondern während wie",
    "pt": "e ou mas que porque quando como se embora enquanto onde",
    "it": "e o ma che perché quando come se mentre dove",
}
# Breaking before a preposition is the next best place.
PREPOSITIONS = {
    "en": "to for of in on at with about from by after before into during without",
    "es": "a de en con por para sobre sin desde hasta entre durante",
    "fr": "à de en avec pour par sur sans dans depuis pendant entre",
    "de": "zu für von mit auf in an bei nach aus über ohne durch während",
    "pt": "a de em com por para sobre sem desde até entre durante",
    "it": "a di in con per su da senza tra fra durante",
}
_CONJUNCTIONS = {lang: frozenset(words.split()) for lang, words in CONJUNCTIONS.items()}
_PREPOSITIONS = {lang: frozenset(words.split()) for lang, words in PREPOSITIONS.items()}


@dataclass(frozen=True)
class CueRules:
    """How subtitle cues are cut; ``None`` lifts a limit."""

    max_line_width: int = 42
    max_line_count: int | None = 2
    max_duration: float = 7.0
    max_cps: float = 17.0  # reading speed, characters a second, spaces included
    max_words_per_line: int | None = None
    min_duration: float = 1.0  # shorter cues flash past unread
    min_gap: float = 0.08  # between cues, so a player shows them as two
    max_shift: float = 1.0  # how far a cue may move off its speech to be readable
    max_pause: float = 1.5  # a longer silence always ends a cue
    keep_segments: bool = False  # cues never span two segments (openai-whisper's layout)

    @classmethod
    def whisper(
        cls,
        max_line_width: int | None = None,
        max_line_count: int | None = None,
        max_words_per_line: int | None = None,
    ) -> CueRules:
        """openai-whisper's ``--max_line_width/--max_line_count/--max_words_per_line``: lines
        wrap within each segment, no timing rules."""
        return cls(
            max_line_width=max_line_width or 1_000_000,
            max_line_count=max_line_count,
            max_duration=math.inf,
            max_cps=math.inf,
            max_words_per_line=max_words_per_line,
            min_duration=0.0,
            min_gap=0.0,
            max_shift=0.0,
            max_pause=math.inf,
            keep_segments=True,
        )


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    line_words: tuple[tuple[Word, ...], ...]
    highlight: Word | None = None  # the word being spoken, underlined (``--highlight_words``)
    pace: float = 0.0  # the speaker's pace (characters a second) where faster than max_cps

    @property
    def lines(self) -> list[str]:
        return [
            "".join(_underlined(w) if w is self.highlight else w.word for w in line).strip()
            for line in self.line_words
        ]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def chars(self) -> int:
        return len(" ".join(text_of(line) for line in self.line_words))

    @property
    def cps(self) -> float:
        return self.chars / max(self.end - self.start, 1e-6)


def check_cue(cue: Cue, rules: CueRules = CueRules()) -> list[str]:
    """The reading rules ``cue`` breaks, as readable sentences (empty when it keeps them).

    Reading speed is held to ``max_cps``, or to the speaker's own pace over a passage spoken
    faster than that (``Cue.pace``): no cue is faster than the speech it shows."""
    problems = []
    lines = [text_of(line) for line in cue.line_words]
    for line in lines:
        if len(line) > rules.max_line_width and " " in line:
            problems.append(f"line of {len(line)} characters: {line!r}")
        if rules.max_words_per_line and len(line.split()) > rules.max_words_per_line:
            problems.append(f"line of {len(line.split())} words: {line!r}")
    if rules.max_line_count and len(lines) > rules.max_line_count:
        problems.append(f"{len(lines)} lines")
    if cue.end - cue.start > rules.max_duration + 1e-6:
        problems.append(f"shown {cue.end - cue.start:.2f} s")
    if cue.cps > max(rules.max_cps, cue.pace) * 1.01:  # 1 %: times are whole milliseconds
        problems.append(f"{cue.cps:.1f} characters a second")
    return problems


# -- words with times ----------------------------------------------------------------------------
def spread(
    lengths: Sequence[int], spans: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Times for consecutive pieces of text of ``lengths`` characters, laid over the speech
    ``spans`` in proportion to their length (text whose own timing is unknown or unreliable)."""
    spans = [(a, b) for a, b in spans if b > a] or [(spans[0][0], spans[0][0])]
    total_time = sum(b - a for a, b in spans)
    total_chars = sum(lengths) or 1
    edges = [0.0]
    for a, b in spans:
        edges.append(edges[-1] + (b - a))

    def at(chars: float) -> float:
        t = total_time * chars / total_chars
        for (a, _), e0, e1 in zip(spans, edges, edges[1:], strict=False):
            if t <= e1:
                return a + (t - e0)
        return spans[-1][1]

    out, done = [], 0
    for n in lengths:
        # Each piece starts in the span its first character falls in, not in a pause.
        out.append((at(done + min(1e-3, n)), at(done + n)))
        done += n
    return [(round(a, 3), round(b, 3)) for a, b in out]


def segment_words(s: Segment, spans: Sequence[tuple[float, float]] | None = None) -> list[Word]:
    """The segment's words with times: its word timestamps, else its text spread over
    ``spans`` (default: the segment's own time)."""
    timed = [w for w in s.words if w.word.strip()]
    if timed:
        return timed
    pieces = [" " + p for p in s.text.split()]
    times = spread([len(p) for p in pieces], spans or [(s.start, s.end)]) if pieces else []
    return [Word(a, b, p, 1.0) for p, (a, b) in zip(pieces, times, strict=True)]


def text_of(words: Iterable[Word]) -> str:
    """Words as written: Whisper's words carry their leading space, so "qu" + "'on" and
    Japanese, which has no spaces, join as they should."""
    return "".join(w.word for w in words).strip()


def _underlined(w: Word) -> str:
    stripped = w.word.lstrip()
    return f"{w.word[: len(w.word) - len(stripped)]}<u>{stripped}</u>"


def english_words(t: Transcript) -> list[tuple[str, list[Word]]]:
    """The English track as (language, words) runs: English speech as spoken, other speech by
    its translation, each translated sentence timed over the speech it translates."""
    foreign = [s for s in t.segments if s.language != "en"]
    parts: list[tuple[float, list[Word]]] = [
        (s.start, segment_words(s)) for s in t.segments if s.language == "en"
    ]
    for e in t.translation_segments:
        spans = [
            (max(s.start, e.start), min(s.end, e.end))
            for s in foreign
            if s.end > e.start and s.start < e.end
        ]
        parts.append((e.start, segment_words(replace(e, words=()), spans or None)))
    return [("en", words) for _, words in sorted(parts, key=lambda p: p[0])]


# -- cutting cues --------------------------------------------------------------------------------
def transcript_cues(
    t: Transcript,
    rules: CueRules = CueRules(),
    track: str = "original",
    highlight_words: bool = False,
) -> list[Cue]:
    """The cues of ``t``: ``track`` is ``original`` (as spoken) or ``en`` (English)."""
    if track == "en" and any(s.language != "en" for s in t.segments):
        runs = english_words(t)
    else:
        runs = [(s.language, segment_words(s)) for s in t.segments]
    cues = make_cues(runs, rules, t.duration or None)
    return [c for cue in cues for c in _highlighted(cue)] if highlight_words else cues


def make_cues(
    runs: Iterable[tuple[str, list[Word]]], rules: CueRules, duration: float | None = None
) -> list[Cue]:
    """Cues over timed words; ``runs`` are (language, words) pieces in time order, such as
    segments. Words flow across runs unless ``keep_segments``, a pause or a language change."""
    groups: list[tuple[str, list[Word]]] = []
    for lang, words in runs:
        if not words:
            continue
        prev = groups[-1] if groups else None
        if (
            prev
            and not rules.keep_segments
            and prev[0] == lang
            and words[0].start - prev[1][-1].end <= rules.max_pause
        ):
            prev[1].extend(words)
        else:
            groups.append((lang, list(words)))
    return _retime([_cut(words, lang, rules) for lang, words in groups], rules, duration)


def _break_cost(words: Sequence[Word], k: int, lang: str) -> float:
    """How bad a break between ``words[k]`` and ``words[k + 1]`` reads."""
    if k + 1 >= len(words):
        return 0.0
    word, following = words[k].word.strip(), words[k + 1].word
    if not following[:1].isspace() and not following[:1].isalnum():
        return 10.0  # inside a word: "qu|'on", "États|-Unis"
    if word.endswith(SENTENCE_END):
        cost = 0.0
    elif word.endswith(CLAUSE_END):
        cost = 0.4
    elif (head := following.lower().strip(" ¿¡\"'(")) in _CONJUNCTIONS.get(lang, ()):
        cost = 0.6
    elif head in _PREPOSITIONS.get(lang, ()):
        cost = 1.2
    else:
        cost = 2.5  # mid-phrase
    if words[k + 1].start - words[k].end > 0.4:  # a pause is a natural break too
        cost = min(cost, 0.3)
    return cost


def _lay_out(
    words: Sequence[Word], lang: str, rules: CueRules
) -> tuple[float, tuple[tuple[Word, ...], ...]] | None:
    """The best split of one cue's words into lines, and its cost; None if none fits."""
    width, per_line = rules.max_line_width, rules.max_words_per_line or len(words)
    max_lines = rules.max_line_count or len(words)

    def fits(i: int, j: int) -> bool:
        return j - i == 1 or (j - i <= per_line and len(text_of(words[i:j])) <= width)

    n = len(words)
    if fits(0, n):
        return 0.0, (tuple(words),)
    if max_lines == 2:  # the usual case: try every split, prefer a good place and even lines
        found = None
        for j in range(1, n):
            if fits(0, j) and fits(j, n):
                top, bottom = len(text_of(words[:j])), len(text_of(words[j:]))
                cost = 0.5 * _break_cost(words, j - 1, lang) + 0.5 * abs(top - bottom) / width
                if found is None or cost < found[0]:
                    found = (cost, (tuple(words[:j]), tuple(words[j:])))
        return found

    @functools.cache
    def best(i: int, lines_left: int) -> tuple[float, tuple[int, ...]] | None:
        """Fewest bad breaks over the lines from word ``i`` on (any number of lines)."""
        if i == n:
            return 0.0, ()
        if lines_left == 0:
            return None
        found: tuple[float, tuple[int, ...]] | None = None
        for j in range(i + 1, n + 1):
            if not fits(i, j):
                break
            rest = best(j, lines_left - 1)
            if rest is None:
                continue
            cost = rest[0] + (0.5 * _break_cost(words, j - 1, lang) if j < n else 0.0)
            if found is None or cost < found[0]:
                found = (cost, (j, *rest[1]))
        return found

    result = best(0, max_lines)
    if result is None:
        return None
    ends = result[1]
    starts = (0, *ends[:-1])
    return result[0], tuple(tuple(words[a:b]) for a, b in zip(starts, ends, strict=True))


def _cut(words: list[Word], lang: str, rules: CueRules) -> list[Cue]:
    """Split one run of words into cues: dynamic programming over where cues end."""
    n = len(words)
    max_chars = rules.max_line_width * (rules.max_line_count or n) + n
    best: list[tuple[float, int, tuple[tuple[Word, ...], ...]]] = [(0.0, 0, ())]
    for j in range(1, n + 1):
        choice: tuple[float, int, tuple[tuple[Word, ...], ...]] | None = None
        chars = -1
        for i in range(j - 1, -1, -1):
            chars += len(words[i].word)
            shown = words[j - 1].end - words[i].start
            if i < j - 1 and (chars > max_chars or shown > rules.max_duration):
                break
            layout = _lay_out(words[i:j], lang, rules)
            if layout is None:
                if i < j - 1:
                    continue
                layout = (10.0, tuple((w,) for w in words[i:j]))  # one word wider than a line
            cost = best[i][0] + 1.0 + layout[0] + _break_cost(words, j - 1, lang)
            # A sentence ending inside a cue: the next one should start a cue of its own.
            cost += 0.8 * sum(w.word.endswith(SENTENCE_END) for w in words[i : j - 1])
            if math.isfinite(rules.max_cps):
                # Time it can be shown: until the next word (or a while, at the end), from
                # a little before its first word.
                room = (words[j].start - rules.min_gap if j < n else math.inf) - words[i].start
                room = min(room + rules.max_shift / 2, rules.max_duration)
                cost += 2.0 * max(0.0, chars / rules.max_cps - room)
                if chars < 12 and n > 1:
                    cost += 0.5  # a word or two alone flashes past
            if choice is None or cost < choice[0]:
                choice = (cost, i, layout[1])
        assert choice is not None
        best.append(choice)
    cues: list[Cue] = []
    j = n
    while j > 0:
        _, i, lines = best[j]
        cues.append(Cue(words[i].start, words[j - 1].end, lines))
        j = i
    return cues[::-1]


def _retime(passages: list[list[Cue]], rules: CueRules, duration: float | None) -> list[Cue]:
    """Show each cue long enough to read it: into the pause after it, or a little before or
    after its speech (at most ``max_shift``), never overlapping a neighbour nor past the end.

    A passage spoken faster than anyone reads cannot meet ``max_cps``; its cues then share
    its time (from ``max_shift`` before it to twice that after) end to end, each as long as
    its text at the passage's pace (``Cue.pace``), rather than one cue flashing past.
    """
    audio_end = duration if duration else math.inf
    cues: list[Cue] = []
    need: list[float] = []
    fixed: dict[int, tuple[float, float]] = {}  # cues of fast passages, laid end to end
    for p, passage in enumerate(passages):
        if not passage:
            continue
        first = max(0.0, passage[0].start - rules.max_shift)
        last = passages[p + 1][0].start - rules.min_gap if p + 1 < len(passages) else audio_end
        last = min(last, passage[-1].end + 2 * rules.max_shift)
        room = last - first - rules.min_gap * (len(passage) - 1)
        wanted = [max(rules.min_duration, c.chars / rules.max_cps) for c in passage]
        if sum(wanted) > room > 0:
            pace = sum(c.chars for c in passage) / room
            at = first
            for c in passage:
                fixed[len(cues)] = (at, at + c.chars / pace)
                cues.append(replace(c, pace=round(pace, 2)))
                need.append(c.chars / pace)
                at += c.chars / pace + rules.min_gap
        else:
            cues += passage
            need += [min(math.ceil(1000 * w) / 1000, rules.max_duration) for w in wanted]
    if not cues:
        return []
    speech = [(c.start, c.end) for c in cues]
    start = [fixed.get(k, (a, b))[0] for k, (a, b) in enumerate(speech)]
    end = [
        fixed[k][1] if k in fixed else min(max(b, a + n), a + rules.max_duration)
        for k, ((a, b), n) in enumerate(zip(speech, need, strict=True))
    ]
    last_cue = len(cues) - 1
    for _ in range(3):  # settles in one or two rounds
        for k in range(len(cues)):  # forward: after the previous cue, later if it must be
            if k in fixed:
                continue
            earliest = end[k - 1] + rules.min_gap if k else 0.0
            start[k] = min(max(start[k], earliest), speech[k][0] + rules.max_shift)
            end[k] = min(max(end[k], start[k] + need[k]), start[k] + rules.max_duration)
        for k in range(last_cue, -1, -1):  # backward: before the next cue, earlier if it must be
            if k in fixed:
                continue
            latest = start[k + 1] - rules.min_gap if k < last_cue else audio_end
            end[k] = min(end[k], latest)
            if end[k] - start[k] < need[k]:
                start[k] = max(end[k] - need[k], speech[k][0] - rules.max_shift, 0.0)
    out = []
    for k, cue in enumerate(cues):
        a = round(start[k], 3)
        out.append(replace(cue, start=a, end=max(round(end[k], 3), a)))
    return out


def _highlighted(cue: Cue) -> list[Cue]:
    """openai-whisper's ``--highlight_words``: the cue once per word, that word underlined."""
    words = [w for line in cue.line_words for w in line]
    out = []
    for k, w in enumerate(words):
        end = words[k + 1].start if k + 1 < len(words) else cue.end
        out.append(replace(cue, start=max(w.start, cue.start), end=end, highlight=w))
    return out


# -- files ---------------------------------------------------------------------------------------
def format_timestamp(seconds: float, always_include_hours: bool = False, marker: str = ".") -> str:
    ms = round(max(seconds, 0.0) * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    head = f"{hours:02d}:" if always_include_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{marker}{ms:03d}"


def render_cues(cues: Sequence[Cue], fmt: str) -> str:
    """Cues as the text of an ``srt`` or ``vtt`` file."""
    out = ["WEBVTT\n"] if fmt == "vtt" else []
    for i, cue in enumerate(cues, start=1):
        text = cue.text.replace("-->", "->")
        if fmt == "srt":
            start = format_timestamp(cue.start, True, ",")
            end = format_timestamp(cue.end, True, ",")
            out.append(f"{i}\n{start} --> {end}\n{text}\n")
        else:
            out.append(f"{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}\n{text}\n")
    return "\n".join(out) + ("\n" if out else "")
