"""The fast path for Chinese numbers gives phonenumbers' own answers."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from dialer.numbering import attribute, attribute_cn, cn_area_length, cn_number_type

national = st.one_of(
    st.from_regex(r"1[3-9]\d{9}", fullmatch=True),  # mobiles and what looks like them
    st.from_regex(r"1\d{6,11}", fullmatch=True),
    st.from_regex(r"(10|2\d|[3-9]\d\d)[0-9]\d{6,7}", fullmatch=True),  # landlines
    st.from_regex(r"(400|800|950|96)\d{4,8}", fullmatch=True),
    st.from_regex(r"\d{7,12}", fullmatch=True),
)


@settings(max_examples=2000)
@given(national)
def test_number_type_agrees_with_phonenumbers(nsn: str) -> None:
    number = phonenumbers.PhoneNumber(country_code=86, national_number=int(nsn))
    if str(number.national_number) != nsn:  # a leading zero is not a national number
        return
    assert cn_number_type(nsn) == phonenumbers.number_type(number)


@settings(max_examples=1000)
@given(national)
def test_attribution_and_area_code_agree_with_phonenumbers(nsn: str) -> None:
    number = phonenumbers.PhoneNumber(country_code=86, national_number=int(nsn))
    if str(number.national_number) != nsn:
        return
    kind = phonenumbers.number_type(number)
    if kind is PhoneNumberType.FIXED_LINE:
        length = phonenumbers.length_of_geographical_area_code(number)
        assert cn_area_length(nsn) == length
        assert attribute_cn(nsn, length) == attribute(number)
    elif kind is PhoneNumberType.MOBILE:
        assert attribute_cn(nsn, 0) == attribute(number)


def test_every_province_in_phonenumbers_data_is_named_and_its_mobiles_dial_locally_at_home() -> None:
    # checked against phonenumbers' own data: every description its geocoder gives a mobile
    # prefix splits into one of the 34 provincial divisions and a city; in each of the 31
    # mainland divisions, mobiles of a city with a known area code are local from that code
    import phonenumbers
    from phonenumbers import geocoder

    from dialer.dialplan import DialPlan, parse_number
    from dialer.numbering import PROVINCES, area_code_for, split_region

    seen: dict[str, int] = {}
    local: dict[str, int] = {}
    for prefix in range(1300000, 2000000, 3):
        number = phonenumbers.PhoneNumber(country_code=86, national_number=prefix * 10000 + 1234)
        description = geocoder.description_for_valid_number(number, "zh")
        province, cities = split_region(description)
        if not province:
            continue
        assert province in PROVINCES and cities, (prefix, description)
        seen[province] = seen.get(province, 0) + 1
        code = area_code_for(province, cities[0])
        if code and province not in local:
            info = parse_number(f"{prefix}1234", code)
            assert (info.province, info.city, info.area_code) == (province, cities[0], code), (prefix, info)
            assert DialPlan(home_area_code=code).decide(info).local, (prefix, code)
            local[province] = prefix
    mainland = set(PROVINCES) - {"台湾省", "香港特别行政区", "澳门特别行政区"}
    assert set(seen) == mainland
    assert set(local) == mainland, mainland - set(local)
