"""Plays in the tiny-Shakespeare format: speeches, and the task labels the text itself gives
(which dialogue words are speakers' names, who speaks a line), with seeded splits.

The format: a speech is a heading line ``SPEAKER:`` (``MENENIUS:``, ``First Citizen:``,
``KING RICHARD III:``) right after a blank line (or at the start), then its lines of dialogue,
then a blank line. A heading may have no lines.

Examples
--------
>>> from symgrad.runtime.plays import parse_speeches, speaker_lines, split_indices
>>> text = "First Citizen:\\nSpeak, Menenius.\\n\\nMENENIUS:\\nWhy, masters,\\nmy good friends.\\n"
>>> speeches = parse_speeches(text)
>>> [(s.speaker, len(s.lines)) for s in speeches]
[('First Citizen', 1), ('MENENIUS', 2)]
>>> texts, labels, speakers = speaker_lines(speeches, k=1)
>>> speakers, labels.tolist(), texts[1]
(['MENENIUS'], [0, 0], 'my good friends.')
>>> train, held = split_indices(10, held_out=0.2, seed=0)
>>> len(train), len(held), sorted([*train, *held]) == list(range(10))
(8, 2, True)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .text import data_dir
from .words import tokenize

__all__ = [
    "SHAKESPEARE_FILE", "Speech", "dialogue_lines", "name_tags", "parse_speeches",
    "read_speeches", "speaker_lines", "speaker_names", "split_indices", "top_speakers",
]  # fmt: skip

SHAKESPEARE_FILE = "tinyshakespeare.txt"

# Tokens after which a capital letter says nothing about the word (a new sentence or clause).
_CLAUSE_ENDS = frozenset(".!?:;")
_ROMAN = re.compile(r"^[IVXL]+$")


@dataclass(frozen=True)
class Speech:
    """One speech: who speaks (the heading without its colon) and the lines of dialogue."""

    speaker: str
    lines: tuple[str, ...]


def parse_speeches(text: str) -> list[Speech]:
    """The speeches of a play text, in order (see the module docstring for the format)."""
    speeches: list[Speech] = []
    speaker, lines, after_blank = None, [], True
    for line in text.splitlines():
        stripped = line.strip()
        if after_blank and stripped.endswith(":") and len(stripped) > 1:
            if speaker is not None:
                speeches.append(Speech(speaker, tuple(lines)))
            speaker, lines = stripped[:-1].strip(), []
        elif stripped and speaker is not None:
            lines.append(line.rstrip())
        after_blank = not stripped
    if speaker is not None:
        speeches.append(Speech(speaker, tuple(lines)))
    return speeches


def read_speeches(path: str | Path | None = None) -> list[Speech]:
    """The speeches of the file at ``path``, by default ``data_dir() / SHAKESPEARE_FILE``."""
    path = Path(path) if path is not None else data_dir() / SHAKESPEARE_FILE
    return parse_speeches(path.read_text(encoding="utf-8"))


def dialogue_lines(speeches: Sequence[Speech]) -> list[str]:
    """Every line of dialogue, in order (headings left out)."""
    return [line for speech in speeches for line in speech.lines]


def speaker_names(
    speeches: Sequence[Speech], min_ratio: float = 0.9, min_count: int = 1
) -> frozenset[str]:
    """The lower-cased words of speech headings that are personal names.

    A heading word is a name when

    1. a heading writes it in capitals: the format's convention for named characters
       (``MENENIUS``, ``KING RICHARD III``, ``Ghost of CLARENCE``), while roles are in title
       case (``First Citizen``, ``Nurse``, ``Roman``); it has two letters or more and is not a
       roman numeral;
    2. no heading has it right before "of" (titles: ``DUKE OF YORK``, ``ARCHBISHOP OF YORK``);
    3. the dialogue writes it with a capital letter in at least ``min_ratio`` of its
       occurrences where case is informative (not first on a line, not after
       ``. ! ? : ;``), of which there are at least ``min_count``. Names are always
       capitalised; titles mostly are not ("the king", "my lady").

    On tiny Shakespeare this keeps menenius, romeo, richard, gloucester, ... and drops king,
    queen, lady, friar, duke, the numerals, and names that are also common words and so often
    lower case (rivers, grey, gaunt).
    """
    candidates, titles = set(), set()
    for speech in speeches:
        words = tokenize(speech.speaker, lower=False)
        for word, after in zip(words, [*words[1:], ""]):
            if after.lower() == "of":
                titles.add(word.lower())
            if word.isalpha() and word.isupper() and len(word) > 1 and not _ROMAN.match(word):
                candidates.add(word.lower())
    candidates -= titles
    informative, capitalised = Counter(), Counter()
    for line in dialogue_lines(speeches):
        tokens = tokenize(line, lower=False)
        for before, token in zip(tokens, tokens[1:]):
            word = token.lower()
            if word in candidates and before not in _CLAUSE_ENDS:
                informative[word] += 1
                capitalised[word] += token[0].isupper()
    return frozenset(
        word
        for word, n in informative.items()
        if n >= min_count and capitalised[word] >= min_ratio * n
    )


def name_tags(
    lines: Sequence[str], names: frozenset[str], lower: bool = True
) -> tuple[list[list[str]], list[np.ndarray]]:
    """Tokens of each line and their labels for a name tagger: 1 where the token is one of
    ``names`` written with a capital letter, else 0.

    Returns
    -------
    tokens : list of list of str
        The tokens of each line (lower-cased when ``lower``; labels use the original case).
    labels : list of ndarray of int64
        One label per token.

    Examples
    --------
    >>> tokens, labels = name_tags(["Good Romeo, the romeo rose"], frozenset({"romeo"}))
    >>> tokens[0], labels[0].tolist()
    (['good', 'romeo', ',', 'the', 'romeo', 'rose'], [0, 1, 0, 0, 0, 0])
    """
    all_tokens, all_labels = [], []
    for line in lines:
        tokens = tokenize(line, lower=False)
        labels = [int(t.lower() in names and t[0].isupper()) for t in tokens]
        all_tokens.append([t.lower() for t in tokens] if lower else tokens)
        all_labels.append(np.array(labels, dtype=np.int64))
    return all_tokens, all_labels


def top_speakers(speeches: Sequence[Speech], k: int) -> list[str]:
    """The ``k`` speakers with the most lines of dialogue, most first (ties by name).

    Speakers are headings as written: ``GLOUCESTER`` and ``KING RICHARD III`` (one character
    in two plays' usage) are two classes.
    """
    lines_per_speaker = Counter()
    for speech in speeches:
        lines_per_speaker[speech.speaker] += len(speech.lines)
    ranked = sorted(lines_per_speaker.items(), key=lambda item: (-item[1], item[0]))
    return [speaker for speaker, n in ranked[:k] if n > 0]


def speaker_lines(speeches: Sequence[Speech], k: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Lines spoken by the ``k`` most frequent speakers, for a speaker classifier.

    Returns
    -------
    texts : list of str
        The lines, in text order.
    labels : ndarray of int64
        Each line's speaker as an index into ``speakers``.
    speakers : list of str
        :func:`top_speakers` ``(speeches, k)``.
    """
    speakers = top_speakers(speeches, k)
    index = {speaker: i for i, speaker in enumerate(speakers)}
    texts, labels = [], []
    for speech in speeches:
        if speech.speaker in index:
            texts.extend(speech.lines)
            labels.extend([index[speech.speaker]] * len(speech.lines))
    return texts, np.array(labels, dtype=np.int64), speakers


def split_indices(
    n: int, held_out: float = 0.1, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out indices of ``n`` examples, each sorted.

    With ``seed=None`` the last ``held_out`` fraction is held out (by position, like
    ``text.split``: neighbouring lines of one speech stay on one side, so the held-out part
    is truly unseen text); with a seed, a seeded random ``held_out`` fraction (every
    speaker and play on both sides, but neighbouring lines leak context across).
    """
    if not 0.0 <= held_out <= 1.0:
        raise ValueError("held_out must be in [0, 1]")
    n_held = int(round(n * held_out))
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n - n_held]), np.sort(order[n - n_held :])
