"""The walk over a node's file params: single, optional and list fields, paths made absolute."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from luckystack.graph.fileparams import file_fields, file_params
from luckystack.graph.node import InputFile, Params
from luckystack.graph.task import absolute_files


class FilesParams(Params):
    master: InputFile = Field(description="one file")
    reference: InputFile | None = Field(None, description="perhaps a file")
    darks: list[InputFile | None] = Field(default_factory=list, description="files, some unset")
    size: int = Field(4, description="not a file")


def test_every_file_field_is_walked_in_its_shape(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = FilesParams(master="m.fits", darks=["d1.ser", None])
    assert file_fields(FilesParams) == ("master", "reference", "darks")
    walked = {p.name: (p.many, p.paths) for p in file_params(params)}
    assert walked == {"master": (False, [Path("m.fits")]), "reference": (False, [None]),
                      "darks": (True, [Path("d1.ser"), None])}
    absolute = absolute_files(params)
    assert absolute.master == tmp_path / "m.fits" and absolute.reference is None
    assert absolute.darks == [tmp_path / "d1.ser", None] and absolute.size == 4
