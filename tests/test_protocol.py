"""The wire codec against literal frames (not against itself), plus property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.cti import protocol as p
from dialer.errors import LocalProtocolError, RemoteProtocolError

# -- every command, as literal frames ------------------------------------------------------------

COMMAND_GOLDEN = [
    ("login", dict(agent="张三", extension="601", queue="kefu", staffid="10601", busyString="",
                   skill=1, secid="s1", secname="客服部", autoacw=3),
     "command:login\nagent:张三\nextension:601\nqueue:kefu\nstaffid:10601\nbusyString:\n"
     "skill:1\nsecid:s1\nsecname:客服部\nautoacw:3\n\n"),
    ("logout", {}, "command:logout\n\n"),
    ("busy", dict(busyString="开会"), "command:busy\nbusyString:开会\n\n"),
    ("idle", {}, "command:idle\n\n"),
    ("dial", dict(dialString="9013912345678", cusid="c-1", cusname="李四", proid="7", proname="回访"),
     "command:dial\ndialString:9013912345678\ncusid:c-1\ncusname:李四\nproid:7\nproname:回访\n\n"),
    ("hold", {}, "command:hold\n\n"),
    ("unhold", {}, "command:unhold\n\n"),
    ("hangup", {}, "command:hangup\n\n"),
    ("threeWay", dict(dialString="602"), "command:threeWay\ndialString:602\n\n"),
    ("transfer", dict(dialString="603"), "command:transfer\ndialString:603\n\n"),
    ("transferQueue", dict(queue="kefu"), "command:transferQueue\nqueue:kefu\n\n"),
    ("transferIvr", dict(ivr="01005"), "command:transferIvr\nivr:01005\n\n"),
    ("pickup", {}, "command:pickup\n\n"),
    ("groupPickup", dict(group="kefu"), "command:groupPickup\ngroup:kefu\n\n"),
    ("pickupExtension", dict(extension="601"), "command:pickupExtension\nextension:601\n\n"),
    ("spy", dict(extension="601"), "command:spy\nextension:601\n\n"),
    ("groupSpy", dict(group="1"), "command:groupSpy\ngroup:1\n\n"),
    ("insert", dict(extension="601"), "command:insert\nextension:601\n\n"),
    ("hangupExtension", dict(extension="601"), "command:hangupExtension\nextension:601\n\n"),
    ("getExtensionList", dict(type="agentidle", secid="", queue="kefu"),
     "command:getExtensionList\ntype:agentidle\nsecid:\nqueue:kefu\n\n"),
    ("heartbeat", {}, "command:heartbeat\n\n"),
]


def test_golden_covers_every_command() -> None:
    assert sorted(name for name, _, _ in COMMAND_GOLDEN) == sorted(p.COMMANDS)
    assert len(p.COMMANDS) == 21


@pytest.mark.parametrize(("name", "args", "frame"), COMMAND_GOLDEN, ids=[c[0] for c in COMMAND_GOLDEN])
def test_encode_command_golden(name: str, args: dict, frame: str) -> None:
    assert p.encode_command(name, **args) == frame
    decoded = p.decode_command(frame)
    assert decoded.name == name
    for key in p.COMMANDS[name]:
        assert decoded.get(key) == str(args.get(key, ""))


def test_absent_optional_keys_are_sent_empty() -> None:
    assert p.encode_command("dial", dialString="913800138000") == (
        "command:dial\ndialString:913800138000\ncusid:\ncusname:\nproid:\nproname:\n\n")


@pytest.mark.parametrize(("raw", "sent"), [(0, "0"), (3, "3"), (4, "0"), (-1, "0"), ("2", "2"), ("x", "0"), (None, "0")])
def test_autoacw_outside_range_is_sent_as_zero(raw: object, sent: str) -> None:
    frame = p.encode_command("login", agent="a", extension="601", queue="q", staffid="1", autoacw=raw)
    assert f"\nautoacw:{sent}\n" in frame


@pytest.mark.parametrize("bad", ["x\ncommand:hangup", "x\r", "\r\n", "李四\n"])
def test_line_break_in_any_value_is_refused(bad: str) -> None:
    with pytest.raises(LocalProtocolError, match="line break"):
        p.encode_command("dial", dialString="913800138000", cusname=bad)
    with pytest.raises(LocalProtocolError):
        p.encode_command("busy", busyString=bad)
    with pytest.raises(LocalProtocolError):
        p.encode(p.BusyStatus(bad))


@pytest.mark.parametrize("bad", ["", "9138-0013", "+8613800138000", "９１３８", "9" * 33, "91²"])
def test_dial_string_must_be_ascii_digits(bad: str) -> None:
    with pytest.raises(LocalProtocolError, match="digits"):
        p.encode_command("dial", dialString=bad)


def test_unknown_command_and_key_are_refused() -> None:
    with pytest.raises(LocalProtocolError, match="unknown command"):
        p.encode_command("explode")
    with pytest.raises(LocalProtocolError, match="unknown key"):
        p.encode_command("hangup", callid="1")


# -- every server message, as literal frames ----------------------------------------------------

MESSAGE_GOLDEN = [
    ("messageType:command response\ncommand:login\nsuccess:true\nresultText:\nbusy:\n\n",
     p.LoginResponse(True, "", "")),
    ("messageType:command response\ncommand:login\nsuccess:false\nresultText:分机601已被登录\nbusy:\n\n",
     p.LoginResponse(False, "分机601已被登录", "")),
    ("messageType:command response\ncommand:logout\nsuccess:true\nresultText:\n\n", p.LogoutResponse(True)),
    ("messageType:command response\ncommand:getExtensionList\nsuccess:true\nresultText:"
     "601|李四|10601|客服部|kefu|空闲|准备,602|张三|10602|客服部|kefu|外呼通话|\n\n",
     p.ExtensionListResponse(True, (
         p.ExtensionRecord("601", "李四", "10601", "客服部", "kefu", "空闲", "准备"),
         p.ExtensionRecord("602", "张三", "10602", "客服部", "kefu", "外呼通话", "")))),
    ("messageType:command response\ncommand:getExtensionList\nsuccess:true\nresultText:\n\n",
     p.ExtensionListResponse(True, ())),
    ("messageType:command response\ncommand:dial\nsuccess:false\nresultText:分机未注册\n\n",
     p.CommandResponse("dial", False, "分机未注册")),
    ("messageType:heartbeat response\n\n", p.HeartbeatResponse()),
    ("messageType:event\nname:outbound ringing\nnumber:13912345678\ncallid:c1\n\n",
     p.OutboundRinging("13912345678", "c1")),
    ("messageType:event\nname:outbound answered\nnumber:13912345678\ncallid:c1\nprovince:江苏省\n"
     "city:常州市\nisp:中国移动\n\n", p.OutboundAnswered("13912345678", "c1", "江苏省", "常州市", "中国移动")),
    ("messageType:event\nname:incomming ringing\nnumber:13912345678\ncallid:c2\nautodial:true\n"
     "province:江苏省\ncity:常州市\nisp:中国移动\ndata:x=1\n\n",
     p.IncomingRinging("13912345678", "c2", True, "江苏省", "常州市", "中国移动", "x=1")),
    ("messageType:event\nname:incomming answered\nnumber:13912345678\ncallid:c2\nautodial:false\n"
     "province:\ncity:\nisp:\ndata:\n\n", p.IncomingAnswered("13912345678", "c2", False)),
    ("messageType:event\nname:hangup\ncallid:c1\n\n", p.Hangup("c1")),
    ("messageType:event\nname:status changed\nreg:已注册\ncall:外呼通话\nagent:已登录\nbusy:\n"
     "number:13912345678\n\n", p.StatusChanged("已注册", "外呼通话", "已登录", "", "13912345678")),
    ("messageType:event\nname:call status\ncall:外呼振铃\nnumber:13912345678\n\n",
     p.CallStatus("外呼振铃", "13912345678")),
    ("messageType:event\nname:queue status\nidle:3\nagent:5\nguest:1\nqueue:kefu\n\n",
     p.QueueStatus(3, 5, 1, "kefu")),
    ("messageType:event\nname:busy status\nbusy:话后\n\n", p.BusyStatus("话后")),
    ("messageType:event\nname:agent status\nstate:x\n\n", p.AgentStatus((("state", "x"),))),
]


def test_golden_covers_every_event() -> None:
    names = {type(m).NAME for _, m in MESSAGE_GOLDEN if isinstance(m, p.Event)}
    assert names == set(p.EVENT_TYPES) and len(names) == 10


@pytest.mark.parametrize(("frame", "message"), MESSAGE_GOLDEN, ids=range(len(MESSAGE_GOLDEN)))
def test_decode_and_encode_golden(frame: str, message: p.ServerMessage) -> None:
    assert p.decode(frame) == message
    assert p.encode(message) == frame


def test_hangup_without_callid_and_missing_keys_read_as_empty() -> None:
    assert p.decode("messageType:event\nname:hangup\n\n") == p.Hangup("")
    assert p.decode("messageType:event\nname:outbound answered\n\n") == p.OutboundAnswered()
    assert p.decode("messageType:event\nname:queue status\nidle:x\n\n") == p.QueueStatus(0, 0, 0, "")


def test_split_on_first_colon_only() -> None:
    msg = p.decode("messageType:event\nname:busy status\nbusy:会议: 10:30 开始\n\n")
    assert msg == p.BusyStatus("会议: 10:30 开始")


def test_unknown_keys_ignored_last_duplicate_wins() -> None:
    msg = p.decode("messageType:event\nname:hangup\nfoo:bar\ncallid:1\ncallid:2\n\n")
    assert msg == p.Hangup("2")


def test_unknown_message_type_and_event_name() -> None:
    assert p.decode("messageType:hello\nx:1\n\n") == p.Unknown("hello", "", (("x", "1"),))
    assert p.decode("messageType:event\nname:weather\nsun:yes\n\n") == p.Unknown("event", "weather", (("sun", "yes"),))


def test_success_is_true_only_for_exact_true() -> None:
    for text in ("TRUE", "1", "yes", ""):
        frame = f"messageType:command response\ncommand:logout\nsuccess:{text}\nresultText:\n\n"
        assert p.decode(frame) == p.LogoutResponse(False)


def test_extension_record_tolerates_short_and_long_records() -> None:
    frame = "messageType:command response\ncommand:getExtensionList\nsuccess:true\nresultText:601|李四,602|a|b|c|d|e|f|extra\n\n"
    msg = p.decode(frame)
    assert isinstance(msg, p.ExtensionListResponse)
    assert msg.records == (p.ExtensionRecord("601", "李四"), p.ExtensionRecord("602", "a", "b", "c", "d", "e", "f"))
    assert msg.records[1].call_state is p.CallState.UNKNOWN


def test_call_states_enum() -> None:
    assert p.CallState.parse("自动外呼接入") is p.CallState.AUTODIAL_CONNECTED
    assert p.CallState.parse("") is p.CallState.UNKNOWN
    assert p.CallState.parse("whatever") is p.CallState.UNKNOWN
    assert len(p.CallState) == 9
    assert [t.value for t in p.ExtensionListType] == ["all", "idle", "agent", "agentidle"]


@pytest.mark.parametrize("frame", [
    "", "\n\n", "garbage", "no colon here\n\n", ":value\n\n", "key:value\n\n",  # no messageType
    "a" * (p.MAX_FRAME_CHARS + 1), "messageType:event\n" + "k:v\n" * (p.MAX_FRAME_LINES + 5),
])
def test_malformed_frames_raise_remote_protocol_error(frame: str) -> None:
    with pytest.raises(RemoteProtocolError):
        p.decode(frame)


def test_binary_frame_is_refused() -> None:
    with pytest.raises(RemoteProtocolError, match="binary"):
        p.decode(b"messageType:event\n\n")  # type: ignore[arg-type]


def test_decode_command_without_command_key() -> None:
    with pytest.raises(RemoteProtocolError):
        p.decode_command("dialString:1\n\n")


# -- properties -------------------------------------------------------------------------------

# what may travel: no control character (C0, DEL, C1), no line or paragraph separator, no BOM
_SENDABLE = dict(blacklist_characters="\u2028\u2029\ufeff", blacklist_categories=("Cs", "Cc"))
text = st.text(st.characters(**_SENDABLE), max_size=30)
record_text = st.text(st.characters(blacklist_characters="|,\u2028\u2029\ufeff", blacklist_categories=("Cs", "Cc")),
                      max_size=12)
digits = st.text("0123456789", min_size=1, max_size=20)


def _event_strategy(cls: type[p.Event]) -> st.SearchStrategy[p.Event]:
    kwargs: dict[str, st.SearchStrategy[object]] = {}
    for attr, _ in cls.KEYS:
        if attr == "autodial":
            kwargs[attr] = st.booleans()
        elif cls is p.QueueStatus and attr != "queue":
            kwargs[attr] = st.integers(0, 10_000)
        else:
            kwargs[attr] = text
    return st.builds(cls, **kwargs)


keys = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8).filter(
    lambda k: k not in ("messagetype", "name"))
server_messages = st.one_of(
    [_event_strategy(c) for c in p.EVENT_TYPES.values() if c is not p.AgentStatus]
    + [
        st.builds(p.LoginResponse, st.booleans(), text, text),
        st.builds(p.LogoutResponse, st.booleans(), text),
        st.builds(p.CommandResponse, st.sampled_from(["dial", "busy", "idle", "transfer"]), st.booleans(), text),
        st.builds(p.ExtensionListResponse, st.booleans(), st.lists(
            st.builds(p.ExtensionRecord, record_text.filter(bool), record_text, record_text, record_text,
                      record_text, record_text, record_text), max_size=5).map(tuple)),
        st.just(p.HeartbeatResponse()),
        st.builds(p.AgentStatus, st.dictionaries(keys, text, max_size=4).map(lambda d: tuple(d.items()))),
        st.builds(p.Unknown, st.sampled_from(["hello", "push", "x y"]), st.just(""),
                  st.dictionaries(keys, text, max_size=4).map(lambda d: tuple(d.items()))),
    ]
)


@given(server_messages)
def test_server_message_round_trip(message: p.ServerMessage) -> None:
    assert p.decode(p.encode(message)) == message


@st.composite
def commands(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    name = draw(st.sampled_from(sorted(p.COMMANDS)))
    args = {}
    for key in p.COMMANDS[name]:
        if (name, key) in p._DIGIT_KEYS:
            args[key] = draw(digits)
        elif key == "autoacw":
            args[key] = str(draw(st.integers(0, 3)))
        else:
            args[key] = draw(text)
    return name, args


@given(commands())
def test_command_round_trip(cmd: tuple[str, dict[str, str]]) -> None:
    name, args = cmd
    decoded = p.decode_command(p.encode_command(name, **args))
    assert decoded == p.ClientCommand(name, args)


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_messages_or_remote_protocol_error(frame: str) -> None:
    try:
        msg = p.decode(frame)
    except RemoteProtocolError:
        return
    assert isinstance(msg, p.Message)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(["messageType", "name", "command", "success", "resultText",
                                           "callid", "idle", "autodial", "busy", "x"]),
                          st.sampled_from(["event", "command response", "heartbeat response", "hangup",
                                           "queue status", "incomming ringing", "login",
                                           "getExtensionList", "true", "a|b,c", "", "：", "7"])),
                max_size=8))
def test_structured_garbage_never_raises_anything_else(pairs: list[tuple[str, str]]) -> None:
    frame = "".join(f"{k}:{v}\n" for k, v in pairs) + "\n"
    try:
        msg = p.decode(frame)
    except RemoteProtocolError:
        return
    assert isinstance(msg, p.Message)


@given(text, text)
def test_injection_is_impossible(a: str, b: str) -> None:
    """Whatever a CSV puts in a name, the frame keeps exactly its keys."""
    name = a + "\ncommand:hangup\n" + b
    with pytest.raises(LocalProtocolError):
        p.encode_command("dial", dialString="913800138000", cusname=name)
    frame = p.encode_command("dial", dialString="913800138000", cusname=a + b)
    assert p.decode_command(frame).get("cusname") == a + b


def _name_of(msg: p.Message) -> str | None:
    if isinstance(msg, p.Event):
        return msg.NAME
    if isinstance(msg, p.Unknown) and msg.message_type == p.MT_EVENT:
        return msg.name
    return None


@settings(max_examples=500)
@given(st.one_of(
    server_messages.map(p.encode),
    st.lists(st.tuples(st.sampled_from(["messageType", "name", "idle", "x", ""]),
                       st.sampled_from(["event", "queue status", "hangup", "command response", "", "1"])),
             max_size=6).map(lambda pairs: "".join(f"{k}:{v}\n" for k, v in pairs) + "\n"),
    st.text(max_size=120)))
def test_event_name_reads_what_decode_reads(frame: str) -> None:
    # a reader may skip a frame by its name without decoding it: the name must be the one decode
    # would find (or the frame one decode refuses); "" says nothing
    name = p.event_name(frame)
    if not name:
        return
    try:
        msg = p.decode(frame)
    except RemoteProtocolError:
        return
    assert _name_of(msg) == name


def test_event_name_of_every_event_the_simulator_sends() -> None:
    assert p.event_name(p.encode(p.QueueStatus(3, 25, 0, "q01"))) == "queue status"
    assert p.event_name(p.encode(p.Hangup("c1"))) == "hangup"
    assert p.event_name(p.encode(p.HeartbeatResponse())) == ""
    assert p.event_name(p.encode(p.CommandResponse("dial", True))) == ""
    # the last of two names wins for decode: too subtle to guess, left to it
    assert p.event_name("messageType:event\nname:queue status\nname:hangup\n\n") == ""
    assert p.event_name("name:hangup\nmessageType:event\n\n") == "hangup"


@pytest.mark.parametrize("ch", ["\n", "\r", "\x00", "\t", "\x0b", "\x0c", "\x1b", "\x1c", "\x1e", "\x7f", "\x85",
                                "\x9f", "\u2028", "\u2029", "\ufeff"])
@pytest.mark.parametrize("key", ["cusname", "cusid", "proname"])
def test_the_codec_refuses_every_control_character(ch: str, key: str) -> None:
    # the last line of defence: whatever an entry point let through never reaches the wire
    with pytest.raises(LocalProtocolError, match=f"{key}: value contains"):
        p.encode_command("dial", dialString="913800138000", **{key: f"张{ch}三"})
    with pytest.raises(LocalProtocolError, match="busyString: value contains"):
        p.encode_command("busy", busyString=f"lunch{ch}")
