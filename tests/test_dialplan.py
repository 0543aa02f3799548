"""The dial plan: every branch as a table, and properties over generated input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.dialplan import DialPlan, Kind, NotDialable, classify, normalize, parse_number
from dialer.sim.trunk import Trunk

BEIJING = DialPlan("010")


@pytest.mark.parametrize(("text", "digits", "extension"), [
    ("13800138000", "13800138000", ""),
    ("+86 138-0013-8000", "13800138000", ""),
    ("0086 13800138000", "13800138000", ""),
    ("8613800138000", "13800138000", ""),
    ("(+86) 138.0013.8000", "13800138000", ""),
    ("１３８００１３８０００", "13800138000", ""),  # full-width digits
    ("（０１０）１２３４５６７８", "01012345678", ""),
    ("010-12345678转123", "01012345678", "123"),
    ("010-12345678 轉 123", "01012345678", "123"),
    ("0755 1234 5678 ext. 45", "075512345678", "45"),
    ("075512345678#9", "075512345678", "9"),
    ("021-12345678 x12", "02112345678", "12"),
    ("+86 10 1234 5678", "01012345678", ""),
    ("+86 010 1234 5678", "01012345678", ""),
    ("+86 400 800 1234", "4008001234", ""),
    ("95588", "95588", ""),
    ("+1 (415) 555-2671", "+14155552671", ""),
    ("00442071234567", "+442071234567", ""),
    ("12345678", "12345678", ""),
])
def test_normalize(text: str, digits: str, extension: str) -> None:
    n = normalize(text)
    assert (n.digits, n.extension) == (digits, extension)


@pytest.mark.parametrize("text", ["", "   ", "abc", "电话", "138-abc-8000", "+", "--"])
def test_normalize_refuses_non_numbers(text: str) -> None:
    with pytest.raises(NotDialable):
        normalize(text)


@pytest.mark.parametrize(("text", "kind", "area", "city"), [
    ("13800138000", Kind.MOBILE, "010", "北京市"),
    ("13912345678", Kind.MOBILE, "0519", "常州市"),
    ("17012345678", Kind.MOBILE, "", ""),  # a mobile of unknown city
    ("01012345678", Kind.LANDLINE, "010", "北京市"),
    ("075512345678", Kind.LANDLINE, "0755", "深圳市"),
    ("12345678", Kind.LANDLINE, "010", "北京市"),  # bare local number → home area
    ("4008001234", Kind.SERVICE, "", ""),
    ("95588", Kind.SERVICE, "", ""),
    ("10086", Kind.SERVICE, "", ""),
    ("+14155552671", Kind.INTERNATIONAL, "", ""),
    ("138001", Kind.INVALID, "", ""),
    ("1380013800", Kind.INVALID, "", ""),  # 10 digits
    ("+1415555", Kind.INVALID, "", ""),
    ("0101234", Kind.INVALID, "", ""),
])
def test_classify(text: str, kind: Kind, area: str, city: str) -> None:
    info = parse_number(text, "010")
    assert (info.kind, info.area_code, info.city) == (kind, area, city)


def test_attribution_carries_isp_and_province() -> None:
    info = parse_number("139-1234-5678")
    assert (info.e164, info.province, info.isp) == ("+8613912345678", "江苏省", "中国移动")


@pytest.mark.parametrize(("plan", "text", "dial", "local", "rule"), [
    (BEIJING, "13800138000", "913800138000", True, "local-mobile"),
    (BEIJING, "13912345678", "9013912345678", False, "long-distance-mobile"),
    (BEIJING, "010-12345678", "912345678", True, "local-landline"),
    (BEIJING, "12345678", "912345678", True, "local-landline"),
    (BEIJING, "0755-12345678", "9075512345678", False, "long-distance-landline"),
    (BEIJING, "17012345678", "9017012345678", False, "mobile-unknown-city-long-distance"),
    (DialPlan("010", unknown_city_mobile="local"), "17012345678", "917012345678", True,
     "mobile-unknown-city-local"),
    (BEIJING, "400-800-1234", "94008001234", True, "service"),
    (BEIJING, "95588", "995588", True, "service"),
    (DialPlan("010", allow_international=True), "+1 415 555 2671", "90014155552671", False, "international"),
    (DialPlan("0755", outside_prefix="0", ld_mobile_prefix="0"), "0755-12345678", "012345678", True,
     "local-landline"),
    (DialPlan("0755", outside_prefix="", ld_mobile_prefix="0"), "13800138000", "013800138000", False,
     "long-distance-mobile"),
    (DialPlan("0519", outside_prefix="9"), "13912345678", "913912345678", True, "local-mobile"),
])
def test_decide(plan: DialPlan, text: str, dial: str, local: bool, rule: str) -> None:
    _, decision = plan.dial_string(text)
    assert (decision.dial_string, decision.local, decision.rule) == (dial, local, rule)


@pytest.mark.parametrize(("plan", "text", "reason"), [
    (BEIJING, "+1 415 555 2671", "international numbers are not allowed"),
    (DialPlan("010", allow_service=False), "95588", "service numbers are not allowed"),
    (BEIJING, "138001", "invalid number"),
])
def test_not_dialable(plan: DialPlan, text: str, reason: str) -> None:
    with pytest.raises(NotDialable, match=reason):
        plan.dial_string(text)


@pytest.mark.parametrize("kwargs", [
    {"home_area_code": "10"}, {"home_area_code": "0x10"}, {"outside_prefix": "9#"},
    {"unknown_city_mobile": "maybe"}, {"home_area_code": "01234"},
])
def test_plan_settings_are_checked(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DialPlan(**kwargs)


def test_every_dial_string_is_accepted_by_the_strict_trunk() -> None:
    """What the plan dials, the simulator's strict trunk rings, at the number that was meant."""
    for home in ("010", "0755", "0519"):
        plan, trunk = DialPlan(home), Trunk(home_area_code=home)
        for text in ("13800138000", "13912345678", "17012345678", "01012345678", "075512345678",
                     "051912345678", "4008001234"):
            info, decision = plan.dial_string(text)
            route = trunk.route(decision.dial_string)
            assert route.ok and route.e164 == info.e164, (home, text, decision, route)


# -- properties -----------------------------------------------------------------------------------

decorations = st.sampled_from(["", " ", "-", ".", "(", ")", "　", "·"])
digit = st.sampled_from("0123456789")


@st.composite
def typed_numbers(draw: st.DrawFn) -> str:
    core = draw(st.one_of(
        st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
        st.from_regex(r"0(10|2\d|[3-9]\d\d)[2-8]\d{6,7}", fullmatch=True),
        st.from_regex(r"[2-8]\d{6,7}", fullmatch=True),
        st.from_regex(r"(400|800)\d{7}", fullmatch=True),
        st.from_regex(r"\d{1,20}", fullmatch=True),
    ))
    prefix = draw(st.sampled_from(["", "+86 ", "0086", "86", "+", "00"]))
    body = "".join(ch + draw(decorations) for ch in core)
    if draw(st.booleans()):
        body = body.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    suffix = draw(st.sampled_from(["", " 转123", " ext. 9", "#42"]))
    return prefix + body + suffix


@settings(max_examples=400)
@given(typed_numbers())
def test_normalisation_is_idempotent(text: str) -> None:
    try:
        n = normalize(text)
    except NotDialable:
        return
    assert normalize(n.canonical) == n


@settings(max_examples=400)
@given(st.one_of(typed_numbers(), st.text(max_size=30)),
       st.sampled_from([BEIJING, DialPlan("0755", allow_international=True), DialPlan("0571", outside_prefix="")]))
def test_dial_strings_are_digits_only(text: str, plan: DialPlan) -> None:
    try:
        _, decision = plan.dial_string(text)
    except NotDialable:
        return
    assert decision.dial_string.isascii() and decision.dial_string.isdigit()


def test_cache_agrees_with_phonenumbers() -> None:
    """Numbers sharing a cache key get what phonenumbers says of each of them."""
    import phonenumbers

    for n in ("13800138000", "13800138999", "13912345678", "01012345678", "01087654321", "075512345678"):
        info = classify(normalize(n))
        assert phonenumbers.is_valid_number(phonenumbers.parse(info.e164)) == (info.kind is not Kind.INVALID)
