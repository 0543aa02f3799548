"""The simulator as the vendor's own browser client sees it.

`js_parse` reads a frame the way the vendor's websocket.js does (lines split on every ':' keeping
the first two pieces; callbacks chosen by messageType and name), and the frames sent are written
by hand in the vendor client's shape, including its known `dial` defect. Nothing from our codec is
used on this side, so a shared bug cannot hide.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect

ANSWER = {"number": "13800138000", "outcome": "answer", "ring": 2, "talk": 5}


def js_parse(frame: str) -> dict[str, str]:
    assert "\r" not in frame, "the vendor client fires no callback on \\r\\n"
    assert frame.endswith("\n\n")
    obj: dict[str, str] = {}
    for line in frame.split("\n"):
        pieces = line.split(":")
        if len(pieces) >= 2:
            obj[pieces[0]] = pieces[1]
    return obj


def js_callback(obj: dict[str, str]) -> str:
    """Which On*_cb the vendor client fires for a message."""
    mt = obj.get("messageType")
    if mt == "command response":
        cmd = obj["command"]
        if cmd == "login":
            return "OnLoginSuccess_cb" if obj["success"] == "true" else "OnLoginFail_cb"
        if cmd == "logout" and obj["success"]:
            return "OnLogoutSuccess_cb"
        if cmd == "getExtensionList" and obj["success"]:
            assert "resultText" in obj, "the vendor client throws without resultText"
            return "extensionList_cb"
        return "none"
    if mt == "heartbeat response":
        return "heartbeat"
    return {
        "outbound ringing": "OnOutboundRinging_cb", "outbound answered": "OnOutbound_cb",
        "incomming ringing": "OnIncommingRing_cb", "incomming answered": "OnIncommingAnswer_cb",
        "hangup": "OnHangup_cb", "status changed": "OnStatusChanged_cb", "call status": "OnCallStatus_cb",
        "queue status": "OnQueueStatusChanged_cb", "busy status": "OnBusy_or_OnFree_cb",
    }.get(obj.get("name", ""), "unknown")


async def read_until(ws, callback: str, log: list[tuple[str, dict[str, str]]]) -> dict[str, str]:
    while True:
        frame = await asyncio.wait_for(ws.recv(), 3)
        obj = js_parse(frame)
        log.append((js_callback(obj), obj))
        if log[-1][0] == callback:
            return obj


async def test_vendor_style_session(make_sim) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": [{"extension": "601", "pickup": 0.2, "wrap_up": 0},
                                                             {"extension": "602", "pickup": 0.2}]})
    log: list[tuple[str, dict[str, str]]] = []
    async with connect(sim.url) as ws, connect(sim.url) as ws2:
        await ws.send("command:login\nagent:张三\nextension:601\nqueue:kefu\nstaffid:10601\nbusyString:\n"
                      "skill:1\nsecid:\nsecname:\nautoacw:2\n\n")
        assert (await read_until(ws, "OnLoginSuccess_cb", log))["success"] == "true"
        await ws2.send("command:login\nagent:李四\nextension:601\nqueue:kefu\nstaffid:10602\nbusyString:\n"
                       "skill:1\nsecid:\nsecname:\nautoacw:0\n\n")
        fail = await read_until(ws2, "OnLoginFail_cb", [])
        assert fail["resultText"]

        await ws.send("command:heartbeat\n\n")
        await read_until(ws, "heartbeat", log)

        await ws.send("command:getExtensionList\ntype:all\nsecid:\nqueue:\n\n")
        ext = await read_until(ws, "extensionList_cb", log)
        records = [r.split("|") for r in ext["resultText"].split(",")]
        assert all(len(r) == 7 for r in records)
        assert records[0][:6] == ["601", "张三", "10601", "", "kefu", "空闲"]

        await ws.send("command:getExtensionList\ntype:agentidle\nsecid:nobody\nqueue:\n\n")
        assert (await read_until(ws, "extensionList_cb", log))["resultText"] == ""

        # The vendor's dial puts proid under cusid and drops proid: the call must still go out.
        await ws.send("command:dial\ndialString:913800138000\ncusid:7\ncusname:王五\nproname:回访\n\n")
        ringing = await read_until(ws, "OnOutboundRinging_cb", log)
        assert ringing["number"] == "13800138000" and ringing["callid"]
        answered = await read_until(ws, "OnOutbound_cb", log)
        assert (answered["province"], answered["city"], answered["isp"]) == ("北京市", "北京市", "中国移动")
        await read_until(ws, "OnHangup_cb", log)
        busy = await read_until(ws, "OnBusy_or_OnFree_cb", log)
        assert busy["busy"] == "话后"

        await ws.send("command:logout\n\n")
        await read_until(ws, "OnLogoutSuccess_cb", log)

    seen = {cb for cb, _ in log}
    assert {"OnStatusChanged_cb", "OnCallStatus_cb", "OnQueueStatusChanged_cb"} <= seen
    assert "unknown" not in seen
    states = {obj["call"] for cb, obj in log if cb == "OnCallStatus_cb"}
    assert states <= {"外呼振铃", "呼入振铃", "外呼通话", "呼入通话", "自动外呼接入", "空闲", "外呼彩铃", "呼入彩铃", "未知"}


async def test_incomming_spelling_on_queue_offer(make_sim) -> None:
    sim = await make_sim({"customers": [ANSWER], "agents": [{"extension": "601", "pickup": 0.2},
                                                             {"extension": "8001", "pickup": 0}]})
    async with connect(sim.url) as agent, connect(sim.url) as port:
        for ws, ext, q in ((agent, "601", "kefu"), (port, "8001", "ports")):
            await ws.send(f"command:login\nagent:a\nextension:{ext}\nqueue:{q}\nstaffid:1\nbusyString:\n"
                          "skill:1\nsecid:\nsecname:\nautoacw:0\n\n")
            await read_until(ws, "OnLoginSuccess_cb", [])
        await port.send("command:dial\ndialString:913800138000\ncusid:\ncusname:\nproid:\nproname:\n\n")
        await read_until(port, "OnOutbound_cb", [])
        await port.send("command:transferQueue\nqueue:kefu\n\n")
        ring = await read_until(agent, "OnIncommingRing_cb", [])
        assert ring["autodial"] == "true" and ring["number"] == "13800138000"
        await read_until(agent, "OnIncommingAnswer_cb", [])
