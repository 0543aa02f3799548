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
from phonenumbers import PhoneNumberType, carrier, geocoder

_PROVINCE = re.compile(r"^(.+?(?:省|自治区|特别行政区))(.*)$")
_COUNTRY_ONLY = {"", "中国"}


@dataclass(frozen=True, slots=True)
class Attribution:
    """What the network knows of a number; empty strings where it knows nothing."""

    province: str = ""
    city: str = ""
    isp: str = ""
    area_code: str = ""  # with its leading 0, e.g. "0755"


def split_region(description: str) -> tuple[str, tuple[str, ...]]:
    """Split a Chinese geocoder description into a province and its cities.

    ``"广东省深圳市"`` → ``("广东省", ("深圳市",))``; a municipality ``"北京市"`` is its own
    province; ``"辽宁省沈阳市、铁岭市"`` names two cities; ``"中国"`` names none.
    """
    if description in _COUNTRY_ONLY:
        return "", ()
    m = _PROVINCE.match(description)
    if m:
        province, rest = m.group(1), m.group(2)
    else:  # 北京市, 上海市, 天津市, 重庆市
        province, rest = description, description
    cities = tuple(c for c in rest.split("、") if c)
    return province, cities


@functools.cache
def _area_codes() -> dict[tuple[str, str], str]:
    """(province, city) → area code, read off phonenumbers' own fixed-line metadata."""
    table: dict[tuple[str, str], str] = {}
    ambiguous: set[tuple[str, str]] = set()
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
    province, cities = split_region(geocoder.description_for_number(number, "zh"))
    city = cities[0] if cities else ""  # a code shared by several cities: the first is its main one
    isp = carrier.name_for_number(number, "zh")
    code = ""
    length = phonenumbers.length_of_geographical_area_code(number)
    if length:
        code = "0" + phonenumbers.national_significant_number(number)[:length]
    elif city:
        code = area_code_for(province, city)
    return Attribution(province, city, isp, code)


def attribute_e164(e164: str) -> Attribution:
    """`attribute` for an E.164 string; an unparsable one gives an empty Attribution."""
    try:
        return attribute(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return Attribution()
