"""RolloutReader: offsets, partial lines, truncation, replacement, bounded chunks."""

from __future__ import annotations

import os

import orjson
import pytest

from orbitdock.rollout.reader import REPLACED, TRUNCATED, RolloutReader


def _line(i: int, pad: int = 0) -> bytes:
    return orjson.dumps({"type": "event_msg", "payload": {"type": "x", "i": i, "pad": "p" * pad}})


def _write(path, data: bytes, mode: str = "ab") -> None:
    with open(path, mode) as fh:
        fh.write(data)


def test_reads_complete_lines_and_reports_end_offsets(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = [_line(i) for i in range(3)]
    _write(path, b"\n".join(lines) + b"\n")
    reader = RolloutReader(str(path))
    res = reader.read_lines()
    assert [line for line, _ in res.lines] == lines
    ends = [end for _, end in res.lines]
    assert ends[-1] == path.stat().st_size == reader.offset
    assert ends == [sum(len(x) + 1 for x in lines[:k + 1]) for k in range(3)]
    assert res.eof and reader.lag == 0
    assert reader.read_lines().lines == []  # nothing new: nothing handed out twice


def test_partial_last_line_is_held_until_its_newline(tmp_path):
    path = tmp_path / "r.jsonl"
    full = _line(1)
    _write(path, _line(0) + b"\n" + full[:10])
    reader = RolloutReader(str(path))
    res = reader.read_lines()
    assert [line for line, _ in res.lines] == [_line(0)]
    assert reader.offset == len(_line(0)) + 1  # the offset never points into the fragment
    assert res.eof
    _write(path, full[10:-3])
    assert reader.read_lines().lines == []
    _write(path, full[-3:] + b"\n")
    res = reader.read_lines()
    assert res.lines == [(full, path.stat().st_size)]


def test_truncation_restarts_from_zero_and_says_so(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(path, b"".join(_line(i, 50) + b"\n" for i in range(5)))
    reader = RolloutReader(str(path))
    assert len(reader.read_lines().lines) == 5
    _write(path, _line(99) + b"\n", mode="wb")  # same inode, shorter
    res = reader.read_lines()
    assert res.reset == TRUNCATED
    assert [line for line, _ in res.lines] == [_line(99)]
    assert reader.resets == 1


def test_replacement_by_rename_restarts_from_zero(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(path, _line(0) + b"\n")
    reader = RolloutReader(str(path))
    reader.read_lines()
    other = tmp_path / "new.jsonl"
    _write(other, b"".join(_line(i) + b"\n" for i in range(10, 14)))  # longer: no size hint
    os.replace(other, path)
    res = reader.read_lines()
    assert res.reset == REPLACED
    assert [orjson.loads(line)["payload"]["i"] for line, _ in res.lines] == [10, 11, 12, 13]


def test_missing_file_is_reported_not_raised(tmp_path):
    res = RolloutReader(str(tmp_path / "gone.jsonl")).read_lines()
    assert res.missing and res.lines == []


@pytest.mark.parametrize("chunk", [7, 64, 1000, 1 << 20])
def test_chunked_reading_of_a_file_larger_than_the_chunk(tmp_path, chunk):
    path = tmp_path / "r.jsonl"
    lines = [_line(i, pad=i * 13 % 300) for i in range(200)]
    _write(path, b"".join(x + b"\n" for x in lines))
    reader = RolloutReader(str(path), chunk_bytes=chunk)
    got = []
    while True:
        res = reader.read_lines(max_lines=17)
        assert len(res.lines) <= 17
        got.extend(line for line, _ in res.lines)
        if res.eof:
            break
    assert got == lines
    assert reader.offset == path.stat().st_size


def test_bounded_batches_resume_exactly_where_they_stopped(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(path, b"".join(_line(i) + b"\n" for i in range(10)))
    reader = RolloutReader(str(path), chunk_bytes=1 << 20)
    first = reader.read_lines(max_lines=4)
    assert not first.eof and reader.offset == first.lines[-1][1]
    # A new reader from the persisted offset sees exactly the rest (exactly-once resume).
    resumed = RolloutReader(str(path), offset=reader.offset).read_lines()
    rest = reader.read_lines()
    assert resumed.lines == rest.lines and len(rest.lines) == 6


def test_garbage_and_blank_lines_are_handed_out_or_skipped_not_fatal(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(path, b"not json\n\n   \n\xff\xfe binary\n" + _line(1) + b"\r\n")
    res = RolloutReader(str(path)).read_lines()
    assert [line for line, _ in res.lines] == [b"not json", b"\xff\xfe binary", _line(1)]
    assert res.lines[-1][1] == path.stat().st_size


def test_trailing_blank_lines_still_advance_the_offset(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(path, _line(1) + b"\n\n\n")
    reader = RolloutReader(str(path))
    reader.read_lines()
    assert reader.offset == path.stat().st_size and reader.lag == 0


def test_oversized_line_is_skipped_without_buffering_it(tmp_path):
    path = tmp_path / "r.jsonl"
    huge = b'{"type":"response_item","payload":{"x":"' + b"a" * 5000 + b'"}}'
    _write(path, _line(0) + b"\n" + huge + b"\n" + _line(2) + b"\n")
    reader = RolloutReader(str(path), chunk_bytes=256, max_line_bytes=1000)
    res = reader.read_lines()
    assert [line for line, _ in res.lines] == [_line(0), _line(2)]
    assert res.skipped and res.skipped[0][0] == len(_line(0)) + 1
    assert reader.offset == path.stat().st_size


def test_offset_inside_a_line_is_realigned_to_the_next_line(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(path, _line(0) + b"\n" + _line(1) + b"\n")
    reader = RolloutReader(str(path), offset=5)  # e.g. an upstream offset mid-line
    assert [line for line, _ in reader.read_lines().lines] == [_line(1)]
