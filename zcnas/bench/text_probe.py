"""Token probes for NAS-Bench-BERT from text that ships with a package, or from random ids.

The authors scored their networks on 128 OpenWebText documents tokenised by ELECTRA-small's
WordPiece tokenizer; neither the corpus nor the tokenizer can be had offline from a package
registry. zcnas's default probe text is instead the Jargon File 4.4.7 (Eric S. Raymond et al.,
public domain), which Debian ships as the package ``jargon-text``
(``/usr/share/doc/jargon-text/jargon.txt.gz``, 1.7 MB of English prose): real,
redistributable English text that any Debian/Ubuntu machine gets with one ``apt-get install``.
Any other UTF-8 text file (plain or gzip) can be given instead, and ``random`` gives uniformly
random ids.

The tokenizer (`WordVocabulary`) is built deterministically from the text itself: lower-cased
words (runs of letters and digits) and single punctuation characters, ranked by frequency
(ties alphabetically), numbered from 104 on, as ELECTRA's WordPiece vocabulary keeps 0 for
[PAD], 100-103 for [UNK], [CLS], [SEP], [MASK] (1-99 are unused there too); at most the
network's 30522 ids, words beyond that become [UNK]. At initialisation the embedding rows are
random, so which id a word gets does not matter; what a text probe gives that random ids do
not is text's repetition (frequent words, recurring phrases). The Jargon File has about 19,400
distinct tokens, so its vocabulary is smaller than the network's embedding table; the rows it
never uses are, as in the authors' batch (128 documents touch only a few thousand of ELECTRA's
30522 ids), never looked up.

Sequences are packed as ELECTRA's pre-training data builder packs its examples: the token
stream of the whole text cut into consecutive windows of L − 2 tokens, each framed as
``[CLS] window [SEP]``, so no sequence is padded and the attention mask is all ones (ELECTRA-
small pre-trains on 128-token sequences, the default length here). The probe keeps P windows
drawn without replacement by a seed, in text order.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zcnas.bench.tokens import TokenProbe
from zcnas.errors import BenchmarkError

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = 0, 100, 101, 102, 103
FIRST_WORD_ID = 104
ELECTRA_VOCAB_SIZE = 30522

JARGON_FILE = Path("/usr/share/doc/jargon-text/jargon.txt.gz")
JARGON_NAME = "jargon"
RANDOM_NAME = "random"
JARGON_DESCRIPTION = (
    "the Jargon File 4.4.7 (public domain; Debian package jargon-text, /usr/share/doc/jargon-text/jargon.txt.gz)"
)
# Lines of the Jargon File's tables are drawn with box-drawing characters: not prose, left out.
_BOX_DRAWING = re.compile("[\u2500-\u257f]")
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]|_", re.UNICODE)


def read_text(source: str | Path) -> tuple[str, str, str]:
    """(text, what it is, its SHA-256) of "jargon" or a path to a UTF-8 text file (.gz or plain)."""
    if str(source) == JARGON_NAME:
        if not JARGON_FILE.exists():
            raise BenchmarkError(
                f"The default probe text, the Jargon File, is not installed ({JARGON_FILE}); install it with "
                "`apt-get install jargon-text`, or pass --probe-text FILE (any UTF-8 text) or --probe-text random."
            )
        path, described = JARGON_FILE, JARGON_DESCRIPTION
    else:
        path = Path(source)
        if not path.is_file():
            raise BenchmarkError(
                f"Probe text {path} is not a file; give a UTF-8 text file (plain or .gz), 'jargon' or 'random'."
            )
        described = f"the text file {path.name}"
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise BenchmarkError(f"Probe text {path} is a damaged gzip file ({error}).") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BenchmarkError(f"Probe text {path} is not UTF-8 text.") from None
    return text, described, hashlib.sha256(raw).hexdigest()


def clean_text(text: str) -> str:
    """Drop the lines drawn with box-drawing characters (tables), keep the rest."""
    return "\n".join(line for line in text.splitlines() if not _BOX_DRAWING.search(line))


def words(text: str) -> list[str]:
    """Lower-cased words (runs of letters/digits) and single punctuation characters, in order."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class WordVocabulary:
    """A word-level vocabulary built from a text: token -> id (ELECTRA's special ids kept)."""

    ids: dict[str, int]
    size: int  # ids lie in [0, size)

    @classmethod
    def build(cls, tokens: list[str], max_size: int = ELECTRA_VOCAB_SIZE) -> "WordVocabulary":
        if max_size <= FIRST_WORD_ID:
            raise BenchmarkError(f"A vocabulary needs more than {FIRST_WORD_ID} ids (ELECTRA's specials); got {max_size}.")
        counts = Counter(tokens)
        ranked = sorted(counts, key=lambda token: (-counts[token], token))[: max_size - FIRST_WORD_ID]
        ids = {token: FIRST_WORD_ID + rank for rank, token in enumerate(ranked)}
        return cls(ids, FIRST_WORD_ID + len(ranked))

    def encode(self, tokens: list[str]) -> np.ndarray:
        return np.array([self.ids.get(token, UNK_ID) for token in tokens], dtype=np.int64)


def text_probe(
    source: str | Path,
    *,
    size: int,
    length: int,
    seed: int,
    num_classes: int,
    vocab_size: int = ELECTRA_VOCAB_SIZE,
) -> TokenProbe:
    """P = `size` packed sequences of `length` tokens from the text, with surrogate labels."""
    _check_shape(size, length)
    text, described, sha = read_text(source)
    tokens = words(clean_text(text))
    vocabulary = WordVocabulary.build(tokens, vocab_size)
    stream = vocabulary.encode(tokens)
    window = length - 2
    available = len(stream) // window
    if available < size:
        raise BenchmarkError(
            f"Probe text {described} holds {len(stream):,} tokens, {available} windows of {window}; "
            f"ask for at most {available} sequences (--probe-size) or shorter ones (--probe-length)."
        )
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(available, size=size, replace=False))
    ids = np.empty((size, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = CLS_ID, SEP_ID
    for row, start in enumerate(chosen):
        ids[row, 1:-1] = stream[start * window : (start + 1) * window]
    tokenizer = (
        f"zcnas word-level vocabulary of {described} ({vocabulary.size - FIRST_WORD_ID:,} words and punctuation "
        f"by frequency from id {FIRST_WORD_ID}; [PAD] 0, [UNK] {UNK_ID}, [CLS] {CLS_ID}, [SEP] {SEP_ID} as ELECTRA's "
        f"WordPiece ids; {int((stream == UNK_ID).sum()):,} of {len(stream):,} tokens unknown)"
    )
    return _with_labels(
        ids,
        vocabulary.size,
        rng,
        num_classes,
        {
            "tokenizer": tokenizer,
            "text": described,
            "text_sha256": sha,
            "packing": f"[CLS] + {window} consecutive tokens + [SEP]; {size} of the text's {available} windows "
            f"drawn by seed {seed}, in text order; no padding",
        },
    )


def random_probe(
    *, size: int, length: int, seed: int, num_classes: int, vocab_size: int = ELECTRA_VOCAB_SIZE
) -> TokenProbe:
    """P sequences of [CLS], L − 2 ids drawn uniformly from the non-special ids [104, vocab), [SEP]."""
    _check_shape(size, length)
    rng = np.random.default_rng(seed)
    ids = rng.integers(FIRST_WORD_ID, vocab_size, size=(size, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = CLS_ID, SEP_ID
    return _with_labels(
        ids,
        vocab_size,
        rng,
        num_classes,
        {
            "tokenizer": f"none: ids drawn uniformly from [{FIRST_WORD_ID}, {vocab_size}) by seed {seed}, "
            f"framed by [CLS] {CLS_ID} and [SEP] {SEP_ID}",
            "text": "random",
        },
    )


def _with_labels(ids: np.ndarray, vocab_size: int, rng: np.random.Generator, num_classes: int, attrs: dict) -> TokenProbe:
    # The text has no task labels: proxies that need labels get the surrogate the docs name,
    # cross-entropy on labels drawn uniformly, once, with the probe.
    labels = rng.integers(0, num_classes, size=ids.shape[0], dtype=np.int64)
    return TokenProbe(
        ids=ids,
        attention_mask=np.ones(ids.shape, dtype=np.uint8),
        vocab_size=int(vocab_size),
        labels=labels,
        attrs=attrs,
        label_attrs={
            "description": f"surrogate labels drawn uniformly from [0, {num_classes}) with the probe: "
            "the probe text has no task labels (proxies that need labels take the cross-entropy on these)"
        },
    )


def _check_shape(size: int, length: int) -> None:
    if size < 1:
        raise BenchmarkError(f"--probe-size must be at least 1; got {size}.")
    if not 3 <= length <= 512:
        raise BenchmarkError(f"--probe-length must be 3..512 tokens (NAS-Bench-BERT has 512 positions); got {length}.")
