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
