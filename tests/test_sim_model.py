"""The simulator's pure parts: trunk, call model, scenario files, number attribution."""

from __future__ import annotations

import random
import statistics

import pytest

from dialer.errors import ScenarioError
from dialer.numbering import area_code_for, attribute_e164, split_region
from dialer.sim.model import AgentProfile, Workload, draw_fate, draw_talk, draw_wrap_up
from dialer.sim.scenario import load_scenario, parse_scenario
from dialer.sim.trunk import Trunk


@pytest.mark.parametrize(("dial", "ok", "e164"), [
    ("913800138000", True, "+8613800138000"),  # local (Beijing) mobile
    ("9013800138000", True, "+8613800138000"),  # local mobile with 0 is accepted too
    ("9013912345678", True, "+8613912345678"),  # Changzhou mobile, long-distance
    ("913912345678", False, "+8613912345678"),  # ... without its 0
    ("917012345678", True, "+8617012345678"),  # mobile of unknown city: either form
    ("912345678", True, "+861012345678"),  # local landline
    ("9075512345678", True, "+8675512345678"),  # Shenzhen landline with area code
    ("975512345678", False, ""),  # ... without its 0: read as a Beijing number, which is invalid
    ("94008001234", True, "+864008001234"),  # service number
    ("9001202555012", False, ""),  # international, invalid number
    ("90014155552671", True, "+14155552671"),  # international
    ("13800138000", False, ""),  # no outside-line code
    ("9", False, ""),
])
def test_strict_trunk_routes(dial: str, ok: bool, e164: str) -> None:
    route = Trunk(home_area_code="010").route(dial)
    assert route.ok is ok, route
    if ok:
        assert route.e164 == e164


def test_trunk_settings_are_settings() -> None:
    shenzhen = Trunk(home_area_code="0755", outside_prefix="0", ld_mobile_prefix="0")
    assert shenzhen.route("012345678").e164 == "+8675512345678"
    assert not shenzhen.route("013800138000").ok  # Beijing mobile needs its 0 in Shenzhen
    assert shenzhen.route("0013800138000").ok
    lenient = Trunk(strict=False)
    assert lenient.route("13800138000").ok and lenient.route("913912345678").ok


def test_region_split_and_area_codes() -> None:
    assert split_region("广东省深圳市") == ("广东省", ("深圳市",))
    assert split_region("北京市") == ("北京市", ("北京市",))
    assert split_region("辽宁省沈阳市、铁岭市") == ("辽宁省", ("沈阳市", "铁岭市"))
    assert split_region("内蒙古自治区呼和浩特市") == ("内蒙古自治区", ("呼和浩特市",))
    assert split_region("中国") == ("", ())
    assert area_code_for("江苏省", "常州市") == "0519"
    assert area_code_for("辽宁省", "铁岭市") == "024"
    assert area_code_for("北京市", "北京市") == "010"
    assert area_code_for("火星", "基地") == ""
    a = attribute_e164("+8613912345678")
    assert (a.province, a.city, a.isp, a.area_code) == ("江苏省", "常州市", "中国移动", "0519")
    assert attribute_e164("+8675512345678").area_code == "0755"
    assert attribute_e164("+8617012345678").city == ""
    assert attribute_e164("garbage").area_code == ""


def test_fates_follow_the_workload() -> None:
    rng = random.Random(1)
    w = Workload()
    fates = [draw_fate(rng, w) for _ in range(20_000)]
    share = {o: sum(f.outcome == o for f in fates) / len(fates) for o in ("answer", "machine", "busy", "no_answer")}
    assert share["answer"] == pytest.approx(0.25, abs=0.015)
    assert share["machine"] == pytest.approx(0.10, abs=0.01)
    assert share["busy"] == pytest.approx(0.10, abs=0.01)
    assert share["no_answer"] == pytest.approx(0.55, abs=0.015)
    live = [f for f in fates if f.outcome == "answer"]
    assert all(4 <= f.ring <= 20 for f in live)
    talks = [draw_talk(rng, w) for _ in range(40_000)]
    assert statistics.mean(talks) == pytest.approx(120, rel=0.04)
    assert statistics.stdev(talks) == pytest.approx(90, rel=0.1)
    assert statistics.mean(draw_wrap_up(rng, w) for _ in range(20_000)) == pytest.approx(20, rel=0.04)


def test_same_seed_same_fates() -> None:
    a = [draw_fate(random.Random(7), Workload()) for _ in range(3)]
    b = [draw_fate(random.Random(7), Workload()) for _ in range(3)]
    assert a == b


def test_workload_and_agent_profile_validation() -> None:
    with pytest.raises(ValueError):
        Workload(p_live=0.9, p_busy=0.2)
    assert AgentProfile("601", wrap_up=-1).wrap_up_time(random.Random(), Workload()) is None
    assert AgentProfile("601", pickup=(1.0, 1.0)).pickup_delay(random.Random(), Workload()) == 1.0


def test_scenario_file(tmp_path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'seed = 3\ntime_scale = 0.05\nrespond = "documented"\n'
        '[trunk]\nhome_area_code = "0755"\n'
        '[workload]\np_live = 0.5\nlive_ring = [1, 2]\ntalk_mean = 60\n'
        '[[customers]]\nnumber = "139-1234-5678"\noutcome = ["no_answer", "answer"]\nring = 3\ntalk = 40\n'
        '[[customers]]\nnumber = "+86 755 1234 5678"\noutcome = "busy"\n'
        '[[agents]]\nextension = "601"\npickup = [0.1, 0.2]\nanswers = false\nwrap_up = -1\n',
        encoding="utf-8")
    cfg = load_scenario(path)
    assert (cfg.seed, cfg.time_scale, cfg.respond, cfg.trunk.home_area_code) == (3, 0.05, "documented", "0755")
    assert cfg.workload.p_live == 0.5 and cfg.workload.live_ring == (1.0, 2.0)
    rule = cfg.customers["+8613912345678"]
    assert [rule.fate(i).outcome for i in range(3)] == ["no_answer", "answer", "answer"]
    assert rule.fate(1).talk == 40 and rule.fate(1).ring == 3
    assert cfg.customers["+8675512345678"].fate(0).outcome == "busy"
    agent = cfg.agent("601")
    assert (agent.pickup, agent.answers, agent.wrap_up) == ((0.1, 0.2), False, -1.0)
    assert cfg.agent("999") == AgentProfile("999")


@pytest.mark.parametrize(("text", "message"), [
    ("seed = 'x'", "seed: expected int"),
    ("colour = 1", "unknown key(s) colour"),
    ("[[customers]]\noutcome = 'answer'", "number is required"),
    ("[[customers]]\nnumber = 'abc'", "not a phone number"),
    ("[[customers]]\nnumber = '13800138000'\noutcome = 'maybe'", "outcome must be one of"),
    ("[[agents]]\nextension = 'x1'", "extension must be digits"),
    ("[workload]\np_live = [1, 2]", "expected a number"),
    ("[workload]\np_live = 0.9\np_busy = 0.5", "add up"),
    ("[trunk]\nhome_area_code = 10", "digits in quotes"),
    ("respond = 'some'", "respond must be"),
    ("time_scale = 0", "time_scale must be"),
    ("seed = [", "Invalid value"),
])
def test_scenario_errors_name_the_problem(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load_scenario(path)
    assert str(info.value).startswith(str(path))


def test_missing_scenario_file(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")


def test_parse_scenario_defaults() -> None:
    cfg = parse_scenario({})
    assert cfg.trunk == Trunk() and cfg.workload == Workload() and cfg.respond == "all"
