"""A `.json` record file read one entry at a time: a top-level list of records, or a mapping key ->
record, parsed in blocks with the standard library's decoder, so a 500 MB file costs the memory of
its largest record, not of the file. Errors are the ones `json.loads` of the whole file would raise,
with the line they are on."""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path
from typing import IO, Any, Iterator

from longcurate.core.errors import UserError

BLOCK = 1 << 20
_WHITESPACE = " \t\n\r"
_DELIMITERS = _WHITESPACE + ",]}"


class _Text:
    """The file's decoded text, a window at a time: `text[pos:]` is what is left to parse."""

    def __init__(self, f: IO[bytes], path: Path):
        self.f, self.path = f, path
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text, self.pos, self.eof = "", 0, False
        self.lines_before = 0  # newlines in the text already dropped from the window

    def more(self) -> bool:
        """Read the next block (at least as much as the window holds: a long record costs O(n) in all)."""
        if self.eof:
            return False
        block = self.f.read(max(BLOCK, len(self.text) - self.pos))
        try:
            new = self.decoder.decode(block, final=not block)
        except UnicodeDecodeError as e:
            raise UserError(f"{self.path}: not UTF-8 ({e})") from None
        self.lines_before += self.text.count("\n", 0, self.pos)
        self.text, self.pos = self.text[self.pos:] + new, 0
        self.eof = not block
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end of the file)."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text) or not self.more():
                return self.text[self.pos:self.pos + 1]

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            self.fail(what)
        self.pos += 1
        return c

    def value(self, decoder: json.JSONDecoder) -> Any:
        """The next JSON value. A number is trusted only once a delimiter follows it (or the file ends):
        the window may have cut `333.5` to `333.` or `333`, which decode to a shorter number."""
        self.peek()
        while True:
            try:
                obj, end = decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as e:
                if self.more():
                    continue
                raise UserError(f"{self.path}:{self.lines_before + e.lineno}: invalid JSON: {e.msg}") from None
            number = isinstance(obj, (int, float)) and not isinstance(obj, bool)
            complete = end < len(self.text) and (not number or self.text[end] in _DELIMITERS)
            if complete or not self.more():
                self.pos = end
                return obj

    def fail(self, what: str) -> None:
        line = self.lines_before + self.text.count("\n", 0, self.pos) + 1
        raise UserError(f"{self.path}:{line}: invalid JSON: {what}")


def iter_json_entries(path: str | os.PathLike) -> Iterator[tuple[str | None, Any]]:
    """(key, value) of each entry of a JSON file's top-level list (key None) or mapping, in file order."""
    path = Path(path)
    decoder = json.JSONDecoder()
    with open(path, "rb") as f:
        t = _Text(f, path)
        opening = t.peek()
        if opening not in ("[", "{"):
            if not opening:
                t.fail("Expecting value")
            t.value(decoder)  # a valid scalar is the wrong shape; an invalid one says where
            raise UserError(f"{path}: expected a JSON list of records or a mapping of records")
        t.pos += 1
        closing = "]" if opening == "[" else "}"
        if t.peek() == closing:
            t.pos += 1
        else:
            while True:
                key = None
                if opening == "{":
                    if t.peek() != '"':
                        t.fail("Expecting property name enclosed in double quotes")
                    key = str(t.value(decoder))
                    t.expect(":", "Expecting ':' delimiter")
                yield key, t.value(decoder)
                if t.expect("," + closing, "Expecting ',' delimiter") == closing:
                    break
        if t.peek():
            t.fail("Extra data")


__all__ = ["iter_json_entries"]
