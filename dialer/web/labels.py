"""The console's words: Chinese first, English beside it (one table, used by the pages and the
HTML report)."""

from __future__ import annotations

from markupsafe import Markup, escape

LABELS: dict[str, tuple[str, str]] = {
    # seat states (dialer/worker/seatlog.py)
    "ready": ("空闲", "ready"), "dialling": ("拨号中", "dialling"), "talking": ("通话中", "talking"),
    "wrap": ("话后处理", "wrap-up"), "busy": ("忙碌", "busy"), "lost": ("失联", "lost"),
    "logged_out": ("已签出", "logged out"),
    # outcomes (dialer/store/models.py)
    "answered": ("已接通", "answered"), "no_answer": ("无人接听", "no answer"), "failed": ("呼叫失败", "failed"),
    "agent_no_answer": ("坐席未接", "agent no answer"), "abandoned": ("弃呼", "abandoned"),
    "timeout": ("超时", "timeout"), "interrupted": ("中断", "interrupted"), "answered_late": ("迟接", "answered late"),
    "open": ("进行中", "in progress"), "busy_line": ("占线", "busy"),
    # campaign statuses
    "draft": ("草稿", "draft"), "active": ("运行中", "active"), "paused": ("已暂停", "paused"),
    "finished": ("已完成", "finished"), "archived": ("已归档", "archived"),
    # actions
    "pause": ("暂停", "Pause"), "resume": ("启动", "Resume"), "archive": ("归档", "Archive"),
    "login": ("登录", "Log in"), "logout": ("退出", "Log out"), "upload": ("上传", "Upload"),
    "filter": ("筛选", "Filter"), "download_csv": ("下载 CSV", "Download CSV"),
    # pages and headings
    "wallboard": ("实时监控", "Wallboard"), "campaigns": ("外呼活动", "Campaigns"), "campaign": ("活动", "Campaign"),
    "import": ("导入名单", "Import a list"), "audit": ("操作记录", "Audit log"), "api": ("接口文档", "API"),
    "queue": ("队列", "Queue"), "agents": ("坐席", "Agents"), "calls": ("通话中的呼叫", "Calls in flight"),
    "waiting": ("等待中的来电", "Callers waiting"), "ports": ("拨号端口", "Dialer ports"),
    "no_worker": ("没有正在运行的外呼进程：不会拨出任何电话", "No worker is alive: nothing is being dialled"),
    "workers": ("外呼进程", "Workers"), "dialable": ("可拨号码", "Dialable"), "dials_today": ("今日拨打", "Dials today"),
    "live_today": ("今日接通", "Live answers today"), "abandoned_today": ("今日弃呼", "Abandoned today"),
    "abandon_today": ("今日弃呼率", "Abandonment today"), "abandon_30d": ("30天弃呼率", "Abandonment, 30 days"),
    "target": ("上限", "cap"), "level": ("节奏", "Pacer level"), "status": ("状态", "Status"), "mode": ("模式", "Mode"),
    "summary": ("概况", "Summary"), "outcomes_daily": ("每日呼叫结果", "Outcomes per day"),
    "answer_by_hour": ("各小时接通率", "Answer rate by hour of day"),
    "abandon_daily": ("每日弃呼率与上限", "Abandonment per day against the cap"),
    "occupancy": ("坐席占用率", "Agent occupancy"), "attempts": ("呼叫记录", "Attempts"),
    "agent_report": ("坐席报表", "Per-agent report"), "rejects": ("拒收的行", "Refused rows"),
    "batches": ("导入记录", "Imports"), "progress": ("进度", "Progress"), "file": ("文件", "File"),
    "encoding": ("编码", "Encoding"), "phone": ("电话", "Phone"), "outcome": ("结果", "Outcome"),
    "since": ("开始日期", "From"), "until": ("结束日期", "To"), "all": ("全部", "all"),
    "user": ("用户名", "User"), "password": ("密码", "Password"), "role": ("角色", "Role"),
    "forbidden": ("权限不足", "Not allowed"), "timezone": ("时区", "Timezone"),
    "seconds": ("秒", "s"), "in_state": ("持续", "in state"),
}


def label(key: str) -> Markup:
    """'中文 English' as HTML (the English smaller); an unknown key as itself."""
    zh, en = LABELS.get(key, (key, ""))
    if not en or en == zh:
        return Markup(escape(zh))
    return Markup(f'{escape(zh)} <span class="en">{escape(en)}</span>')


def text(key: str) -> str:
    """'中文 English' as plain text (chart titles, CSV headers)."""
    zh, en = LABELS.get(key, (key, ""))
    return f"{zh} {en}" if en and en != zh else zh


def outcome_label(outcome: str) -> Markup:
    return label("busy_line" if outcome == "busy" else outcome)


def outcome_text(outcome: str) -> str:
    return text("busy_line" if outcome == "busy" else outcome)


__all__ = ["LABELS", "label", "text", "outcome_label", "outcome_text"]
