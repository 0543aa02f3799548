"""The seat client against the simulator over real sockets on port 0."""

from __future__ import annotations

import asyncio

import pytest

from dialer.cti import protocol as p
from dialer.cti.client import FrameRejected, Seat, SeatLost, SeatRestored
from dialer.errors import CommandTimeout, ConnectionLost, CTIError, LocalProtocolError, LoginFailed, NotConnected
from tests.conftest import drain, expect

ANSWER = {"number": "13800138000", "outcome": "answer", "ring": 5, "talk": 20}  # Beijing mobile
AGENTS = [{"extension": "601", "pickup": 0.5, "wrap_up": 10}, {"extension": "602", "pickup": 0.5, "wrap_up": 10},
          {"extension": "603", "pickup": 0.5, "wrap_up": 10}, {"extension": "8001", "pickup": 0, "wrap_up": 0}]


def kinds(messages: list[p.Message]) -> list[str]:
    return [type(m).__name__ for m in messages]


# -- login, state, lists --------------------------------------------------------------------------

async def test_login_getters_and_second_login_refused(make_sim, make_seat) -> None:
    sim = await make_sim({"agents": AGENTS})
    seat = await make_seat(sim.url, "601")
    assert seat.logged_in and seat.extension == "601" and seat.staffid == "1601"
    assert seat.agent_name == "agent601" and seat.skill == 1 and seat.queue == "kefu"
    await expect(seat, p.StatusChanged)
    assert seat.reg_state == "已注册" and seat.agent_state == "已登录" and seat.call_state is p.CallState.IDLE

    other = await make_seat(sim.url)
    with pytest.raises(LoginFailed) as info:
        await other.login("冒名", "601", "kefu", "999")
    assert "601" in info.value.reason and "已被登录" in info.value.reason
    assert not other.logged_in

    assert (await seat.logout()).success
    assert not seat.logged_in
    await other.login("冒名", "601", "kefu", "999")  # free again after logout
    assert sim.by_ext["601"].staffid == "999"


async def test_login_busy_then_idle_and_busy_events(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url)
    response = await seat.login("张三", "601", "kefu", "10601", busy_string="准备")
    assert response.busy == "准备" and seat.busy_state == "准备"
    assert (await expect(seat, p.BusyStatus)).busy == "准备"
    await seat.idle()
    assert (await expect(seat, p.BusyStatus)).busy == ""
    await seat.busy("开会")
    assert (await expect(seat, p.BusyStatus)).busy == "开会"
    assert seat.busy_state == "开会"


async def test_extension_list_types_and_filters(make_sim, make_seat) -> None:
    sim = await make_sim({"agents": AGENTS + [{"extension": "699"}]})
    s1 = await make_seat(sim.url, "601", queue="kefu")
    s2 = await make_seat(sim.url, "602", queue="sales")
    await s2.busy("开会")
    await drain(s2)
    everyone = await s1.extension_list("all")
    assert [r.exten for r in everyone] == ["601", "602", "603", "699", "8001"]
    rec = {r.exten: r for r in everyone}
    assert rec["601"] == p.ExtensionRecord("601", "agent601", "1601", "", "kefu", "空闲", "")
    assert rec["602"].busy == "开会" and rec["699"].name == ""
    assert [r.exten for r in await s1.extension_list("agent")] == ["601", "602"]
    assert [r.exten for r in await s1.extension_list("agentidle")] == ["601"]
    assert [r.exten for r in await s1.extension_list("idle")] == ["601", "602", "603", "699", "8001"]
    assert [r.exten for r in await s1.extension_list("agent", queue="sales")] == ["602"]
    assert [r.exten for r in await s1.extension_list("all", secid="nope")] == []


async def test_queue_status_counts(make_sim, make_seat) -> None:
    sim = await make_sim()
    s1 = await make_seat(sim.url, "601")
    assert await expect(s1, p.QueueStatus) == p.QueueStatus(1, 1, 0, "kefu")
    s2 = await make_seat(sim.url, "602")
    assert await expect(s1, p.QueueStatus) == p.QueueStatus(2, 2, 0, "kefu")
    await s2.busy("开会")
    assert await expect(s1, p.QueueStatus) == p.QueueStatus(1, 2, 0, "kefu")


async def test_events_a_seat_ignores_are_dropped_before_decoding(make_sim, make_seat) -> None:
    sim = await make_sim()
    quiet = await make_seat(sim.url, "601", ignore=frozenset({"queue status"}))
    loud = await make_seat(sim.url, "602")
    await expect(loud, p.QueueStatus)
    await quiet.busy("开会")  # the queue's counts change; the busy event itself still comes
    await expect(quiet, p.BusyStatus, where=lambda b: b.busy == "开会")
    assert (await expect(loud, p.QueueStatus, where=lambda q: q.idle == 1)).agent == 2
    seen = await drain(quiet)
    assert not any(isinstance(m, p.QueueStatus) for m in seen), seen
    assert quiet.frames_ignored >= 2 and loud.frames_ignored == 0


async def test_heartbeats_are_answered(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url, "601", heartbeat_interval=0.02)
    await asyncio.sleep(0.2)
    assert seat.connected and seat._missed <= 1
    assert sim.frames_in >= 5


# -- click-to-dial --------------------------------------------------------------------------------

async def test_answered_call_full_sequence_with_after_call_work(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS})
    seat = await make_seat(sim.url, "601", autoacw=2)
    await drain(seat)
    await seat.dial("913800138000", cusid="c1", cusname="李四", proid="7", proname="回访")
    seen: list[p.Message] = []
    ringing = await expect(seat, p.OutboundRinging, seen=seen)
    assert ringing.number == "13800138000" and ringing.callid
    answered = await expect(seat, p.OutboundAnswered, seen=seen)
    assert answered == p.OutboundAnswered("13800138000", ringing.callid, "北京市", "北京市", "中国移动")
    assert seat.call_state is p.CallState.OUTBOUND_TALKING and seat.number == "13800138000"
    assert (await expect(seat, p.Hangup, seen=seen)).callid == ringing.callid
    assert (await expect(seat, p.BusyStatus, seen=seen)).busy == "话后"
    assert (await expect(seat, p.BusyStatus, seen=seen)).busy == ""  # the agent's wrap-up ended
    states = [m.call for m in seen if isinstance(m, p.CallStatus)]
    assert states == ["呼入振铃", "外呼振铃", "外呼彩铃", "外呼通话", "空闲"]
    assert kinds(seen)[:2] == ["CommandResponse", "CallStatus"]
    [record] = sim.call_log
    assert (record.e164, record.end, record.answered) == ("+8613800138000", "customer_hangup", True)


async def test_no_after_call_work_when_autoacw_off(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS})
    seat = await make_seat(sim.url, "601", autoacw=0)
    await seat.dial("913800138000")
    await expect(seat, p.Hangup)
    assert not [m for m in await drain(seat) if isinstance(m, p.BusyStatus) and m.busy]


async def test_client_hangup_while_ringing(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [{"number": "13800138000", "outcome": "no_answer"}], "agents": AGENTS})
    seat = await make_seat(sim.url, "601")
    await seat.dial("913800138000")
    await expect(seat, p.OutboundRinging)
    await seat.hangup()
    await expect(seat, p.Hangup)
    assert sim.call_log[-1].end == "agent_hangup" and seat.call_state is p.CallState.IDLE


async def test_network_ring_timeout_and_busy(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [{"number": "13800138000", "outcome": ["no_answer", "busy"], "ring": 3}],
                          "agents": AGENTS, "ring_timeout": 20})
    seat = await make_seat(sim.url, "601")
    for expected in ("no_answer", "busy"):
        seen: list[p.Message] = []
        await seat.dial("913800138000")
        await expect(seat, p.Hangup, seen=seen)
        assert "OutboundRinging" in kinds(seen) and "OutboundAnswered" not in kinds(seen)
        assert sim.call_log[-1].end == expected


async def test_agent_who_never_answers(make_sim, make_seat) -> None:
    sim = await make_sim({"agents": [{"extension": "601", "answers": False}], "agent_ring_timeout": 10})
    seat = await make_seat(sim.url, "601")
    seen: list[p.Message] = []
    await seat.dial("913800138000")
    await expect(seat, p.Hangup, seen=seen)
    assert "OutboundRinging" not in kinds(seen)
    seen += await drain(seat)
    assert [m.call for m in seen if isinstance(m, p.CallStatus)] == ["呼入振铃", "空闲"]
    assert sim.call_log[-1].end == "agent_no_answer" and sim.dial_counts == {}


async def test_unregistered_extension_fails_at_once(make_sim, make_seat) -> None:
    sim = await make_sim({"agents": [{"extension": "601", "registered": False}]})
    seat = await make_seat(sim.url, "601")
    await drain(seat)
    await seat.dial("913800138000")
    response = await expect(seat, p.CommandResponse)
    assert (response.command, response.success, response.result_text) == ("dial", False, "分机未注册")
    await expect(seat, p.Hangup, timeout=0.5)
    assert sim.call_log[-1].end == "unregistered"


@pytest.mark.parametrize(("dial", "ok"), [
    ("913912345678", False),  # Changzhou mobile without its 0 on a Beijing trunk
    ("9013912345678", True),
    ("912345678", True),  # local Beijing landline
    ("975512345678", False),  # Shenzhen landline without its leading 0: no such Beijing number
    ("13800138000", False),  # no outside-line code
])
async def test_strict_trunk(make_sim, make_seat, dial: str, ok: bool) -> None:
    sim = await make_sim({"agents": AGENTS, "workload": {"p_live": 0, "p_machine": 0, "p_busy": 1, "busy_ring": 1}})
    seat = await make_seat(sim.url, "601")
    seen: list[p.Message] = []
    await seat.dial(dial)
    await expect(seat, p.Hangup, seen=seen)
    assert ("OutboundRinging" in kinds(seen)) is ok
    assert (sim.call_log[-1].end != "trunk_rejected") is ok


async def test_lenient_trunk_accepts_missing_prefix(make_sim, make_seat) -> None:
    sim = await make_sim({"agents": AGENTS, "trunk": {"strict": False}, "customers": [ANSWER]})
    seat = await make_seat(sim.url, "601")
    await seat.dial("913800138000".removeprefix("9"))
    await expect(seat, p.OutboundAnswered)


async def test_documented_only_responses(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS, "respond": "documented"})
    seat = await make_seat(sim.url, "601")
    await seat.dial("913800138000")
    seen: list[p.Message] = []
    await expect(seat, p.OutboundAnswered, seen=seen)
    assert "CommandResponse" not in kinds(seen)
    assert await seat.extension_list()  # still answered


async def test_hangup_without_callid_mode(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS, "hangup_callid": False})
    seat = await make_seat(sim.url, "601")
    await seat.dial("913800138000")
    assert (await expect(seat, p.Hangup)).callid == ""


# -- moving calls (predictive building blocks) --------------------------------------------------

async def _answered_on_port(sim, make_seat, port_ext: str = "8001") -> Seat:
    port = await make_seat(sim.url, port_ext, queue="ports")
    await port.dial("913800138000")
    await expect(port, p.OutboundAnswered)
    return port


async def test_transfer_to_extension(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS})
    agent = await make_seat(sim.url, "601")
    port = await _answered_on_port(sim, make_seat)
    await port.transfer("601")
    await expect(port, p.Hangup)
    ring = await expect(agent, p.IncomingRinging)
    assert (ring.number, ring.autodial, ring.province) == ("13800138000", False, "北京市")
    answered = await expect(agent, p.IncomingAnswered)
    assert answered.callid == ring.callid
    await expect(agent, p.Hangup)
    assert sim.call_log[-1].bridged_to == ["601"]


async def test_transfer_to_busy_agent_is_refused(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS})
    agent = await make_seat(sim.url, "601")
    await agent.busy("开会")
    port = await _answered_on_port(sim, make_seat)
    await port.transfer("601")
    response = await expect(port, p.CommandResponse, where=lambda m: m.command == "transfer")
    assert not response.success and port.call_state is p.CallState.OUTBOUND_TALKING


async def test_transfer_queue_offers_longest_idle_first(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS})
    first = await make_seat(sim.url, "601")
    await asyncio.sleep(0.02)
    second = await make_seat(sim.url, "602")
    port = await _answered_on_port(sim, make_seat)
    await port.transfer_queue("kefu")
    await expect(port, p.Hangup)
    ring = await expect(first, p.IncomingRinging)
    assert ring.autodial is True
    assert (await expect(first, p.IncomingAnswered)).autodial is True
    assert first.call_state is p.CallState.AUTODIAL_CONNECTED
    assert not [m for m in await drain(second) if isinstance(m, p.IncomingRinging)]


async def test_queued_caller_waits_for_a_free_agent(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS})
    agent = await make_seat(sim.url, "601")
    await agent.busy("开会")
    port = await _answered_on_port(sim, make_seat)
    await port.transfer_queue("kefu")
    assert await expect(agent, p.QueueStatus, where=lambda q: q.guest == 1) == p.QueueStatus(0, 1, 1, "kefu")
    await agent.idle()
    await expect(agent, p.IncomingAnswered)


async def test_transfer_ivr_records_the_node(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS})
    port = await _answered_on_port(sim, make_seat)
    await port.transfer_ivr("01005")
    await expect(port, p.Hangup)
    assert [(v.node, v.e164) for v in sim.ivr_log] == [("01005", "+8613800138000")]
    await asyncio.sleep(0.1)
    assert sim.call_log[-1].end == "ivr" and sim.call_log[-1].ivr == "01005"


@pytest.mark.parametrize("how", ["pickup", "group_pickup", "pickup_extension"])
async def test_pickups(make_sim, make_seat, how: str) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": [
        {"extension": "601", "answers": False}, {"extension": "602"}, {"extension": "8001", "pickup": 0}]})
    sleeper = await make_seat(sim.url, "601")
    grabber = await make_seat(sim.url, "602")
    await grabber.busy("准备")  # not offered calls itself
    port = await _answered_on_port(sim, make_seat)
    await port.transfer_queue("kefu")
    await expect(sleeper, p.IncomingRinging)
    arg = {"pickup": (), "group_pickup": ("kefu",), "pickup_extension": ("601",)}[how]
    await getattr(grabber, how)(*arg)
    await expect(sleeper, p.Hangup)
    await expect(grabber, p.IncomingAnswered)
    assert sim.call_log == [] and grabber.call_state is p.CallState.AUTODIAL_CONNECTED


async def test_pickup_with_nothing_ringing_fails(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url, "601")
    await seat.pickup()
    response = await expect(seat, p.CommandResponse, where=lambda m: m.command == "pickup")
    assert not response.success


@pytest.mark.parametrize("how", ["spy", "group_spy", "insert"])
async def test_spy_insert_then_cut(make_sim, make_seat, how: str) -> None:
    sim = await make_sim({"customers": [{**ANSWER, "talk": 500}], "agents": AGENTS})
    talker = await make_seat(sim.url, "601")
    supervisor = await make_seat(sim.url, "602", queue="qa")
    await talker.dial("913800138000")
    await expect(talker, p.OutboundAnswered)
    await getattr(supervisor, how)("kefu" if how == "group_spy" else "601")
    status = await expect(supervisor, p.CallStatus)
    assert status.call_state is p.CallState.INBOUND_TALKING
    await supervisor.cut("601")
    await expect(talker, p.Hangup)
    await expect(supervisor, p.Hangup)
    assert sim.call_log[-1].end == "cut"


async def test_hold_unhold(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [{**ANSWER, "talk": 500}], "agents": AGENTS})
    seat = await make_seat(sim.url, "601")
    await seat.hold()
    assert not (await expect(seat, p.CommandResponse, where=lambda m: m.command == "hold")).success
    await seat.dial("913800138000")
    await expect(seat, p.OutboundAnswered)
    await seat.hold()
    assert (await expect(seat, p.CommandResponse, where=lambda m: m.command == "hold")).success
    assert sim.by_ext["601"].call.held
    await seat.unhold()
    assert (await expect(seat, p.CommandResponse, where=lambda m: m.command == "unhold")).success
    assert not sim.by_ext["601"].call.held


async def test_three_way(make_sim, make_seat) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": AGENTS})
    host = await make_seat(sim.url, "601")
    guest = await make_seat(sim.url, "602")
    await host.dial("913800138000")
    await expect(host, p.OutboundAnswered)
    await host.three_way("602")
    await expect(guest, p.IncomingRinging)
    await expect(guest, p.IncomingAnswered)
    await host.hangup()  # the host leaves; the customer stays with the guest
    await expect(host, p.Hangup)
    assert guest.call_state is p.CallState.INBOUND_TALKING
    await expect(guest, p.Hangup)  # the customer hangs up at the end of the talk
    assert sim.call_log[-1].end == "customer_hangup"


# -- failures -------------------------------------------------------------------------------------

async def test_reconnect_after_server_restart(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url, "601", heartbeat_interval=0.05)
    await sim.restart()
    lost = await expect(seat, SeatLost)
    assert "closed" in lost.reason
    restored = await expect(seat, SeatRestored)
    assert restored.attempts >= 1
    assert seat.logged_in and "601" in sim.by_ext
    assert sim.by_ext["601"].staffid == "1601"


async def test_pending_commands_fail_at_once_on_disconnect(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url, "601", command_timeout=5)
    sim.delay_responses(10)
    task = asyncio.create_task(seat.extension_list())
    await asyncio.sleep(0.05)
    sim.drop("601")
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(task, 1.0)
    sim.delay_responses(0)
    await expect(seat, SeatRestored)
    assert await seat.extension_list()


async def test_command_timeout(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url, "601", command_timeout=0.1)
    sim.delay_responses(1)
    with pytest.raises(CommandTimeout):
        await seat.extension_list()


async def test_heartbeat_loss_closes_and_restores(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url, "601", heartbeat_interval=0.03)
    sim.stop_heartbeats("601")
    lost = await expect(seat, SeatLost, timeout=2)
    assert "heartbeats unanswered" in lost.reason
    await expect(seat, SeatRestored)  # the new socket's heartbeats are answered
    assert seat.logged_in
    await asyncio.sleep(0.15)
    assert seat.connected


async def test_garbage_frame_does_not_stop_the_client(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url, "601")
    sim.send_garbage("601", "\x00\x01 not a frame")
    rejected = await expect(seat, FrameRejected)
    assert "key:value" in rejected.reason
    assert await seat.extension_list()


async def test_agent_status_and_unknown_events_reach_the_caller(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url, "601")
    sim.send_raw("601", "messageType:event\nname:agent status\nstate:示忙\n\n")
    sim.send_raw("601", "messageType:event\nname:weather\nsun:yes\n\n")
    assert (await expect(seat, p.AgentStatus)).fields == (("state", "示忙"),)
    assert (await expect(seat, p.Unknown)).name == "weather"
    assert seat.connected


async def test_same_number_same_fate_whatever_the_order(make_sim, make_seat) -> None:
    outcomes = []
    for order in (["913800138000", "9013912345678"], ["9013912345678", "913800138000"]):
        sim = await make_sim({"agents": AGENTS, "seed": 11, "workload": {"talk_mean": 1, "talk_sd": 0}})
        seat = await make_seat(sim.url, "601")
        for number in order:
            await seat.dial(number)
            await expect(seat, p.Hangup, timeout=5)
        outcomes.append(sorted((r.e164, r.end) for r in sim.call_log))
    assert outcomes[0] == outcomes[1]


async def test_frame_injection_is_refused_before_sending(make_sim, make_seat) -> None:
    sim = await make_sim({"agents": AGENTS})
    seat = await make_seat(sim.url, "601")
    before = sim.frames_in
    with pytest.raises(LocalProtocolError):
        await seat.dial("913800138000", cusname="李四\ncommand:hangup")
    with pytest.raises(LocalProtocolError):
        await seat.dial("9138-0013-8000")
    with pytest.raises(LocalProtocolError):
        await seat.busy("x\r\nidle")
    await asyncio.sleep(0.02)
    assert sim.frames_in == before and sim.call_log == []


async def test_no_reconnect_mode_and_commands_when_disconnected(make_sim, make_seat) -> None:
    sim = await make_sim()
    seat = await make_seat(sim.url, "601", reconnect=False)
    sim.drop("601")
    await expect(seat, SeatLost)
    await asyncio.sleep(0.05)
    assert not seat.connected
    with pytest.raises(NotConnected):
        await seat.idle()


async def test_wrong_path_and_dead_server_are_clear_errors(make_sim) -> None:
    sim = await make_sim()
    seat = Seat()
    with pytest.raises(CTIError, match="cannot connect"):
        await seat.connect(sim.url.replace("/spcc/cti", "/other"))
    port = sim.port
    await sim.stop()
    with pytest.raises(CTIError, match="cannot connect"):
        await seat.connect(f"ws://127.0.0.1:{port}/spcc/cti")


async def test_callback_delivery_and_disconnected_seat_is_logged_out_on_server(make_sim) -> None:
    """Without the desk-phone model a seat's socket takes its call with it."""
    sim = await make_sim({"customers": [{**ANSWER, "talk": 500}], "agents": AGENTS, "desk_phone": False})
    got: list[p.Message] = []
    seat = Seat(on_event=got.append, heartbeat_interval=0, reconnect=False)
    await seat.connect(sim.url)
    await seat.login("a", "601", "kefu", "1")
    await seat.dial("913800138000")
    for _ in range(100):
        if any(isinstance(m, p.OutboundAnswered) for m in got):
            break
        await asyncio.sleep(0.01)
    await seat.close()
    await asyncio.sleep(0.05)
    assert "601" not in sim.by_ext
    assert sim.call_log[-1].end == "agent_logout"


async def test_desk_phone_keeps_its_call_when_the_socket_drops(make_sim) -> None:
    """A desk phone's call goes on when its CTI socket drops; the next socket that logs the
    extension in is shown the call (its status) and can end it; a call that ends with no
    socket attached signs the extension out."""
    sim = await make_sim({"customers": [{**ANSWER, "talk": 500}], "agents": AGENTS})
    got: list[p.Message] = []
    seat = Seat(on_event=got.append, heartbeat_interval=0, reconnect=False)
    await seat.connect(sim.url)
    await seat.login("a", "601", "kefu", "1")
    await seat.dial("913800138000")
    for _ in range(300):
        if any(isinstance(m, p.OutboundAnswered) for m in got):
            break
        await asyncio.sleep(0.01)
    await seat.close()
    await asyncio.sleep(0.05)
    assert "601" in sim.by_ext and sim.by_ext["601"].call is not None and sim.call_log == []
    again: list[p.Message] = []
    second = Seat(on_event=again.append, heartbeat_interval=0, reconnect=False)
    await second.connect(sim.url)
    await second.login("a", "601", "kefu", "1")
    for _ in range(300):
        if any(isinstance(m, p.StatusChanged) for m in again):
            break
        await asyncio.sleep(0.01)
    status = next(m for m in again if isinstance(m, p.StatusChanged))
    assert status.call_state is p.CallState.OUTBOUND_TALKING
    await second.hangup()
    for _ in range(300):
        if sim.call_log:
            break
        await asyncio.sleep(0.01)
    assert sim.call_log[-1].answered and sim.call_log[-1].end == "agent_hangup"
    await second.close()