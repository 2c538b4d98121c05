"""Parsing plays into speeches and the labels derived from them (names, speakers), splits."""

import doctest
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from symgrad.runtime import plays
from symgrad.runtime.plays import (
    Speech,
    dialogue_lines,
    name_tags,
    parse_speeches,
    read_speeches,
    speaker_lines,
    speaker_names,
    split_indices,
    top_speakers,
)
from symgrad.runtime.text import data_dir

SHAKESPEARE = data_dir() / "tinyshakespeare.txt"
needs_text = pytest.mark.skipif(
    not SHAKESPEARE.exists(), reason=f"{SHAKESPEARE} is absent (set SYMGRAD_DATA_DIR)"
)


@pytest.fixture(scope="module")
def speeches():
    if not SHAKESPEARE.exists():
        pytest.skip(f"{SHAKESPEARE} is absent (set SYMGRAD_DATA_DIR)")
    return read_speeches(SHAKESPEARE)


def test_docstring_examples():
    assert doctest.testmod(plays).failed == 0


def test_parse_edge_cases():
    text = (
        "TITUS:\n\nCOMINIUS:\nNoble Marcius!\nHear me:\nI speak.\n\n\n\nSAMPSON:\n"
        "Gregory, o' my word.\n\nFirst Citizen:\nLast line, no newline"
    )
    assert parse_speeches(text) == [
        Speech("TITUS", ()),  # a heading with no lines
        Speech("COMINIUS", ("Noble Marcius!", "Hear me:", "I speak.")),  # "Hear me:" is dialogue
        Speech("SAMPSON", ("Gregory, o' my word.",)),  # several blank lines before a heading
        Speech("First Citizen", ("Last line, no newline",)),
    ]
    assert parse_speeches("") == []


def test_speaker_names_rule_on_a_small_play():
    play = [
        Speech("KING RICHARD III", ("Good Catesby, go; the king is here.",)),
        Speech("CATESBY", ("My lord the king, Richard calls for Catesby.",)),
        Speech("DUKE OF YORK", ("So says York, and the duke of York.",)),
        Speech("First Citizen", ("A citizen, a first Citizen of the city.",)),
        Speech("Nurse", ("Nurse, I say Nurse!",)),
    ]
    # king is lower case in dialogue, iii is a numeral, duke is a title ("DUKE OF"), the
    # others head no speech in capitals; Nurse is capitalised but a role (title-case heading).
    assert speaker_names(play) == {"richard", "catesby", "york"}
    assert speaker_names(play, min_count=2) == {"catesby", "york"}


@needs_text
def test_the_whole_text_parses(speeches):
    text = SHAKESPEARE.read_text()
    headings = re.findall(r"(?:\A|(?<=\n\n))[^\n]+:$", text, flags=re.M)
    assert len(speeches) == len(headings) > 7000
    assert speeches[0] == Speech(
        "First Citizen", ("Before we proceed any further, hear me speak.",)
    )
    lines = text.splitlines()
    blank = sum(1 for line in lines if not line.strip())
    assert len(dialogue_lines(speeches)) + len(speeches) + blank == len(lines)


@needs_text
def test_speaker_names_of_the_plays(speeches):
    names = speaker_names(speeches)
    assert {"menenius", "romeo", "juliet", "richard", "gloucester", "petruchio"} <= names
    roles_and_titles = {"first", "citizen", "king", "queen", "lady", "duke", "nurse", "of"}
    assert not names & (roles_and_titles | {"iii", "all", "servant"})
    tokens, labels = name_tags(dialogue_lines(speeches)[:2000], names)
    assert [len(t) for t in tokens] == [len(y) for y in labels]
    flat_tokens = [t for line in tokens for t in line]
    flat_labels = np.concatenate(labels)
    tagged = {t for t, y in zip(flat_tokens, flat_labels) if y}
    assert {"menenius", "marcius"} <= tagged <= names
    assert 0.002 < flat_labels.mean() < 0.05  # names are rare tokens


@needs_text
def test_speaker_classification_data(speeches):
    texts, labels, speakers = speaker_lines(speeches, k=5)
    assert speakers == top_speakers(speeches, 5) and len(set(speakers)) == 5
    assert speakers[0] == "GLOUCESTER"  # the most lines in tiny Shakespeare
    assert len(texts) == len(labels) and labels.dtype == np.int64
    per_speaker = np.bincount(labels, minlength=5)
    assert (np.diff(per_speaker) <= 0).all()  # classes ranked by lines
    lines_of = {s: [] for s in speakers}
    for speech in speeches:
        if speech.speaker in lines_of:
            lines_of[speech.speaker].extend(speech.lines)
    for i, speaker in enumerate(speakers):
        assert [t for t, y in zip(texts, labels) if y == i] == lines_of[speaker]


@given(st.integers(0, 200), st.floats(0.0, 1.0), st.one_of(st.none(), st.integers(0, 99)))
def test_split_indices_partition(n, held_out, seed):
    train, held = split_indices(n, held_out, seed)
    assert sorted([*train.tolist(), *held.tolist()]) == list(range(n))
    assert len(held) == round(n * held_out)
    assert (np.diff(train) > 0).all() and (np.diff(held) > 0).all()
    if seed is None:
        assert (held == np.arange(n - len(held), n)).all()
    again = split_indices(n, held_out, seed)
    assert (again[0] == train).all() and (again[1] == held).all()
