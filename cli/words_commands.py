"""``chatterbox-tray words add|list|remove|import|export|try`` and ``chatterbox-tray tags``.

The pronunciation dictionary lives in the daemon (``words.*`` ops), which
applies it to every text from every client; these commands only edit and
show it. ``import`` and ``export`` use the plain rules file of
``ipc/markup.py`` (one rule a line, tab-separated), so a dictionary can be
kept in a text editor, shared, or backed up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..ipc import messages as m
from ..ipc import requests as rq
from ..ipc.client import Client
from ..ipc.markup import format_rules_file, parse_rules_file


def _show(rule: dict[str, Any]) -> str:
    flags = [name for name, on in (("regex", rule["regex"]), ("match case", rule["case_sensitive"])) if on]
    say = rule["say"] if rule["say"] else "(skipped)"
    return f"{rule['word']}  ->  {say}" + (f"   [{', '.join(flags)}]" if flags else "")


def cmd_words(client: Client, args: argparse.Namespace) -> int:
    """The ``words`` subcommands."""
    action = args.words_cmd
    if action == "list":
        rules = m.WordsListResult.from_data(client.request(rq.words_list())).rules
        if args.json:
            print(json.dumps(rules, indent=2, ensure_ascii=False))
        elif not rules:
            print("no pronunciation rules yet: add one with `chatterbox-tray words add nginx 'engine x'`")
        for rule in [] if args.json else rules:
            print(_show(rule))
    elif action == "add":
        request = rq.words_add(args.word, args.say, args.regex, args.match_case, args.replace or None)
        added = m.WordsAddResult.from_data(client.request(request))
        print(f"{'changed' if added.replaced else 'added'}: {_show(added.rule)}")
    elif action == "remove":
        print(f"removed: {_show(m.WordsRemoveResult.from_data(client.request(rq.words_remove(args.word))).removed)}")
    elif action == "import":
        text = sys.stdin.read() if str(args.file) == "-" else Path(args.file).read_text(encoding="utf-8")
        rules = parse_rules_file(text)
        done = m.WordsImportResult.from_data(client.request(rq.words_import(rules, merge=not args.replace_all)))
        print(
            f"imported {len(rules)} rule{'s' if len(rules) != 1 else ''}: {done.added} new, {done.replaced} replaced"
            + (f", {done.removed} removed" if done.removed else "")
            + f"; {done.count} in all"
        )
    elif action == "export":
        rules = m.WordsListResult.from_data(client.request(rq.words_list())).rules
        text = (
            json.dumps({"rules": rules}, indent=2, ensure_ascii=False) + "\n" if args.json else format_rules_file(rules)
        )
        if args.file is None or str(args.file) == "-":
            sys.stdout.write(text)
        else:
            Path(args.file).write_text(text, encoding="utf-8")
            print(f"wrote {len(rules)} rule{'s' if len(rules) != 1 else ''} to {args.file}", file=sys.stderr)
    elif action == "try":
        preview = client.request(rq.text_preview(" ".join(args.text)))
        if args.json:
            print(json.dumps(preview, indent=2, ensure_ascii=False))
            return 0
        shown = m.TextPreviewResult.from_data(preview)
        for chunk in shown.chunks:
            print(f"[pause {chunk['pause_s']:g} s]" if "pause_s" in chunk else chunk["text"])
        for warning in shown.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_tags(client: Client, args: argparse.Namespace) -> int:
    """``tags``: what the loaded model knows, and the pause markup."""
    result = client.request(rq.tags_list())
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    tags = m.TagsListResult.from_data(result)
    pause = tags.pause
    if not tags.loaded:
        print(f"the {tags.variant} model is not loaded yet; ask again once it is (chatterbox-tray status)")
    elif tags.tags:
        print(f"tags the {tags.variant} model knows (put one in the text where it should sound):")
        for tag in tags.tags:
            print(f"  {tag}")
    else:
        print(f"the {result['variant']} model has no tags (the turbo model has); tags in a text are left out")
    print(
        f"pauses, with every model: [pause 500ms], [pause 1.5s], [pause] ({pause['default_s']:g} s); "
        f"at most {pause['max_s']:g} s each"
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``words`` and ``tags`` on the CLI."""
    words = sub.add_parser(
        "words",
        help="pronunciation rules: say a word the way you want, in every app",
        description="Pronunciation rules the daemon applies to every text it speaks, from every app. "
        "A word or phrase (whole words, any case) or a regular expression, and what to say instead.",
    )
    wsub = words.add_subparsers(dest="words_cmd", required=True, metavar="ACTION")
    wsub.add_parser("list", help="list the rules")
    add = wsub.add_parser("add", help="add a rule, or change the one for the same word")
    add.add_argument("word", help="the word or phrase (or, with --regex, a regular expression)")
    add.add_argument("say", help="what to say instead ('' to skip the word)")
    add.add_argument("--regex", action="store_true", help=r"WORD is a regular expression; SAY may use \1")
    add.add_argument("--match-case", action="store_true", help="match case exactly (default: any case)")
    add.add_argument("--replace", metavar="OLD_WORD", help="edit the rule for OLD_WORD (its word changes too)")
    rem = wsub.add_parser("remove", help="remove the rule for a word")
    rem.add_argument("word")
    imp = wsub.add_parser("import", help="add rules from a file (one a line: word<TAB>say[<TAB>regex,match-case])")
    imp.add_argument("file", help="the rules file, or - for stdin (a JSON export is read too)")
    imp.add_argument("--replace-all", action="store_true", help="the file becomes the whole dictionary")
    exp = wsub.add_parser("export", help="write the rules to a file (or stdout), as import reads them")
    exp.add_argument("file", nargs="?", help="where to write (default: stdout)")
    tri = wsub.add_parser("try", help="show what the model would be given for a text (rules, pauses, tags)")
    tri.add_argument("text", nargs="+")
    words.set_defaults(func=cmd_words)

    tags = sub.add_parser("tags", help="the tags the loaded model knows ([laugh], ...) and the pause markup")
    tags.set_defaults(func=cmd_tags)
