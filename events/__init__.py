"""Events, commands, the canonical codec and the append-only log; imports nothing of ours."""

from clearsim.events.codec import (
    ENGINE_VERSION,
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
from clearsim.events.commands import COMMAND_TYPES, Command, parse_command, to_units
from clearsim.events.errors import ClearsimError
from clearsim.events.log import LogReader, LogWriter, TornTail, read_log
from clearsim.events.types import EVENT_TYPES, Event

__all__ = [
    "COMMAND_TYPES",
    "ENGINE_VERSION",
    "EVENT_TYPES",
    "FORMAT_VERSION",
    "BadRecord",
    "ClearsimError",
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
