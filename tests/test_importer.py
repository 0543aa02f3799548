"""List import on SQLite and PostgreSQL: encodings, headers, every reject reason, streaming."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.importer import ImportFailed, detect_encoding, import_file, map_columns
from dialer.store import repo
from dialer.store.models import Campaign, Contact, ImportBatch, RejectedRow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def campaign(engine) -> str:
    with Session(engine) as s, s.begin():
        repo.create_campaign(s, "回访", queue="kefu", area_code="010")
    return "回访"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def stored(engine) -> list[Contact]:
    with Session(engine) as s:
        return list(s.scalars(select(Contact).order_by(Contact.id)))


def test_example_list(engine, campaign, tmp_path) -> None:
    rejects = tmp_path / "rejects.csv"
    summary = import_file(engine, campaign, ROOT / "campaigns.example.csv", rejects=rejects)
    assert summary.contract() == {"file": str(ROOT / "campaigns.example.csv"), "rows": 52, "imported": 46,
                                  "duplicates": 1, "dnc": 0, "rejected": 5, "batch": summary.batch}
    with rejects.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [(r["line"], r["reason"]) for r in rows] == [
        ("12", "invalid number +86138001"), ("22", "no phone number"),
        ("27", "international numbers are not allowed for this campaign"),
        ("35", "duplicate of line 5 in this file"), ("42", "priority is not a whole number: '高'"),
        ("46", "not a phone number: '电话号码'")]
    assert rows[0]["row"] == "KH0901,错号码,138001,北京,号码位数不足,"
    contacts = stored(engine)
    first = contacts[0]
    assert (first.phone, first.name, first.customer_id, first.priority, first.raw_phone) == \
        ("+8613381399869", "刘勇", "KH0001", 5, "008613381399869")
    assert first.extra == {"城市": "北京市", "备注": "上次未接通"}
    assert {c.kind for c in contacts} == {"mobile", "landline"}
    assert any(c.extension for c in contacts)  # "010 … 转809" kept its extension apart
    with Session(engine) as s:
        assert s.scalar(select(ImportBatch.rejected).where(ImportBatch.id == summary.batch)) == 5
        assert len(list(s.scalars(select(RejectedRow)))) == 6
    again = import_file(engine, campaign, ROOT / "campaigns.example.csv")
    assert (again.imported, again.duplicates, again.rejected) == (0, 47, 5)  # the same file adds nothing
    assert len(stored(engine)) == 46


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_encodings_are_detected(engine, campaign, tmp_path, encoding) -> None:
    text = "手机号,客户姓名,地址\n13800138000,张三,北京市朝阳区建国路88号\n13912345678,李四,江苏省常州市\n"
    summary = import_file(engine, campaign, write(tmp_path / "l.csv", text, encoding))
    assert summary.imported == 2
    assert [c.name for c in stored(engine)] == ["张三", "李四"]
    assert stored(engine)[0].extra == {"地址": "北京市朝阳区建国路88号"}


def test_detect_encoding_samples() -> None:
    assert detect_encoding("姓名,电话\n张三,1\n".encode("gbk") * 20) == "gb18030"
    assert detect_encoding(b"\xef\xbb\xbfphone\n") == "utf-8-sig"
    assert detect_encoding("电话".encode() + b"\xe7") == "utf-8"  # a character cut by the sample end


def test_encoding_override_and_unknown(engine, campaign, tmp_path) -> None:
    path = write(tmp_path / "l.csv", "电话,姓名\n13800138000,王五\n", "gbk")
    assert import_file(engine, campaign, path, encoding="gbk").imported == 1
    with pytest.raises(ImportFailed, match="unknown encoding"):
        import_file(engine, campaign, path, encoding="klingon")


def test_wrong_encoding_rows_are_rejected_not_garbled(engine, campaign, tmp_path) -> None:
    path = write(tmp_path / "l.csv", "电话,姓名\n13800138000,王五\n", "gbk")
    with pytest.raises(ImportFailed, match="header row is not utf-8"):
        import_file(engine, campaign, path, encoding="utf-8")
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"phone,name\n13800138000,ok\n13900000000," + "王五".encode("gbk") + b"\n")
    summary = import_file(engine, campaign, path, encoding="utf-8")
    assert (summary.imported, summary.rejected) == (1, 1) and "not utf-8" in _reasons(engine)[0]


@pytest.mark.parametrize(("delimiter", "header"), [("\t", "Mobile\tFull Name\tCustomer ID"),
                                                    (";", "TEL;name;customer_id"),
                                                    (",", " Phone Number ,NAME,客户编号")])
def test_delimiters_and_english_headers(engine, campaign, tmp_path, delimiter, header) -> None:
    text = f"{header}\n13800138000{delimiter}Ann{delimiter}A-1\n"
    summary = import_file(engine, campaign, write(tmp_path / "l.csv", text))
    assert summary.imported == 1 and summary.delimiter == delimiter
    c = stored(engine)[0]
    assert (c.phone, c.name, c.customer_id) == ("+8613800138000", "Ann", "A-1")


def test_map_overrides_and_no_phone_column(engine, campaign, tmp_path) -> None:
    path = write(tmp_path / "l.csv", "col_a,col_b,备注\n13800138000,Ann,x\n")
    with pytest.raises(ImportFailed, match="no phone column; found: col_a, col_b, 备注"):
        import_file(engine, campaign, path)
    summary = import_file(engine, campaign, path, mapping={"col_a": "phone", "col_b": "name", "备注": "-"})
    assert summary.imported == 1 and stored(engine)[0].name == "Ann" and stored(engine)[0].extra is None
    with pytest.raises(ImportFailed, match="not in the file"):
        import_file(engine, campaign, path, mapping={"nope": "phone"})
    with pytest.raises(ImportFailed, match="unknown field"):
        import_file(engine, campaign, path, mapping={"col_a": "mobile_number"})


def _reasons(engine) -> list[str]:
    with Session(engine) as s:
        return [r.reason for r in s.scalars(select(RejectedRow).order_by(RejectedRow.line))]


def test_every_reject_reason(engine, campaign, tmp_path) -> None:
    with Session(engine) as s, s.begin():
        repo.add_dnc(s, ["+8613700000000"], "投诉")
    text = (
        "phone,name,priority,timezone\n"
        "13800138000,ok,,\n"
        ",no phone,,\n"
        "abc,letters,,\n"
        "138001,short,,\n"
        "+1 415 555 2671,foreign,,\n"
        "13800138000,dup in file,,\n"
        "13700000000,on dnc,,\n"
        "13600000000,bad priority,high,\n"
        "13500000000,bad tz,,Mars/Base\n"
        '13400000000,"two\nlines",,\n'
        f"13300000000,{'x' * 101},,\n"
        "13200000000,ok tz,2,Asia/Tokyo\n"
    )
    summary = import_file(engine, campaign, write(tmp_path / "l.csv", text))
    assert (summary.rows, summary.imported, summary.duplicates, summary.dnc, summary.rejected) == (12, 2, 1, 1, 8)
    assert _reasons(engine) == [
        "no phone number", "not a phone number: 'abc'", "invalid number +86138001",
        "international numbers are not allowed for this campaign", "duplicate of line 2 in this file",
        "on the do-not-call list", "priority is not a whole number: 'high'", "unknown timezone 'Mars/Base'",
        "line break inside name", "name longer than 100 characters"]
    with Session(engine) as s:
        assert s.scalar(select(Campaign.contact_timezones)) == ["Asia/Tokyo"]


def test_malformed_csv_row_loses_no_neighbour(engine, campaign, tmp_path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(b'phone,name\n13800138000,a\n13900000000,b\x00c\n13600000000,"x"y\n13700000001,d\n')
    rejects = tmp_path / "rejects.csv"
    summary = import_file(engine, campaign, path, rejects=rejects)
    assert summary.imported == 2 and summary.rejected == 2
    assert _reasons(engine) == ["NUL inside name", "malformed CSV: ',' expected after '\"'"]
    with rejects.open(encoding="utf-8-sig") as f:
        report = list(csv.reader(f))
    assert report[1:] == [["3", "NUL inside name", "13900000000,b\\x00c"],
                          ["4", "malformed CSV: ',' expected after '\"'", '13600000000,"x"y']]


def test_already_in_campaign_vs_in_file_across_chunks(engine, campaign, tmp_path) -> None:
    import_file(engine, campaign, write(tmp_path / "a.csv", "phone\n13800138000\n"))
    rows = "".join(f"1390000{i:04d}\n" for i in range(25))
    text = "phone\n13800138000\n" + rows + "13900000003\n"  # the last one duplicates a row 4 chunks back
    summary = import_file(engine, campaign, write(tmp_path / "b.csv", text), chunk_rows=7)
    assert (summary.imported, summary.duplicates) == (25, 2)
    reasons = _reasons(engine)
    assert "already in the campaign" in reasons and "duplicate of an earlier row in this file" in reasons


def test_dry_run_stores_nothing(engine, campaign, tmp_path) -> None:
    summary = import_file(engine, campaign, ROOT / "campaigns.example.csv", dry_run=True)
    assert summary.imported == 46 and summary.batch is None
    assert stored(engine) == []


def test_file_errors(engine, campaign, tmp_path) -> None:
    with pytest.raises(ImportFailed, match="cannot read"):
        import_file(engine, campaign, tmp_path / "missing.csv")
    with pytest.raises(ImportFailed, match="no header row"):
        import_file(engine, campaign, write(tmp_path / "empty.csv", ""))
    with pytest.raises(repo.NotFound):
        import_file(engine, "nope", ROOT / "campaigns.example.csv")


def test_contacts_are_due_now_and_pending(engine, campaign, tmp_path) -> None:
    now = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)
    import_file(engine, campaign, write(tmp_path / "l.csv", "phone\n13800138000\n"), now=now)
    c = stored(engine)[0]
    assert (c.status, c.attempts, c.next_attempt_at, c.claimed_by) == ("pending", 0, now, None)


def test_map_columns_prefers_first_alias() -> None:
    cols = map_columns(["电话", "手机", "姓名"], {})
    assert cols == {0: "phone", 1: "extra:手机", 2: "name"}


def test_progress_counts_every_byte(engine, campaign) -> None:
    seen: list[int] = []
    import_file(engine, campaign, ROOT / "campaigns.example.csv", progress=seen.append)
    assert sum(seen) == (ROOT / "campaigns.example.csv").stat().st_size
