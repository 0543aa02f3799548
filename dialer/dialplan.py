"""Phone numbers as people type them → the exact string the trunk needs (manual §6.4). Pure.

Three steps, each usable alone:

1. `normalize`: strip what people add around a number — ``+86``/``0086``/``86``, spaces, dashes,
   dots, brackets, full-width digits — and keep a trailing extension (``转123``, ``ext. 123``,
   ``#123``) apart. The result's `canonical` text normalises to itself.
2. `classify`: mobile, landline (with its area code), service (400/800, 95xxx and other short
   codes), international or invalid, with province, city and carrier where known.
3. `DialPlan.decide`: local or long-distance against the campaign's home area code, then the
   dial string: outside prefix (``9``) + ``0`` + mobile for a long-distance mobile, + area code
   + number for a long-distance landline, + the bare number when local. Every rule is a setting.

Classification uses phonenumbers' metadata and prefix tables through the fast path of
`dialer.numbering` (the same answers as phonenumbers' public functions at a fraction of their
cost; a million-row list must not spend 30 µs a number on it).
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo

from dialer.errors import DialerError
from dialer.numbering import attribute_cn, cn_area_length, cn_number_type


class NotDialable(DialerError):
    """The number cannot be dialled under this plan; the message says why."""


class Kind(enum.StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    SERVICE = "service"
    INTERNATIONAL = "international"
    INVALID = "invalid"


# -- 1. normalisation ----------------------------------------------------------------------------

_EXTENSION = re.compile(
    r"(?:转|轉|分机|分機|ext\.?|extension|x|#|;ext=)\s*(\d{1,8})\s*$", re.IGNORECASE)
_DECORATION = re.compile(r"[\s\-.()\[\]/·]+")
_ALLOWED = re.compile(r"^\+?\d+$")
#: what an ASCII number may be decorated with, removed at once (the fast path)
_PLAIN_DECORATION = str.maketrans("", "", " -.()[]/\t")


@dataclass(frozen=True, slots=True)
class Normalized:
    """A number with its decoration removed.

    `digits` is ``+<country><number>`` for a number outside China, else the Chinese digits as
    dialled nationally (``13800138000``, ``075512345678``, a bare local ``12345678``, ``95588``).
    `extension` is what followed the number (never dialled; kept for the agent).
    """

    digits: str
    extension: str = ""

    @property
    def canonical(self) -> str:
        return self.digits + (f";ext={self.extension}" if self.extension else "")


def normalize(text: str) -> Normalized:
    """Strip decoration from a typed number. Raises NotDialable when no number is left or
    something other than digits remains."""
    if not isinstance(text, str):
        raise NotDialable("not text")
    head = text.lstrip()[:1]
    if head and not (head.isdigit() or head in "+(（＋"):  # "-139…" is a formula in a spreadsheet
        raise NotDialable(f"not a phone number: {text.strip()[:40]!r}")
    extension = ""
    t = text.translate(_PLAIN_DECORATION) if text.isascii() else ""
    if not (t.isdigit() or (t[:1] == "+" and t[1:].isdigit())):
        # the general path: full-width forms, extensions, other separators
        t = unicodedata.normalize("NFKC", text).strip()
        m = _EXTENSION.search(t)
        if m and m.start() > 0:
            extension, t = m.group(1), t[: m.start()]
        t = _DECORATION.sub("", t)
    if not t:
        raise NotDialable("empty number")
    if not _ALLOWED.match(t) or not t.isascii():
        raise NotDialable(f"not a phone number: {text.strip()[:40]!r}")
    if t.startswith("+"):
        digits = t[1:]
    elif t.startswith("00"):
        digits = t[2:]
    elif t.startswith("86") and len(t) >= 12:  # 8613800138000, 861012345678: a country code
        digits = t
    else:
        return Normalized(t, extension)
    if digits.startswith("86"):
        national = _national_from_86(digits[2:])
        if not national.strip("0") or national.startswith("00"):  # "+86 0", "+86 000": no number
            raise NotDialable("empty number")
        return Normalized(national, extension)
    if not digits:
        raise NotDialable("empty number")
    return Normalized("+" + digits, extension)


def _national_from_86(rest: str) -> str:
    """The national form of what followed a +86: mobiles, 400/800 and short codes as they are,
    landlines with their trunk 0 (people also write ``+86 010 …``; that 0 is not doubled)."""
    rest = rest[1:] if rest.startswith("0") else rest
    if (rest.startswith("1") and len(rest) == 11) or len(rest) <= 6:
        return rest
    if rest.startswith(("400", "800")) and len(rest) == 10:
        return rest
    return "0" + rest


# -- 2. classification ---------------------------------------------------------------------------

class NumberInfo(NamedTuple):
    """What a number is. `national` is the Chinese national number without trunk prefixes
    (``13800138000``, ``75512345678`` — no leading 0), `area_code` has its 0 (``0755``).
    (A NamedTuple rather than a dataclass: a million of them are made per list.)"""

    e164: str
    kind: Kind
    national: str = ""
    area_code: str = ""
    province: str = ""
    city: str = ""
    isp: str = ""
    extension: str = ""


_SERVICE_TYPES = {
    PhoneNumberType.TOLL_FREE, PhoneNumberType.SHARED_COST, PhoneNumberType.UAN,
    PhoneNumberType.PREMIUM_RATE, PhoneNumberType.VOIP,
}


_TYPES = {
    PhoneNumberType.MOBILE: Kind.MOBILE, PhoneNumberType.FIXED_LINE: Kind.LANDLINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: Kind.LANDLINE,
    **{t: Kind.SERVICE for t in _SERVICE_TYPES},
}
def classify(n: Normalized, home_area_code: str = "010") -> NumberInfo:
    """Classify a normalised number; a bare local number belongs to `home_area_code`."""
    d = n.digits
    if d.startswith("+"):
        try:
            number = phonenumbers.parse(d)
        except phonenumbers.NumberParseException:
            return NumberInfo(d, Kind.INVALID, extension=n.extension)
        if not phonenumbers.is_valid_number(number):
            return NumberInfo(d, Kind.INVALID, extension=n.extension)
        return NumberInfo(d, Kind.INTERNATIONAL, d[1:], extension=n.extension)
    if d.startswith("0") and len(d) >= 9:
        national = d[1:]
    elif 3 <= len(d) <= 6:
        return _short(d, n.extension)
    elif 7 <= len(d) <= 8 and d[0] != "0":
        national = home_area_code.lstrip("0") + d
    elif 10 <= len(d) <= 12:
        national = d
    else:
        return NumberInfo("+86" + d.lstrip("0"), Kind.INVALID, extension=n.extension)
    kind = _TYPES.get(cn_number_type(national), Kind.INVALID)
    e164 = "+86" + national
    if kind is Kind.MOBILE:
        a = attribute_cn(national, 0)
    elif kind is Kind.LANDLINE:
        a = attribute_cn(national, cn_area_length(national))
    else:
        return NumberInfo(e164, kind, national, extension=n.extension)
    return NumberInfo(e164, kind, national, a.area_code, a.province, a.city, a.isp, n.extension)


@functools.lru_cache(maxsize=4096)
def _is_short(digits: str) -> bool:
    return shortnumberinfo.is_valid_short_number_for_region(phonenumbers.parse(digits, "CN"), "CN")


def _short(d: str, extension: str) -> NumberInfo:
    kind = Kind.SERVICE if _is_short(d) else Kind.INVALID
    return NumberInfo("+86" + d, kind, d, extension=extension)


def parse_number(text: str, home_area_code: str = "010") -> NumberInfo:
    """`normalize` then `classify`. Raises NotDialable when the text holds no number at all."""
    return classify(normalize(text), home_area_code)


# -- 3. the dial plan ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Decision:
    """What to dial and why: `rule` names the rule (see docs/dialplan.md)."""

    dial_string: str
    local: bool
    rule: str


UNKNOWN_CITY_CHOICES = ("long_distance", "local")


@dataclass(frozen=True, slots=True)
class DialPlan:
    """The trunk's dialling rules for one campaign. Every rule is a setting."""

    home_area_code: str = "010"
    outside_prefix: str = "9"
    ld_mobile_prefix: str = "0"
    unknown_city_mobile: str = "long_distance"
    allow_international: bool = False
    international_prefix: str = "00"
    allow_service: bool = True

    def __post_init__(self) -> None:
        for name in ("home_area_code", "outside_prefix", "ld_mobile_prefix", "international_prefix"):
            value = getattr(self, name)
            if not (value == "" or (value.isascii() and value.isdigit())):
                raise ValueError(f"{name} must be digits, got {value!r}")
        if not (self.home_area_code.startswith("0") and 3 <= len(self.home_area_code) <= 4):
            raise ValueError(f"home_area_code must be a Chinese area code like 010 or 0755, got {self.home_area_code!r}")
        if self.unknown_city_mobile not in UNKNOWN_CITY_CHOICES:
            raise ValueError(f"unknown_city_mobile must be one of {UNKNOWN_CITY_CHOICES}")

    def decide(self, info: NumberInfo) -> Decision:
        """The dial string for `info`. Raises NotDialable with the reason."""
        o = self.outside_prefix
        if info.kind is Kind.INVALID:
            raise NotDialable(f"invalid number {info.e164}")
        if info.kind is Kind.INTERNATIONAL:
            if not self.allow_international:
                raise NotDialable("international numbers are not allowed for this campaign")
            return Decision(o + self.international_prefix + info.national, False, "international")
        if info.kind is Kind.SERVICE:
            if not self.allow_service:
                raise NotDialable("service numbers are not allowed for this campaign")
            return Decision(o + info.national, True, "service")
        if info.kind is Kind.MOBILE:
            if not info.area_code:
                local = self.unknown_city_mobile == "local"
                rule = "mobile-unknown-city-" + ("local" if local else "long-distance")
                return Decision(o + ("" if local else self.ld_mobile_prefix) + info.national, local, rule)
            if info.area_code == self.home_area_code:
                return Decision(o + info.national, True, "local-mobile")
            return Decision(o + self.ld_mobile_prefix + info.national, False, "long-distance-mobile")
        # landline
        area = info.area_code
        if area == self.home_area_code:
            return Decision(o + info.national[len(area) - 1:], True, "local-landline")
        return Decision(o + "0" + info.national, False, "long-distance-landline")

    def dial_string(self, text: str) -> tuple[NumberInfo, Decision]:
        """Normalise, classify and decide in one go (for `dialer dialstring`)."""
        info = parse_number(text, self.home_area_code)
        return info, self.decide(info)
