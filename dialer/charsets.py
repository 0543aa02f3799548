"""Which encoding a list is in, and its lines decoded — Chinese Excel exports first.

Theory of operation
-------------------
Lists come from Excel in China: GBK (Excel's "CSV" on a Chinese Windows), UTF-8 with or without a
BOM ("CSV UTF-8"), now and then a file stitched from both (a GBK header with rows pasted from a
UTF-8 export). A statistical detector alone gets short Chinese files wrong (a 3-row GBK file read
as Korean cp949) and is at the mercy of where its sample ends (a sample cut inside a two-byte
character, refused). So the decision is made in this order, on a sample that ends on a line
break (a line break byte never occurs inside a GB18030 or UTF-8 character):

1. a byte order mark: UTF-8 or UTF-16;
2. the sample decodes as UTF-8: UTF-8;
3. it decodes as GB18030 (the superset of GB2312 and GBK), into plausible text — no Hangul,
   kana, private-use or C1 control characters, which a GB18030 reading of a non-Chinese file
   yields: GB18030;
   decided line by line when the sample mixes them (the majority wins; the lines in neither are
   then refused as rows);
4. otherwise the file is refused, naming the option that settles it, with charset-normalizer's
   guess as a hint (``--encoding big5``): a guess is not taken silently, because a Western
   code page reads any bytes into plausible-looking text.

Lines are then decoded one by one (`LineDecoder`): in a UTF-8 or GB18030 file, a line in the
other of the two is read in it (and counted), so a stitched file keeps its names right; a line
in neither is reported as such, and costs that row alone. An encoding the user gave is applied
strictly: no guessing.
"""

from __future__ import annotations

import codecs
import re

from dialer.errors import DialerError

SAMPLE_BYTES = 256 * 1024

_GB = {"gb2312", "gbk", "gb18030", "cp936", "hz", "euc_cn", "euccn"}

# Characters a GB18030 (or a guessed) reading of a file that is not Chinese text produces, and a
# Chinese list never holds: C1 controls, Hangul, kana, the private use area, specials.
_IMPLAUSIBLE = re.compile("[\x80-\x9f\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\uac00-\ud7af"
                          "\ue000-\uf8ff\ufff0-\ufffd]")
_CJK = re.compile("[\u3400-\u9fff]")


class EncodingUnknown(DialerError):
    """The file's encoding cannot be told from its bytes."""


def canonical(name: str) -> str:
    """A Python codec name, the GB family read as GB18030; LookupError if unknown."""
    info = codecs.lookup(name)
    return "gb18030" if info.name.replace("-", "_") in _GB or info.name in _GB else info.name


def plausible(text: str) -> bool:
    """Text a Chinese or English list could hold."""
    return _IMPLAUSIBLE.search(text) is None


def _decodes(sample: bytes, encoding: str, complete: bool) -> str | None:
    try:
        return codecs.getincrementaldecoder(encoding)().decode(sample, final=complete)
    except UnicodeDecodeError:
        return None


def detect(sample: bytes, *, complete: bool) -> str:
    """The encoding of a file from its first bytes (`complete`: the sample is the whole file).
    Raises EncodingUnknown."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if not complete and b"\n" in sample:
        sample = sample[:sample.rindex(b"\n") + 1]  # never cut inside a character
    if _decodes(sample, "utf-8", complete) is not None:
        return "utf-8"
    # line by line: a file stitched from both, or with a few broken lines, goes by its majority
    # (the lines in neither are refused one by one)
    utf8 = gb = neither = 0
    for line in sample.split(b"\n"):
        if line.isascii():
            continue
        which = _classify(line)[1]
        utf8, gb, neither = utf8 + (which == "utf-8"), gb + (which == "gb18030"), neither + (which is None)
    if utf8 + gb > neither:
        return "utf-8" if utf8 > gb else "gb18030"
    from charset_normalizer import from_bytes  # slow to import: only for files neither of the above

    best = from_bytes(sample).best()
    guess = f"; a guess from its bytes: {canonical(best.encoding)}" if best is not None else ""
    raise EncodingUnknown(f"cannot tell the file's encoding: it is neither UTF-8 nor GB18030; give it with "
                          f"--encoding (for example --encoding big5){guess}")


def _classify(line: bytes, prefer: str = "") -> tuple[str | None, str | None]:
    """A non-ASCII line's text and which of UTF-8 and GB18030 it is in (None: neither).

    A line that reads in both: in a file detected as UTF-8 (`prefer`), UTF-8 — "José",
    "Müller" and "25°C" are valid GB18030 too, as Chinese. Otherwise the reading that holds
    Chinese: short GBK text is often valid UTF-8 (叶霞, D2 B6 CF BC, reads "Ҷϼ"), and a UTF-8
    line pasted into a GBK file reads as GB18030 mojibake (李四 → 鏉庡洓). A reading with
    Hangul, kana or C1 controls is no reading."""
    utf8 = _decodes(line, "utf-8", True)
    if utf8 is not None and not plausible(utf8):
        utf8 = None
    if utf8 is not None and (prefer == "utf-8" or _CJK.search(utf8)):
        return utf8, "utf-8"
    gb = _decodes(line, "gb18030", True)
    if gb is not None and plausible(gb) and (utf8 is None or _CJK.search(gb)):
        return gb, "gb18030"
    return (utf8, "utf-8") if utf8 is not None else (None, None)


class LineDecoder:
    """Decodes a file's lines. For a detected UTF-8 or GB18030 file, a line in the other one is
    read in it (`switched` counts them); `decode` returns None for a line in neither."""

    def __init__(self, encoding: str, *, detected: bool) -> None:
        self.encoding = encoding
        self.switched = 0
        self._pair = detected and encoding in ("utf-8", "utf-8-sig", "gb18030")

    def decode(self, line: bytes) -> str | None:
        if line.isascii():
            return line.decode("ascii")
        if not self._pair:
            try:
                return line.decode(self.encoding)
            except UnicodeDecodeError:
                return None
        if line.startswith(codecs.BOM_UTF8):  # the file's BOM, before the first header
            line = line[3:]
        text, which = _classify(line, "gb18030" if self.encoding == "gb18030" else "utf-8")
        if which is None:
            return None
        if which != ("gb18030" if self.encoding == "gb18030" else "utf-8"):
            self.switched += 1
        return text

    def describe(self) -> str:
        """What a line that did not decode is not."""
        return "bytes that are neither UTF-8 nor GB18030" if self._pair else f"bytes that are not {self.encoding}"


__all__ = ["SAMPLE_BYTES", "EncodingUnknown", "LineDecoder", "canonical", "detect", "plausible"]
