"""Tests for worldmodel.files: atomic output."""

import json

import pytest

from worldmodel.files import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text


def test_atomic_write_bytes_and_text(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(target, b"\x00\x01abc")
    assert target.read_bytes() == b"\x00\x01abc"
    atomic_write_text(tmp_path / "a.txt", "héllo")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.bin", "a.txt"]


def test_atomic_write_json_sorted_and_indented(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    text = target.read_text()
    assert json.loads(text) == {"a": [1, 2], "b": 1}
    assert text.index('"a"') < text.index('"b"')
    assert "\n  " in text


def test_failure_leaves_existing_file_identical_and_no_temp(tmp_path):
    target = tmp_path / "video.mp4"
    target.write_bytes(b"original")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as temp:
            temp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]


def test_unserialisable_json_leaves_nothing(tmp_path):
    target = tmp_path / "m.json"
    # json's own error comes through unchanged: it names the type that cannot be written.
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        atomic_write_json(target, {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_temp_path_keeps_suffix_and_directory(tmp_path):
    target = tmp_path / "clip.mp4"
    with atomic_path(target) as temp:
        assert temp.suffix == ".mp4"
        assert temp.parent == target.parent
        assert temp != target
        temp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_nothing_written_raises_and_keeps_old(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(FileNotFoundError, match=r"nothing was written to the temporary file .* for .*a\.txt"):
        with atomic_path(target):
            pass
    assert target.read_text() == "old"
