"""Subtitles people can read: the cue rules on synthetic words, then `voiceflow subtitles` and
`voiceflow transcribe --max_line_width ...` on the reference clips with the real model."""

from __future__ import annotations

import itertools
import re

import pytest

from tests.conftest import run_cli
from voiceflow.messages import Segment, Transcript, Word
from voiceflow.speech.subtitles import (
    CueRules,
    check_cue,
    make_cues,
    segment_words,
    spread,
    transcript_cues,
)

RULES = CueRules()


def words_at(
    text: str, start: float = 0.0, rate: float = 14.0, pause_after: str = ""
) -> list[Word]:
    """Words spoken at ``rate`` characters a second, with 0.6 s pauses after ``pause_after``."""
    out, t = [], start
    for w in text.split():
        d = (len(w) + 1) / rate
        out.append(Word(round(t, 3), round(t + d, 3), " " + w, 0.9))
        t += d + (0.6 if w in pause_after.split() else 0.0)
    return out


LONG = (
    "The committee met on Tuesday to discuss the budget for the coming year, and after a long "
    "debate about the costs of the new library it agreed to postpone the decision. The mayor "
    "said that the city would publish the figures before the next meeting, because the public "
    "deserved to see them."
)


def test_cues_keep_every_rule_and_break_where_a_reader_pauses():
    cues = make_cues([("en", words_at(LONG))], RULES, duration=60.0)
    assert len(cues) >= 4
    for cue in cues:
        assert check_cue(cue, RULES) == [], cue
        assert 1 <= len(cue.lines) <= 2 and all(len(line) <= 42 for line in cue.lines)
    assert " ".join(" ".join(c.lines) for c in cues).split() == LONG.split()  # nothing lost
    # Cues end at a sentence, a comma or before a conjunction, never on an article.
    for cue in cues[:-1]:
        last = cue.lines[-1].split()[-1]
        assert last.lower() not in {"the", "a", "to", "of"}, cue.lines
    ends = [c.lines[-1][-1] for c in cues[:-1]]
    assert ends.count(".") + ends.count(",") >= 2, ends
    # In time order, apart, and each shown long enough to read.
    for a, b in itertools.pairwise(cues):
        assert a.end + RULES.min_gap - 1e-6 <= b.start
    assert all(c.end - c.start >= RULES.min_duration - 1e-6 for c in cues)


def test_lines_are_balanced_and_configurable():
    rules = CueRules(max_line_width=30, max_line_count=1, max_duration=4.0, max_cps=20.0)
    cues = make_cues([("en", words_at(LONG))], rules, duration=60.0)
    assert all(len(c.lines) == 1 and len(c.lines[0]) <= 30 for c in cues)
    assert all(c.end - c.start <= 4.0 + 1e-6 for c in cues)
    short = make_cues([("en", words_at("one two three four five six seven"))], RULES)
    assert [c.lines for c in short] == [["one two three four five six seven"]]  # fits one line
    two = make_cues([("en", words_at("one two three four five six seven eight nine ten"))], RULES)
    assert two[0].lines == ["one two three four five", "six seven eight nine ten"]  # even


def test_a_passage_faster_than_reading_speed_shares_its_time_evenly():
    fast = words_at(LONG, rate=24.0)  # no pauses: faster than anyone reads
    cues = make_cues([("en", fast)], RULES, duration=fast[-1].end + 0.5)
    assert all(c.pace > RULES.max_cps for c in cues)
    rates = [c.cps for c in cues]
    assert max(rates) <= cues[0].pace * 1.01 and min(rates) >= cues[0].pace * 0.9, rates
    assert all(check_cue(c, RULES) == [] for c in cues)
    assert check_cue(cues[0], CueRules(max_cps=17.0)) == []  # the pace is the speaker's
    slow_rules = CueRules()
    slow = make_cues([("en", words_at(LONG, rate=12.0))], slow_rules, duration=60.0)
    assert all(c.pace == 0.0 and c.cps <= 17.0 * 1.01 for c in slow)


def test_a_long_pause_or_a_language_change_ends_a_cue():
    a = words_at("Hello there my friend.", 0.0)
    b = words_at("Hola amigo mio.", a[-1].end + 3.0)
    cues = make_cues([("en", a), ("es", b)], RULES)
    assert [c.text for c in cues] == ["Hello there my friend.", "Hola amigo mio."]
    c = words_at("Buenos dias a todos.", b[-1].end + 0.2)
    assert len(make_cues([("es", b), ("en", c)], RULES)) == 2


def test_words_join_as_written_and_never_break_inside_a_word():
    pieces = [
        " Il",
        " a",
        " dit",
        " qu",
        "'on",
        " viendrait",
        " demain",
        " aux",
        " États",
        "-Unis.",
    ]
    words = [Word(k * 0.3, k * 0.3 + 0.3, w, 0.9) for k, w in enumerate(pieces)]
    s = Segment(0, 0.0, 3.0, "".join(pieces), "fr", words=tuple(words))
    t = Transcript(s.text, "fr", 1.0, 3.0, segments=(s,))
    cues = transcript_cues(t)
    assert [c.lines for c in cues] == [["Il a dit qu'on viendrait", "demain aux États-Unis."]]
    narrow = transcript_cues(t, CueRules.whisper(max_line_width=12))
    lines = [line for c in narrow for line in c.lines]
    assert "qu'on" in " ".join(lines) and "États-Unis." in " ".join(lines), lines
    assert not any(line.startswith(("'", "-")) for line in lines), lines
    # Japanese has no spaces between words: lines still break, and join without spaces.
    ja = "今日は良い天気ですね明日も晴れるでしょう"
    chars = [Word(k * 0.2, k * 0.2 + 0.2, ch, 0.9) for k, ch in enumerate(ja)]
    seg = Segment(0, 0.0, 4.0, ja, "ja", words=tuple(chars))
    cues = transcript_cues(
        Transcript(ja, "ja", 1.0, 4.0, segments=(seg,)), CueRules(max_line_width=8)
    )
    assert "".join(line for c in cues for line in c.lines) == ja
    assert all(len(line) <= 8 for c in cues for line in c.lines)
    assert segment_words(Segment(0, 1.0, 2.0, " two words", "en")) == [
        Word(1.0, 1.4, " two", 1.0),  # time in proportion to the characters
        Word(1.4, 2.0, " words", 1.0),
    ]
    # Over two spans with a pause between: no word starts inside the pause.
    times = spread([5, 5, 5, 5], [(0.0, 1.0), (3.0, 4.0)])
    assert times[0][0] == 0.0 and times[-1][1] == 4.0
    assert all(not (1.0 < a < 3.0) for a, _ in times), times


def test_english_track_is_timed_over_the_speech_it_translates():
    spanish = [
        Segment(0, 1.0, 4.0, " Hola a todos.", "es"),
        Segment(1, 9.0, 12.0, " Gracias por venir.", "es"),
    ]
    english = [
        Segment(0, 1.0, 4.0, " Hello everyone.", "en"),
        Segment(1, 9.0, 12.0, " Thank you for coming.", "en"),
    ]
    t = Transcript(
        "Hola a todos. Gracias por venir.",
        "es",
        0.99,
        14.0,
        segments=tuple(spanish),
        translation_segments=tuple(english),
    )
    en = transcript_cues(t, track="en")
    assert [c.text for c in en] == ["Hello everyone.", "Thank you for coming."]
    assert en[0].start < 4.0 and en[1].start >= 8.0  # each with its own speech
    assert [c.text for c in transcript_cues(t)] == ["Hola a todos.", "Gracias por venir."]


def test_whisper_layout_and_highlighted_words():
    seg = Segment(0, 0.0, 3.0, " ask not what your country can do", "en")
    seg = Segment(0, 0.0, 3.0, seg.text, "en", words=tuple(words_at(seg.text)))
    t = Transcript(seg.text, "en", 1.0, 3.0, segments=(seg,))
    cues = transcript_cues(t, CueRules.whisper(max_line_width=12))
    assert len(cues) == 1 and all(len(line) <= 12 for line in cues[0].lines)
    assert len(cues[0].lines) >= 3  # no line limit unless --max_line_count
    per_word = transcript_cues(t, CueRules.whisper(max_words_per_line=3), highlight_words=True)
    assert len(per_word) == 7 and "<u>country</u>" in per_word[4].text
    assert all(len(line.split()) <= 3 for c in per_word for line in c.lines)


# -- the real model on the reference clips --------------------------------------------------------
CUE = re.compile(
    r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(.*?)\n\n", re.S
)


def parse_srt(text: str) -> list[tuple[float, float, list[str]]]:
    cues = []
    for m in CUE.finditer(text):
        g = [int(x) for x in m.groups()[1:9]]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        cues.append((start, end, m.group(10).split("\n")))
    assert len(cues) == text.count(" --> "), "every cue parses"
    return cues


def readable(cues: list[tuple[float, float, list[str]]]) -> list[str]:
    """The broken rules. Reading speed: 17 characters a second, or for a passage spoken
    faster (its cues shown end to end), no faster than the passage's own pace."""
    problems = []
    runs: list[list[tuple[float, float, list[str]]]] = []
    for cue in cues:
        packed = runs and abs(cue[0] - runs[-1][-1][1] - RULES.min_gap) < 2e-3
        runs[-1].append(cue) if packed else runs.append([cue])
    for run in runs:
        chars = [len(" ".join(lines)) for _, _, lines in run]
        shown = sum(e - s for s, e, _ in run)
        pace = sum(chars) / shown
        for (s, e, lines), n in zip(run, chars, strict=True):
            if len(lines) > 2 or any(len(line) > 42 and " " in line for line in lines):
                problems.append(f"layout {lines}")
            if e - s > 7.0 + 1e-3:
                problems.append(f"{e - s:.2f} s {lines}")
            if n / (e - s) > max(17.0, pace) * 1.02:
                problems.append(f"{n / (e - s):.1f} cps {lines}")
    return problems


@pytest.mark.slow
def test_subtitles_for_a_folder_name_tracks_as_players_expect(subtitled):
    _src, out, r = subtitled
    assert r.returncode == 1, r.stderr  # the broken file fails; the others are written
    assert "broken.mp4" in r.stderr and "Traceback" not in r.stderr
    assert "12 subtitled, 0 already done, 1 failed" in r.stderr
    assert (out / "fleurs-es-000.es.srt").is_file() and (out / "fleurs-es-000.en.vtt").is_file()
    assert (out / "fleurs-de-001.de.srt").is_file() and (out / "jfk.en.srt").is_file()
    assert not (out / "jfk.en.en.srt").exists() and len(list(out.glob("jfk.*"))) == 2
    vtt = (out / "fleurs-fr-000.fr.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT\n\n") and " --> " in vtt


@pytest.mark.slow
def test_every_cue_of_the_subtitled_clips_is_readable(subtitled):
    _, out, _ = subtitled
    files = sorted(out.glob("*.srt"))
    assert len(files) == 2 + 2 + 8 * 2  # English clips: one track; the others two
    total = 0
    for path in files:
        cues = parse_srt(path.read_text(encoding="utf-8"))
        assert cues, path
        assert readable(cues) == [], path
        total += len(cues)
    assert total > 2 * len(files), total  # long speech is cut into several cues


@pytest.mark.slow
def test_english_track_of_a_spanish_clip_is_english_and_lines_up(subtitled):
    _, out, _ = subtitled
    for n in range(2):
        es = parse_srt((out / f"fleurs-es-00{n}.es.srt").read_text(encoding="utf-8"))
        en = parse_srt((out / f"fleurs-es-00{n}.en.srt").read_text(encoding="utf-8"))
        words = " ".join(" ".join(lines) for _, _, lines in en).lower().split()
        english = sum(
            w.strip(",.") in {"the", "of", "to", "and", "in", "is", "that"} for w in words
        )
        spanish = sum(w.strip(",.") in {"el", "la", "los", "las", "de", "que", "y"} for w in words)
        assert english >= 3 and spanish <= 1, words
        # Both tracks cover the same speech: they start and end within a second or two.
        assert abs(en[0][0] - es[0][0]) <= 1.0 and abs(en[-1][1] - es[-1][1]) <= 2.0


@pytest.mark.slow
def test_a_rerun_skips_finished_files_and_redoes_changed_settings(subtitled):
    src, out, _ = subtitled
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.srt")}
    r = run_cli("subtitles", str(src), "--format", "srt,vtt", "-o", str(out), "--threads", "2")
    assert "0 subtitled, 12 already done, 1 failed" in r.stderr, r.stderr
    assert before == {p.name: p.stat().st_mtime_ns for p in out.glob("*.srt")}
    one = out / "one"
    r = run_cli("subtitles", str(src / "jfk.flac"), "-o", str(one), "--max_line_width", "20")
    assert r.returncode == 0, r.stderr
    assert all(
        len(line) <= 20
        for _, _, lines in parse_srt((one / "jfk.en.srt").read_text())
        for line in lines
    )
    r = run_cli("subtitles", str(src / "jfk.flac"), "-o", str(one), "--max_line_width", "30")
    assert "1 subtitled, 0 already done" in r.stderr  # other settings: done again


@pytest.mark.slow
def test_transcribe_takes_whispers_subtitle_options(data, tmp_path):
    r = run_cli(
        "transcribe",
        str(data / "jfk.flac"),
        "-f",
        "srt",
        "-o",
        str(tmp_path),
        "--max_line_width",
        "16",
        "--max_line_count",
        "2",
        "--highlight_words",
        "True",
    )
    assert r.returncode == 0, r.stderr
    cues = parse_srt((tmp_path / "jfk.srt").read_text(encoding="utf-8"))
    assert len(cues) >= 20  # one cue a word, highlighted
    assert all(len(lines) <= 2 for _, _, lines in cues)
    assert all(len(re.sub("</?u>", "", line)) <= 16 for _, _, lines in cues for line in lines)
    assert sum("<u>" in " ".join(lines) for _, _, lines in cues) == len(cues)
    assert "<u>country.</u>" in (tmp_path / "jfk.srt").read_text()


def test_subtitles_bad_options_say_what_to_do(tmp_path):
    r = run_cli("subtitles", str(tmp_path), "--languages", "original,de")
    assert r.returncode == 1 and "English only" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("subtitles", str(tmp_path), "--format", "ass")
    assert r.returncode == 1 and "srt, vtt" in r.stderr
    r = run_cli("subtitles", str(tmp_path / "nothing.mp4"))
    assert r.returncode == 1 and "no such file" in r.stderr
