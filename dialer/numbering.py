"""Where a Chinese number lives: province, city, carrier and the city's area code (pure).

phonenumbers knows a landline's area code (it is part of the number) and a mobile's city by
name, but not the area code of a mobile's city. The long-distance rule for mobiles needs exactly
that, so the map city → area code is derived once from phonenumbers itself: every fixed-line
area code is tried, and the cities its geocoder names are remembered under that code.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

# (phonenumbers' geocoder and carrier data take a third of a second and 150 MB to load: they are
# imported where a number is attributed, so that commands that never attribute one start fast)

#: the 34 provincial divisions by their full names; phonenumbers writes some of them short
#: ("新疆乌鲁木齐市", "内蒙古通辽市", "云南红河", "天津")
PROVINCES = (
    "北京市", "天津市", "上海市", "重庆市",
    "河北省", "山西省", "辽宁省", "吉林省", "黑龙江省", "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省",
    "河南省", "湖北省", "湖南省", "广东省", "海南省", "四川省", "贵州省", "云南省", "陕西省", "甘肃省", "青海省",
    "台湾省",
    "内蒙古自治区", "广西壮族自治区", "西藏自治区", "宁夏回族自治区", "新疆维吾尔自治区",
    "香港特别行政区", "澳门特别行政区",
)
MUNICIPALITIES = frozenset(PROVINCES[:4])


def _short(full: str) -> str:
    for suffix in ("维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "特别行政区", "省", "市"):
        if full.endswith(suffix):
            return full[: -len(suffix)]
    return full


# longest first, full names before short ones: "吉林省吉林市" is the province 吉林省
_PREFIXES = sorted([(full, full) for full in PROVINCES] + [(_short(full), full) for full in PROVINCES],
                   key=lambda pair: (-len(pair[0]), pair[0] != pair[1]))
_COUNTRY_ONLY = {"", "中国"}
@dataclass(frozen=True, slots=True)
class Attribution:
    """What the network knows of a number; empty strings where it knows nothing."""

    province: str = ""
    city: str = ""
    isp: str = ""
    area_code: str = ""  # with its leading 0, e.g. "0755"


def split_region(description: str) -> tuple[str, tuple[str, ...]]:
    """Split a Chinese geocoder description into a province (its full name) and its cities.

    ``"广东省深圳市"`` → ``("广东省", ("深圳市",))``; ``"新疆乌鲁木齐市"`` → ``("新疆维吾尔自治区",
    ("乌鲁木齐市",))``; a municipality ``"北京市"`` is its own province and city; ``"辽宁省沈阳市、
    铁岭市"`` names two cities; ``"中国"`` names none.
    """
    if description in _COUNTRY_ONLY:
        return "", ()
    for prefix, full in _PREFIXES:
        if description.startswith(prefix):
            rest = description[len(prefix):]
            if full in MUNICIPALITIES:
                return full, (full,)
            return full, tuple(c for c in rest.split("、") if c)
    return description, (description,)  # a name we do not know: kept whole


@functools.cache
def _area_codes() -> dict[tuple[str, str], str]:
    """(province, city) → area code, read off phonenumbers' own fixed-line metadata."""
    table: dict[tuple[str, str], str] = {}
    ambiguous: set[tuple[str, str]] = set()
    from phonenumbers import geocoder

    codes = ["10", *map(str, range(20, 30)), *map(str, range(300, 1000))]
    for code in codes:
        for subscriber in ("23456789", "2345678", "6234567"):
            number = phonenumbers.parse("+86" + code + subscriber)
            if not phonenumbers.is_valid_number(number):
                continue
            if phonenumbers.number_type(number) != PhoneNumberType.FIXED_LINE:
                continue
            province, cities = split_region(geocoder.description_for_number(number, "zh"))
            for city in cities:
                key = (province, city)
                if key in table and table[key] != "0" + code:
                    ambiguous.add(key)
                table.setdefault(key, "0" + code)
            break
    for key in ambiguous:  # a city under two codes: we cannot say which one is its own
        del table[key]
    return table


def area_code_for(province: str, city: str) -> str:
    """The area code (``"0755"``) of a city, ``""`` when it is unknown or ambiguous."""
    return _area_codes().get((province, city), "")


def attribute(number: phonenumbers.PhoneNumber) -> Attribution:
    """Province, city, carrier and area code of a parsed number (Chinese names)."""
    if number.country_code != 86:
        return Attribution()
    length = phonenumbers.length_of_geographical_area_code(number)
    code = "0" + phonenumbers.national_significant_number(number)[:length] if length else ""
    from phonenumbers import carrier, geocoder
    return _attribution(geocoder.description_for_number(number, "zh"), carrier.name_for_number(number, "zh"), code)


def attribute_e164(e164: str) -> Attribution:
    """`attribute` for an E.164 string; an unparsable one gives an empty Attribution."""
    try:
        return attribute(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return Attribution()


# -- the fast path for Chinese numbers -------------------------------------------------------------
# A contact list holds up to millions of numbers; phonenumbers' public functions cost 20-40 µs a
# number. The functions below give the same answers from the same metadata at a few µs: the
# region's patterns, checked in phonenumbers' own order, and its prefix tables read directly.
# tests/test_numbering.py compares them with the public functions on random numbers.

_CN = phonenumbers.PhoneMetadata.metadata_for_region("CN")


def _desc(desc: object) -> tuple[re.Pattern[str], frozenset[int]] | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    return re.compile(pattern), frozenset(getattr(desc, "possible_length", ()) or ())


_GENERAL = _desc(_CN.general_desc)
_SPECIAL = [(t, d) for t, d in (
    (PhoneNumberType.PREMIUM_RATE, _desc(_CN.premium_rate)), (PhoneNumberType.TOLL_FREE, _desc(_CN.toll_free)),
    (PhoneNumberType.SHARED_COST, _desc(_CN.shared_cost)), (PhoneNumberType.VOIP, _desc(_CN.voip)),
    (PhoneNumberType.PERSONAL_NUMBER, _desc(_CN.personal_number)), (PhoneNumberType.PAGER, _desc(_CN.pager)),
    (PhoneNumberType.UAN, _desc(_CN.uan)), (PhoneNumberType.VOICEMAIL, _desc(_CN.voicemail)),
) if d is not None]
_FIXED = _desc(_CN.fixed_line)
_MOBILE = _desc(_CN.mobile)


def _matches(nsn: str, desc: tuple[re.Pattern[str], frozenset[int]] | None) -> bool:
    if desc is None:
        return False
    pattern, lengths = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


def cn_number_type(nsn: str) -> PhoneNumberType:
    """phonenumbers.number_type of +86 `nsn` (national significant number, digits only)."""
    if len(nsn) == 11 and nsn[0] == "1" and nsn[1] in "3456789":
        # The usual case, a mobile: no pattern checked before the mobile one (general 1\d{10},
        # premium, toll-free, shared-cost, fixed-line) can match 11 digits starting 13–19.
        return PhoneNumberType.MOBILE if _matches(nsn, _MOBILE) else PhoneNumberType.UNKNOWN
    if not _matches(nsn, _GENERAL):
        return PhoneNumberType.UNKNOWN
    for kind, desc in _SPECIAL:
        if _matches(nsn, desc):
            return kind
    if _matches(nsn, _FIXED):
        if _CN.same_mobile_and_fixed_line_pattern or _matches(nsn, _MOBILE):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if _matches(nsn, _MOBILE):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def cn_area_length(nsn: str) -> int:
    """Length of a Chinese landline's area code without its 0: 10 and 20–29 have two digits,
    every other one three."""
    return 2 if nsn[:1] == "1" or nsn[:1] == "2" else 3


def _prefix_name(data: dict[str, dict[str, str]], longest: int, digits: str) -> str:
    """What phonenumbers' prefix tables say in Chinese of the number `digits` (with its
    country code), longest prefix first, as prefix._prefix_description_for_number does."""
    for length in range(min(longest, len(digits)), 0, -1):
        entry = data.get(digits[:length])
        if entry is not None:
            name = entry.get("zh")
            if name is not None:
                return name
    return ""


@functools.cache
def _attribution(description: str, isp: str, area_code: str) -> Attribution:
    """The attribution a geocoder description, a carrier and an area code (or "") make; a
    mobile's area code is its city's. Few distinct answers: cached."""
    province, cities = split_region(description)
    city = cities[0] if cities else ""
    if not area_code and city:
        area_code = area_code_for(province, city)
    return Attribution(province, city, isp, area_code)


def attribute_cn(nsn: str, area_length: int) -> Attribution:
    """`attribute` of a valid Chinese number given as its national significant number; a
    mobile has `area_length` 0. Costs two prefix-table walks; the few thousand distinct
    answers are shared."""
    digits = "86" + nsn
    from phonenumbers import carrierdata, geodata
    description = _prefix_name(geodata.GEOCODE_DATA, geodata.GEOCODE_LONGEST_PREFIX, digits)
    if area_length:
        return _attribution(description, "", "0" + nsn[:area_length])
    isp = _prefix_name(carrierdata.CARRIER_DATA, carrierdata.CARRIER_LONGEST_PREFIX, digits)
    return _attribution(description, isp, "")
