"""Entries of one big JSON document (a list of records, or a mapping key -> record), read a piece at a
time: memory holds one entry and the text read ahead, never the whole file (a 499 MB JSON list read
whole took 1.84 GB; read here, about the size of its largest record).

`json.JSONDecoder.raw_decode` parses each entry out of a growing text buffer; the buffer is refilled
from the stream when an entry runs past its end (so an entry is never cut short) and trimmed once an
entry is consumed. Line numbers are counted as the text goes by, so a syntax error names the line.
"""

from __future__ import annotations

import json
from typing import IO, Iterator

from longcurate.core.errors import UserError

READ_CHARS = 1 << 20  # text read per refill (doubled while one entry is longer than the buffer)
_WS = " \t\r\n"


class JsonStream:
    """A cursor over the text of one JSON document in `stream` (text mode)."""

    def __init__(self, stream: IO[str], name: str):
        self.stream = stream
        self.name = name
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # the line at `pos`
        self.decoder = json.JSONDecoder()

    def _fill(self) -> bool:
        """Read more text onto what is left of the buffer (at least as much again, so an entry longer
        than the buffer takes few refills); False, the buffer untouched, at the end of the stream."""
        if self.eof:
            return False
        more = self.stream.read(max(READ_CHARS, len(self.buf) - self.pos))
        if not more:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos:] + more, 0
        return True

    def _advance(self, end: int) -> None:
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self._advance(self.pos + 1)
            if self.pos < len(self.buf) or not self._fill():
                return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            found = repr(c) if c else "the end of the file"
            raise UserError(f"{self.name}:{self.line}: invalid JSON: expected {' or '.join(map(repr, chars))}, "
                            f"found {found}")
        self._advance(self.pos + 1)
        return c

    def value(self) -> object:
        """The next JSON value, read whole however many refills it takes."""
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # cut short by the buffer's end (an unterminated string, a value still to come): read on
                truncated = e.msg.startswith("Unterminated") or e.pos >= len(self.buf) - 64
                if truncated and self._fill():
                    continue
                line = self.line + self.buf.count("\n", self.pos, e.pos)
                raise UserError(f"{self.name}:{line}: invalid JSON: {e.msg}") from None
            if end == len(self.buf) and self._fill():  # a number may go on in the next piece
                continue
            self._advance(end)
            return value


def iter_entries(stream: IO[str], name: str) -> Iterator[tuple[str | None, object]]:
    """(mapping key or None, entry) of a JSON list or mapping, in order."""
    js = JsonStream(stream, name)
    opener = js.expect("[{")
    closer = "]" if opener == "[" else "}"
    if js.peek() == closer:
        js.expect(closer)
    else:
        while True:
            key = None
            if opener == "{":
                key = js.value()
                if not isinstance(key, str):
                    raise UserError(f"{name}:{js.line}: invalid JSON: a mapping key must be a string")
                js.expect(":")
            yield key, js.value()
            if js.expect("," + closer) == closer:
                break
    if js.peek():
        raise UserError(f"{name}:{js.line}: invalid JSON: extra data after the top-level {opener}…{closer}")


__all__ = ["iter_entries", "JsonStream"]
