"""How every facemarket command talks to a person or a script — written once, used by all.

`Group` makes each command of a group a `Command`, which adds `--json` and `--debug` and
turns failures into one clear line and a non-zero exit (a traceback only with --debug).
Commands report through `emit` (a table or text for people, JSON for scripts), wait through
`progress`, and ask before spending through `confirm_spend`.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from facemarket.cli.errors import FacemarketError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _set_meta(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value:
            ctx.meta[key] = True
    return callback


def json_mode() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get("json"))


def debug_mode() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get("debug"))


class Command(click.Command):
    """A command with --json and --debug whose failures end in one line and exit 1."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params += [
            click.Option(["--json", "as_json"], is_flag=True, expose_value=False, is_eager=True,
                         callback=_set_meta("json"), help="Print machine-readable JSON."),
            click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True,
                         callback=_set_meta("debug"), help="Show the traceback of a failure."),
        ]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except FacemarketError as error:
            if debug_mode():
                raise
            fail(str(error), error.to_json())
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as error:  # anything unforeseen still gets one line, not a traceback
            if debug_mode():
                raise
            message = f"unexpected {type(error).__name__}: {error}"
            fail(f"{message} (run again with --debug for the traceback)",
                 {"type": type(error).__name__, "message": str(error), "hint": None})


# a sentence ends at a full stop before a space or the end, but not the one of "e.g." or "i.e."
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)\.(?=\s|$)")


def first_sentence(help_text: str) -> str:
    """The first sentence of a help text, whole: what a group lists for a command. (click's
    own short help cuts it to the terminal's width with "...", and at the "." of "e.g.")"""
    paragraph = " ".join(inspect.cleandoc(help_text).split("\n\n")[0].split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph[:end.start() + 1] if end else paragraph


def list_commands(formatter: click.HelpFormatter, rows: list[tuple[str, str]]) -> None:
    """The Commands section of a group's help, each summary whole (wrapped, never cut)."""
    if rows:
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class SummaryGroup(click.Group):
    """A click group whose help lists each command's first sentence whole."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        list_commands(formatter, [
            (name, command.short_help or first_sentence(command.help or ""))
            for name, command in commands if command is not None and not command.hidden])


class Group(SummaryGroup):
    """A command group whose commands (and sub-groups) behave as `Command`."""

    command_class = Command
    group_class = type  # sub-groups are Groups too


def fail(line: str, details: dict) -> None:
    """Print one line to stderr (and a JSON error on stdout with --json) and exit 1."""
    if json_mode():
        click.echo(json.dumps({"error": details}))
    click.echo(f"Error: {line}", err=True)
    click.get_current_context().exit(EXIT_ERROR)


def emit(data: Any, human: str | Callable[[], None] | None = None) -> None:
    """Report a command's result: `data` as JSON with --json, else `human` (text or printer)."""
    if json_mode():
        click.echo(json.dumps(data, default=str, indent=2))
    elif callable(human):
        human()
    elif human is not None:
        click.echo(human)
    else:
        click.echo(json.dumps(data, default=str, indent=2))


def table(rows: Sequence[dict], columns: Sequence[str], empty: str = "(none)") -> str:
    """A plain text table: a header, then one line per row, columns padded to fit."""
    if not rows:
        return empty
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """`name: value` lines, names aligned; for one record."""
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in pairs)


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner on stderr while waiting (a transaction, a service); silent when not a tty."""
    if not sys.stderr.isatty() or json_mode():
        yield
        return
    done = threading.Event()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            sys.stderr.write(f"\r{frame} {message}")
            sys.stderr.flush()
            if done.wait(0.1):
                break
        sys.stderr.write("\r" + " " * (len(message) + 2) + "\r")
        sys.stderr.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def yes_option(f: Callable) -> Callable:
    """`-y/--yes`: spend without asking (scripts, the demo)."""
    return click.option("-y", "--yes", is_flag=True, help="Do not ask before paying.")(f)


def confirm_spend(question: str, yes: bool) -> None:
    """Ask before tokens leave the account; a script must say -y (stdin may not be a person)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise FacemarketError(f"not confirmed: {question}", "add -y to pay without asking")
    if not click.confirm(question, default=False, err=True):
        raise FacemarketError("cancelled: nothing was paid")
