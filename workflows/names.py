"""Finding people's names in text: for keeping staff out of customer notices and post-mortems.

Pure and deterministic (the standard library's ``unicodedata`` only), so
activities, workflow validators, the reporting CLI and the tests all use the
same matcher.

**How text is compared.** Text and names are folded the same way before
they are compared: Unicode compatibility normalisation (NFKC's
decomposition, so ``ﬁ``, full-width letters and decomposed accents compare
as their plain forms), full case folding (``Strauß`` = ``STRAUSS``),
diacritics removed (``Siobhán`` = ``Siobhan``, ``Zoë`` = ``Zoe``, ``Łukasz``
= ``Lukasz``), and every apostrophe alike and optional (``O'Brien`` =
``O’Brien`` = ``OBrien``). Matches are whole words; a possessive ``'s``
stays outside the match ("Lomax's" → "our team's").

**The forms of a name.** For each name: the whole name; given and family
names in either order, also as "Family, Given" (a name written with a
comma, "Lomax, Kevin", is read as family name first); and every part on its
own (at least ``min_part`` letters; particles such as "van" or "de" only
inside a longer form).

**Names that are also ordinary words.** A part that is an everyday English
word (``ORDINARY_WORDS``: "May", "Will", "Mark", "Rose", "Young", …) is
matched on its own only where it stands as a name:

- written with a capital initial and not in capitals throughout ("MAY" is
  an acronym or a shout, "may" a verb);
- not the first word of a sentence or line ("Will you …");
- for a month ("May", "June", "April", "August"): not next to a number and
  not after a word of time ("3 May", "May 2027", "in May", "end of May").

Next to another part of the same name it always matches ("will may" is
matched only when written "Will May", since each part is then an ordinary
word). So "promised for 3 May will arrive late" is left alone with staff
"May Chen" and "Will Turner", while "our colleague May packed it" is not.
The price of this rule: a lone ordinary-word name that opens a sentence
("Will packed it.") is not recognised; the check at open time refuses the
customer-facing text that names staff by any form that is not an ordinary
word, and nothing in amends ever writes a staff name into a notice itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Letters that compatibility decomposition leaves alone but that people
# write without their stroke or ligature.
_FOLD = str.maketrans({
    "ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ı": "i", "ŧ": "t", "ŀ": "l",
    "æ": "ae", "œ": "oe", "þ": "th", "ĸ": "k",
    # Apostrophes and look-alikes: one kind, dropped when names are compared.
    "’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'", "ʹ": "'", "＇": "'", "‛": "'",
    # Hyphens and dashes between the parts of a name.
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-",
})

# Tokens: letters and digits, with apostrophes inside ("o'brien", "lomax's").
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*'?")
# What may stand between the parts of one name: spaces, a hyphen, a comma ("Lomax, Kevin").
_JOIN = re.compile(r"\s*,?\s+|\s*,\s*|\s*-\s*")
# What ends a sentence, or starts a line or a bullet.
_SENTENCE_END = re.compile(r"(?:[.!?…]+[\"'”’)\]]*|[\n\r]\s*(?:[-*•]\s*)?)\s*$")

PARTICLES = frozenset({
    "al", "bin", "ben", "bint", "da", "das", "de", "dei", "del", "della", "der", "den", "di", "do", "dos", "du",
    "el", "ibn", "la", "le", "los", "st", "ter", "van", "von", "y", "zu",
})

MONTHS = frozenset({"january", "february", "march", "april", "may", "june", "july", "august", "september",
                    "october", "november", "december"})

# Words of time before a month: "in May", "end of June".
_TIME_WORDS = frozenset({"in", "since", "until", "till", "during", "early", "mid", "late", "end", "of", "next",
                         "last", "this", "every", "each", "through", "throughout"})

# Everyday English words that are also given or family names. Such a part is
# matched on its own only where it stands as a name (see the module's doc).
ORDINARY_WORDS = frozenset("""
    a an as at be by do go he hi in is it me my no of oh ok on or so to up us we ye yo ah ha ma pa
    all and are art bay bee big bill bird bishop black bliss bloom blue bob bond bright brook brown buck bud
    bunny bush butler cane candy carol cash chance chase cherry chip church clay cliff coal cole cook cross
    crow crystal daisy dale dawn day dean dear destiny dot drake drew duke earl east eve faith fan field
    fields finch fish fisher ford forest fox frank free friend frost gay gene gentle gift ginger glen gold
    good grace grant gray green grey guy hale hall hardy harmony hart hawk hay hazel heath heather herb hill
    holly honey hope house hunter iris iron ivy jack jade jay jewel jolly joy june just kin king kit lamb
    lance land lane law liberty light lily little long lord love lucky major mark marsh mason may melody
    merry miles mill miller misty money moon moore more moss new noble norm north oak olive page park parks
    pat patience peace pearl peg penny pepper pike pine poppy pope post potter price prince rain ray reed
    rich river robin rock rod root rose rosemary royal ruby rush rusty sage salt sandy sands sharp shaw short
    silver sky small smith snow son south spring star steel sterling stone storm strong summer sun sunny
    swan sweet swift tan tanner taylor temple trust turner vale violet wall walker ward waters way
    weaver well wells west white will wills win wing winter wise wolf won wood woods wren young
    april august march
""".split())


def fold(text: str) -> str:
    """``text`` as names are compared: compatibility-normalised, case-folded, without diacritics."""
    return "".join(_fold_char(c) for c in text)


def _fold_char(c: str) -> str:
    if c.isascii():
        return c.lower().translate(_FOLD)
    f = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", c).casefold())
    return "".join(ch for ch in f if not unicodedata.combining(ch)).translate(_FOLD)


def _key(token: str) -> str:
    return token.replace("'", "")


@dataclass(frozen=True)
class _Token:
    key: str  # folded, apostrophes dropped
    stem: str | None  # the key without a possessive 's, if it has one
    start: int  # in the original text
    end: int
    stem_end: int  # the end without the possessive


def _tokens(text: str) -> list[_Token]:
    """The words of ``text``, folded, with where each stands in the original."""
    folded: list[str] = []
    origin: list[int] = []  # for each folded character, the index of the original character it came from
    for i, c in enumerate(text):
        f = _fold_char(c)
        folded.append(f)
        origin.extend([i] * len(f))
    flat = "".join(folded)

    def at(j: int) -> int:
        return origin[j] if j < len(origin) else len(text)

    out = []
    for m in _TOKEN.finditer(flat):
        word = m.group()
        stem: str | None = None
        stem_len = len(word)
        if word.endswith("'s") and len(word) > 2:
            stem, stem_len = word[:-2], len(word) - 2
        elif word.endswith("'"):
            stem, stem_len = word[:-1], len(word) - 1
        out.append(_Token(_key(word), _key(stem) if stem else None, at(m.start()), at(m.end()),
                          at(m.start() + stem_len)))
    return out


@dataclass(frozen=True)
class _Form:
    name: str  # the staff name it belongs to, as given
    parts: tuple[str, ...]  # folded keys, in order
    ordinary: bool  # every part is an ordinary word: it must be written as a name


@dataclass(frozen=True)
class NameMatch:
    """Where a staff name stands in a text."""

    name: str
    start: int
    end: int
    text: str

    def group(self, _: int = 0) -> str:
        return self.text


def _forms(name: str, min_part: int) -> list[_Form]:
    if "," in name:
        family_text, _, given_text = name.partition(",")
    else:
        words = name.split()
        given_text, family_text = " ".join(words[:-1]), " ".join(words[-1:])
    given = [_key(t.group()) for t in _TOKEN.finditer(fold(given_text))]
    family = [_key(t.group()) for t in _TOKEN.finditer(fold(family_text))]
    sequences: list[list[str]] = [given + family, family + given]
    if len(given) > 1:
        sequences.append(given)
    if len(family) > 1:
        sequences.append(family)
    sequences += [[p] for p in given + family if len(p) >= min_part and p not in PARTICLES]
    forms = []
    for seq in sequences:
        if seq and all(seq):
            forms.append(_Form(name, tuple(seq), all(p in ORDINARY_WORDS for p in seq)))
    return forms


class NameMatcher:
    """Finds any form of any of ``names`` in a text; ``search`` and ``sub`` work like a compiled pattern's."""

    def __init__(self, names: Iterable[str], min_part: int = 2) -> None:
        self.names = [n for n in dict.fromkeys(names) if n.strip()]
        forms = [f for n in self.names for f in _forms(n, min_part)]
        # Longest first, so "Kevin Lomax" is one match, not two.
        self._by_first: dict[str, list[_Form]] = {}
        for form in sorted(dict.fromkeys(forms), key=lambda f: -len(f.parts)):
            self._by_first.setdefault(form.parts[0], []).append(form)

    def __bool__(self) -> bool:
        return bool(self._by_first)

    def finditer(self, text: str) -> list[NameMatch]:
        tokens = _tokens(text)
        found: list[NameMatch] = []
        i = 0
        while i < len(tokens):
            hit = self._match_at(text, tokens, i)
            if hit is None:
                i += 1
                continue
            form, end = hit
            stop = tokens[i + len(form.parts) - 1]
            # A possessive stays outside: "Lomax's" → "our team's".
            stop_at = stop.stem_end if stop.key != form.parts[-1] else stop.end
            found.append(NameMatch(form.name, tokens[i].start, stop_at, text[tokens[i].start:stop_at]))
            i = end
        return found

    def _match_at(self, text: str, tokens: list[_Token], i: int) -> tuple[_Form, int] | None:
        first = tokens[i]
        candidates = self._by_first.get(first.key, []) + (
            self._by_first.get(first.stem, []) if first.stem else [])
        for form in sorted(candidates, key=lambda f: -len(f.parts)):
            n = len(form.parts)
            if i + n > len(tokens):
                continue
            window = tokens[i:i + n]
            if not all(_same(t, p, last=(k == n - 1)) for k, (t, p) in enumerate(zip(window, form.parts, strict=True))):
                continue
            if not all(_JOIN.fullmatch(text[a.end:b.start]) for a, b in zip(window, window[1:], strict=False)):
                continue
            if form.ordinary and not _stands_as_name(text, tokens, i, n):
                continue
            return form, i + n
        return None

    def search(self, text: str) -> NameMatch | None:
        found = self.finditer(text)
        return found[0] if found else None

    def sub(self, repl: str | Callable[[NameMatch], str], text: str) -> str:
        out, last = [], 0
        for m in self.finditer(text):
            out += [text[last:m.start], repl(m) if callable(repl) else repl]
            last = m.end
        return "".join(out) + text[last:]


def _same(token: _Token, part: str, last: bool) -> bool:
    return token.key == part or (last and token.stem == part)


def _capitalised(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return bool(letters) and letters[0].isupper() and not (len(letters) > 1 and all(c.isupper() for c in letters))


def opens_sentence(text: str, index: int) -> bool:
    """Whether ``text[index:]`` starts a sentence, a line or a bullet."""
    before = text[:index]
    return not before.strip() or bool(_SENTENCE_END.search(before))


def _stands_as_name(text: str, tokens: list[_Token], i: int, n: int) -> bool:
    """Ordinary words (only) make a name here: capitalised, not opening a sentence, not a date."""
    window = tokens[i:i + n]
    if not all(_capitalised(text[t.start:t.end]) for t in window):
        return False
    if n == 1 and opens_sentence(text, window[0].start):
        return False
    if n == 1 and window[0].key in MONTHS:
        prev = tokens[i - 1] if i > 0 and _JOIN.fullmatch(text[tokens[i - 1].end:window[0].start]) else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) and _JOIN.fullmatch(text[window[0].end:tokens[i + 1].start]) \
            else None
        if any(t is not None and t.key[:1].isdigit() for t in (prev, nxt)):
            return False
        if prev is not None and prev.key in _TIME_WORDS:
            return False
    return True


def name_pattern(names: list[str], min_part: int) -> NameMatcher | None:
    """A matcher for every form of each of ``names`` (see the module's doc); ``None`` when there is none.

    Parts shorter than ``min_part`` letters are matched only inside a longer
    form. The matcher answers ``search(text)`` and ``sub(repl, text)`` as a
    compiled pattern would.
    """
    matcher = NameMatcher(names, min_part)
    return matcher if matcher else None
