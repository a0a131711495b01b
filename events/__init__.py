"""Events, commands, the canonical codec and the append-only log; imports nothing of ours."""

from events.codec import (
    FORMAT_VERSION,
    BadRecord,
    CorruptLog,
    Header,
    LineTooLong,
    LogError,
    LogExists,
    NotALog,
    UnknownFormat,
)
from events.commands import COMMAND_TYPES, Command, parse_command, to_units
from events.log import LogReader, LogWriter, TornTail, read_log
from events.types import EVENT_TYPES, Event

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "FORMAT_VERSION",
    "BadRecord",
    "Command",
    "CorruptLog",
    "Event",
    "Header",
    "LineTooLong",
    "LogError",
    "LogExists",
    "LogReader",
    "LogWriter",
    "NotALog",
    "TornTail",
    "UnknownFormat",
    "parse_command",
    "read_log",
    "to_units",
]
