"""How a group module puts its commands on the `genies` parser: through a `CommandGroup`, which
also lists them under the group's heading for `genies --help`."""

import argparse
import textwrap

INDENT = 20  # where argparse's own listings start a command's help
WIDTH = 79


class CommandGroup:
    def __init__(self, commands, heading: str):
        """`commands`: the top parser's subparsers."""
        self.commands, self.heading = commands, heading
        self.listed: list[tuple[str, str]] = []

    def command(self, name: str, func, help: str) -> argparse.ArgumentParser:
        """The parser of `genies <name>`, which runs `func(args)`."""
        sub = self.commands.add_parser(name, description=help)
        sub.set_defaults(func=func)
        self.listed.append((name, help))
        return sub

    def listing(self) -> str:
        lines = [self.heading]
        for name, help in self.listed:
            lines += textwrap.wrap(
                help,
                WIDTH,
                initial_indent=f"  {name}".ljust(INDENT),
                subsequent_indent=" " * INDENT,
            )
        return "\n".join(lines)
