"""Lists as they come: Chinese encodings at every size, stitched files, stray quotes, ragged and
hostile rows, interrupted imports — every good row imported with its text right, every bad row
reported once with its line and reason (SQLite; the store's part is in test_importer.py)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from dialer.charsets import SAMPLE_BYTES, detect
from dialer.importer import import_file
from dialer.store import repo
from dialer.store.migrate import upgrade
from dialer.store.models import Contact, RejectedRow

SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛"


def new_engine(tmp_path: Path, name: str = "d.db"):
    engine = create_engine(f"sqlite:///{tmp_path / name}")
    upgrade(engine)
    with Session(engine) as s, s.begin():
        repo.create_campaign(s, "c", queue="kefu", area_code="010")
    return engine


@pytest.fixture
def engine(tmp_path):
    e = new_engine(tmp_path)
    yield e
    e.dispose()


def names(engine) -> dict[str, str]:
    with Session(engine) as s:
        return {c.phone: c.name for c in s.scalars(select(Contact))}


def rejected(engine) -> list[tuple[int, str]]:
    with Session(engine) as s:
        return [(r.line, r.reason) for r in s.scalars(select(RejectedRow).order_by(RejectedRow.line))]


def chinese_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


# -- encodings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8"])
def test_a_large_chinese_list_imports_whatever_byte_its_sample_ends_on(engine, tmp_path, encoding, shift) -> None:
    # a two-byte (or three-byte) character across the detection sample's end: once on it,
    # once a byte later
    rng = random.Random(shift)
    rows, size, n = [], 0, 0
    while size < SAMPLE_BYTES + 4096:
        n += 1
        row = f"139{n:08d},{chinese_name(rng)}\n"
        rows.append(row)
        size += len(row.encode(encoding))
    text = "电话,姓名\n" + "".join(rows)
    data = text.encode(encoding)
    # put a character across the boundary: pad the header row with spaces until it is
    for pad in range(8):
        padded = ("电话,姓名" + " " * pad + "\n" + "".join(rows)).encode(encoding)
        b = padded[SAMPLE_BYTES - 1 + shift]
        if b >= 0x80:
            data = padded
            break
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    summary = import_file(engine, "c", path)
    assert summary.rejected == 0 and summary.imported == n
    expected = {f"+86139{i + 1:08d}": row.split(",")[1].strip() for i, row in enumerate(rows)}
    assert names(engine) == expected


@pytest.mark.parametrize("trial", range(20))
def test_a_short_gbk_list_is_read_as_chinese(tmp_path, trial) -> None:
    rng = random.Random(trial)
    lines = ["姓名,电话"] + [f"{chinese_name(rng)},139{rng.randrange(10**8):08d}" for _ in range(rng.randint(1, 3))]
    data = "\n".join(lines).encode("gbk")
    assert detect(data, complete=True) == "gb18030"
    e = new_engine(tmp_path, f"t{trial}.db")
    path = tmp_path / "short.csv"
    path.write_bytes(data + b"\n")
    summary = import_file(e, "c", path)
    assert summary.imported == len(lines) - 1, rejected(e)
    assert sorted(names(e).values()) == sorted(line.split(",")[0] for line in lines[1:])
    e.dispose()


def test_a_gbk_header_with_utf8_rows_keeps_the_names_right(engine, tmp_path) -> None:
    path = tmp_path / "stitched.csv"
    body = "".join(f"139{i:08d},李四{i}\n" for i in range(3000))
    path.write_bytes("电话,姓名\n".encode("gbk") + body.encode("utf-8"))
    summary = import_file(engine, "c", path)
    # read by its majority, UTF-8; the GBK header line in GB18030
    assert (summary.imported, summary.rejected, summary.encoding) == (3000, 0, "utf-8")
    assert set(names(engine).values()) == {f"李四{i}" for i in range(3000)}


def test_a_gbk_row_in_a_utf8_list_is_read_as_gbk(engine, tmp_path) -> None:
    path = tmp_path / "stitched.csv"
    path.write_bytes("电话,姓名\n13900000001,王五\n".encode() + "13900000002,赵六\n".encode("gbk"))
    summary = import_file(engine, "c", path)
    assert (summary.imported, summary.other_encoding_rows) == (2, 1)
    assert names(engine) == {"+8613900000001": "王五", "+8613900000002": "赵六"}


def test_a_row_in_neither_encoding_is_refused_alone(engine, tmp_path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes("电话,姓名\n13900000001,王五\n".encode() + b"13900000002,\xff\xfe\x80\n" + b"13900000003,x\n")
    summary = import_file(engine, "c", path)
    assert summary.imported == 2
    assert rejected(engine) == [(3, "bytes that are neither UTF-8 nor GB18030")]


def test_an_encoding_that_cannot_be_told_is_refused_naming_the_option(engine, tmp_path) -> None:
    from dialer.importer import ImportFailed

    path = tmp_path / "l.csv"
    path.write_bytes(b"phone,name\n13900000001,\x80\x80\x80\xff\xff\n")
    with pytest.raises(ImportFailed, match="--encoding"):
        import_file(engine, "c", path)


# -- malformed rows -------------------------------------------------------------------------------

def test_a_stray_quote_costs_its_own_row_alone(engine, tmp_path) -> None:
    lines = ["phone,name"] + [f"139{i:08d},n{i}" for i in range(200)]
    lines[4] = '13966666667,"never closed,K'
    path = tmp_path / "l.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = import_file(engine, "c", path)
    assert (summary.imported, summary.rejected) == (199, 1)
    assert rejected(engine) == [(5, "malformed CSV: a quoted field is never closed")]


def test_a_quoted_field_over_two_lines_is_one_row(engine, tmp_path) -> None:
    # one record (refused once for its line break, which no value may hold), not two broken ones
    path = tmp_path / "l.csv"
    path.write_text('phone,name,address\n13900000001,a,"1 Main St\nFloor 2"\n13900000002,b,x\n', encoding="utf-8")
    summary = import_file(engine, "c", path)
    assert (summary.imported, summary.rejected) == (1, 1)
    assert rejected(engine) == [(2, "line break inside address")]


def test_rows_wider_than_the_header_are_counted_and_kept_as_extra_data(engine, tmp_path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("phone,name\n13900000001,a,surprise\n13900000002,b\n", encoding="utf-8")
    summary = import_file(engine, "c", path)
    assert (summary.imported, summary.extra_cells_rows) == (2, 1)
    with Session(engine) as s:
        assert s.scalar(select(Contact.extra).where(Contact.phone == "+8613900000001")) == {"column3": "surprise"}


def test_an_interrupted_import_leaves_no_rows_and_no_rejects_file(engine, tmp_path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("phone,name\n" + "".join(f"139{i:08d},n\nbad{i},x\n" for i in range(30_000)), encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    seen = [0]

    def interrupt(n: int) -> None:
        seen[0] += n
        if seen[0] > 200_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(engine, "c", path, rejects=rejects, progress=interrupt, chunk_rows=500)
    assert names(engine) == {}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("rejects")) == []


def test_the_rejects_file_escapes_formula_cells(engine, tmp_path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("phone,name\n=cmd|' /C calc'!A0,x\n-13988888898,y\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    import_file(engine, "c", path, rejects=rejects)
    with rejects.open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))[1:]
    assert [r[2] for r in rows] == ["'=cmd|' /C calc'!A0,x", "'-13988888898,y"]
    assert all("not a phone number" in r[1] for r in rows)


# -- the property: every good row in with its text, every bad row reported once ------------------

_BAD = {
    "stray quote": lambda phone, name: (f'{phone},"{name}', "malformed CSV: a quoted field is never closed"),
    "NUL": lambda phone, name: (f"{phone},{name}\x00", "NUL inside name"),
    "control": lambda phone, name: (f"{phone},{name}\x1b[2J", "control character U+001B inside name"),
    "separator": lambda phone, name: (f"{phone},{name}\u2028", "line separator U+2028 inside name"),
    "long name": lambda phone, name: (f"{phone},{name * 60}", "name longer than 100 characters"),
    "no phone": lambda phone, name: (f",{name}", "no phone number"),
    "formula phone": lambda phone, name: (f"=1+{phone},{name}", "not a phone number"),
}

row_kinds = st.lists(st.one_of(st.just("good"), st.just("good"), st.just("duplicate"), st.just("formula name"),
                               st.sampled_from(sorted(_BAD))), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(kinds=["good", "duplicate"], encoding="gbk", pad=0, seed=4096)  # 叶霞 in GBK is valid UTF-8 ("Ҷϼ")
@given(kinds=row_kinds, encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030"]),
       pad=st.integers(0, 3), seed=st.integers(0, 10**6))
def test_every_good_row_in_every_bad_row_reported_once(tmp_path_factory, kinds, encoding, pad, seed) -> None:
    tmp = tmp_path_factory.mktemp("p")
    e = new_engine(tmp)
    rng = random.Random(seed)
    lines = ["电话,姓名"]
    good: dict[str, str] = {}
    bad: dict[int, str] = {}
    first_good = None
    for i, kind in enumerate(kinds):
        line_no = len(lines) + 1
        phone = f"139{seed % 1000:03d}{i:05d}"
        name = chinese_name(rng) + " " * pad
        if kind == "good" or kind == "formula name":
            if kind == "formula name":
                name = "=SUM(1+1)" + name  # a formula is data on the way in; escaped on the way out
            lines.append(f"{phone},{name}")
            good[f"+86{phone}"] = name.strip()
            first_good = first_good or (phone, name, line_no)
        elif kind == "duplicate" and first_good:
            lines.append(f"{first_good[0]},{first_good[1]}")
            bad[line_no] = f"duplicate of line {first_good[2]} in this file"
        elif kind == "duplicate":
            continue
        else:
            if kind == "separator" and encoding == "gbk":  # GBK has no U+2028
                kind = "control"
            text, reason = _BAD[kind](phone, name)
            lines.append(text)
            bad[line_no] = reason
    path = tmp / "list.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    summary = import_file(e, "c", path)
    got = rejected(e)
    assert names(e) == good
    assert [line for line, _ in got] == sorted(bad), got
    for line, reason in got:
        assert reason.startswith(bad[line].split(":")[0]) or bad[line] in reason, (line, reason, bad[line])
    assert summary.rows == summary.imported + summary.duplicates + summary.dnc + summary.rejected
    e.dispose()


def test_ten_megabyte_fields_cost_their_own_rows(engine, tmp_path) -> None:
    big = "张" * (10 * 1024 * 1024 // 3)
    path = tmp_path / "l.csv"
    path.write_text(f"phone,name\n13900000001,{big}\n13900000002,\"{big}\"\n13900000003,ok\n", encoding="utf-8")
    summary = import_file(engine, "c", path)
    assert (summary.imported, summary.rejected) == (1, 2)
    assert rejected(engine) == [(2, "name longer than 100 characters"),
                                (3, "malformed CSV: field larger than field limit (131072)")]


def test_excel_csv_utf8_with_a_bom_and_accented_names(engine, tmp_path) -> None:
    # the BOM is not part of the header; "José" is not GB18030 Chinese in a UTF-8 file
    path = tmp_path / "l.csv"
    path.write_bytes("\ufeffname,phone\nJosé Müller,13900000001\n恪娟芳,13900000002\n".encode())
    summary = import_file(engine, "c", path)
    assert (summary.imported, summary.encoding) == (2, "utf-8-sig")
    assert names(engine) == {"+8613900000001": "José Müller", "+8613900000002": "恪娟芳"}


def test_a_gbk_name_whose_bytes_read_as_hangul_in_utf8_is_gbk(engine, tmp_path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes("phone,name\n13900000001,恪娟芳\n13900000002,张三\n".encode("gbk"))
    import_file(engine, "c", path)
    assert set(names(engine).values()) == {"恪娟芳", "张三"}
