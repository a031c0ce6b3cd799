"""``python -m pytest_llmport <command>``: the plugin's command-line tools, one module per command."""

from __future__ import annotations

import importlib
import sys

# command name -> (module, one-line help). Each module exposes ``main(argv: list[str]) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": (".scan", "fail when a file holds a key or a credential-shaped string (run before committing)"),
    "reseal": (".reseal", "seal cassettes again after a deliberate hand edit"),
    "merge": (".merge", "combine JSON reports of separate runs (CI shards) into one report"),
    "cassettes": (".inventory", "list orphaned, missing and outdated cassettes (and prune orphans)"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        lines = ["usage: python -m pytest_llmport <command> [options]", "", "commands:"]
        lines += [f"  {name:<10} {help_}" for name, (_, help_) in sorted(COMMANDS.items())]
        stream = sys.stdout if args and args[0] in ("-h", "--help") else sys.stderr
        if args and args[0] not in ("-h", "--help"):
            print(f"unknown command {args[0]!r}", file=sys.stderr)
        print("\n".join(lines), file=stream)
        return 0 if args and args[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[args[0]][0], __package__)
    result: int = module.main(args[1:])
    return result


if __name__ == "__main__":
    raise SystemExit(main())
