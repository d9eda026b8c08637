"""``entropi memory``: look at and delete what the persona remembers (privacy controls).

``list | search TEXT | show ID | purge [--before DATE] [--tag TAG] | forget PERSON |
doctor [--fix] | users | keygen``; ``--user ID`` works on one caller's memory (their folder
under ``memory.users_dir``) instead of the single-user files.
Deleting asks for confirmation on a terminal; scripts pass ``--yes``; with neither, the
command refuses rather than guess. Changed files are replaced atomically.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from entropi.commands import add_config_option, load_for_command
from entropi.config import check_user_id, for_user, known_users, user_home
from entropi.core.errors import InputError, UsageError


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("memory", help="list, search, show, purge or forget memories",
                       description="Inspect and delete the memory journal and persona profile.")
    actions = p.add_subparsers(dest="memory_action", metavar="ACTION", required=True,
                               parser_class=type(p))

    def action(name: str, help_: str) -> argparse.ArgumentParser:
        a = actions.add_parser(name, parents=parents, help=help_, description=help_)
        if name != "keygen":
            add_config_option(a)
        if name not in ("keygen", "users"):
            a.add_argument("--user", metavar="ID",
                           help="one caller's memory (server.tokens user id); default: the "
                                "single-user files")
        a.set_defaults(func=run)
        return a

    action("list", "list journal entries, oldest first")
    s = action("search", "rank journal entries by relevance to TEXT (BM25)")
    s.add_argument("text", metavar="TEXT")
    s.add_argument("--limit", type=int, default=10, help="entries to show (default 10)")
    s = action("show", "print one entry (ID or a unique prefix of it)")
    s.add_argument("id", metavar="ID")
    s = action("purge", "delete journal entries; with no filter everything, profile included")
    s.add_argument("--before", metavar="DATE", help="only entries before DATE (YYYY-MM-DD, UTC)")
    s.add_argument("--tag", help="only entries carrying this tag")
    s.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    s = action("forget", "remove PERSON from the profile and every entry that mentions them")
    s.add_argument("person", metavar="PERSON")
    s.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    s = action("doctor", "find LLM junk in profile, journal and ledger (--fix removes it)")
    s.add_argument("--fix", action="store_true", help="remove what was found (atomically)")
    action("users", "list the callers that have a memory folder (server.tokens user ids)")
    action("keygen", "print a new key for memory.encryption_key_env (keep it secret)")


def run(args: argparse.Namespace) -> int:
    if args.memory_action == "keygen":
        from entropi.core.crypto import new_key

        print(new_key())
        return 0
    cfg = load_for_command(args, check=False)
    if args.memory_action == "users":
        return _users(cfg)
    if args.user is not None:
        cfg = _user_config(cfg, args.user, args.memory_action)
    from entropi.core.crypto import cipher_from_env
    from entropi.memory.journal import Journal
    from entropi.memory.profile import ProfileStore

    cipher = cipher_from_env(cfg.memory.encryption_key_env)
    journal = Journal(cfg.memory.journal_dir, cipher)
    store = ProfileStore(cfg.memory.profile_path, cfg.conversation.persona_name, cipher)
    if args.memory_action == "doctor":
        return _doctor(args, cfg, journal, store, cipher)
    if args.memory_action in ("purge", "forget"):
        from entropi.memory.transcript_file import TranscriptFile

        path = cfg.conversation.transcript_file  # it holds what was said too
        transcript = TranscriptFile(path, cipher) if path is not None else None
        return {"purge": _purge, "forget": _forget}[args.memory_action](
            args, journal, store, transcript)
    handler = {"list": _list, "search": _search, "show": _show}[args.memory_action]
    return handler(args, journal, store)


def _user_config(cfg, user_id: str, action: str):
    """The config of one caller's memory; a typo in the id is an error, not "nothing"."""
    try:
        check_user_id(user_id)
    except ValueError as exc:
        raise UsageError(f"memory {action} --user: {exc}") from None
    if not user_home(cfg, user_id).is_dir():
        users = ", ".join(known_users(cfg)) or "none yet"
        raise InputError(f"memory {action} --user: no memory folder for {user_id!r} in "
                         f"{cfg.memory.users_root} (users: {users}); see entropi memory users")
    return for_user(cfg, user_id)


def _users(cfg) -> int:
    users = known_users(cfg)
    for user_id in users:
        print(f"{user_id}  {user_home(cfg, user_id)}")
    print(f"# {len(users)} users in {cfg.memory.users_root}", file=sys.stderr)
    return 0


def _doctor(args, cfg, journal, store, cipher) -> int:
    """Exit 0 when clean (or fixed), 1 when junk was found and left in place."""
    from entropi.memory import doctor
    from entropi.memory.ledger import LedgerStore, ledger_path

    persona = cfg.conversation.persona_name
    profile = store.load()
    found = doctor.profile_findings(profile, persona)
    entries = journal.read_all()
    found += doctor.journal_findings(entries, persona)
    ledger_store = LedgerStore(ledger_path(cfg.memory.profile_path), cipher)
    ledger = ledger_store.load()
    bad_items = [i for i in ledger.items if doctor.ledger_item_reason(i.text, persona)]
    found += [doctor.Finding("ledger", i.text, doctor.ledger_item_reason(i.text, persona) or "")
              for i in bad_items]
    for f in found:
        print(f"{f.where}: {f.reason}: {f.text[:80]}")
    if not found:
        print("memory doctor: nothing to fix")
        return 0
    if not args.fix:
        print(f"memory doctor: {len(found)} junk item(s); run with --fix to remove them")
        return 1
    store.update(lambda p: doctor.clean_profile(p, persona))
    removed = journal.remove(lambda e: doctor.entry_reason(e, persona) is not None)
    if bad_items:
        ledger.items = [i for i in ledger.items if i not in bad_items]
        ledger_store.save(ledger)
    print(f"memory doctor: removed {len(found)} junk item(s) ({removed} journal entries)")
    return 0


def _row(entry) -> str:
    summary = entry.summary if len(entry.summary) <= 70 else entry.summary[:69] + "…"
    return (f"{entry.id}  {entry.timestamp:%Y-%m-%d %H:%M:%S}  {entry.importance:.2f}  "
            f"[{', '.join(entry.tags)}]  {summary}")


def _list(args, journal, store) -> int:
    entries = journal.read_all()
    for entry in entries:
        print(_row(entry))
    print(f"# {len(entries)} entries in {journal.root}", file=sys.stderr)
    return 0


def _search(args, journal, store) -> int:
    from entropi.memory.retrieval import BM25Index, tokenize

    if not tokenize(args.text):
        raise UsageError(f"memory search: {args.text!r} has no searchable words")
    index = BM25Index()
    for entry in journal.read_all():
        index.add(entry)
    hits = [e for e in index.search(args.text, args.limit)
            if set(tokenize(args.text)) & set(tokenize(e.text().replace(":", " ")))]
    for entry in hits:
        print(_row(entry))
    print(f"# {len(hits)} matching entries", file=sys.stderr)
    return 0


def _show(args, journal, store) -> int:
    matches = [e for e in journal.read_all() if e.id.startswith(args.id)]
    if not matches:
        raise InputError(f"memory show: no journal entry with id {args.id!r}; "
                         f"see entropi memory list")
    if len(matches) > 1:
        raise InputError(f"memory show: {args.id!r} matches {len(matches)} entries; "
                         f"give more of the id")
    sys.stdout.write(matches[0].to_markdown())
    return 0


def confirm(question: str, yes: bool, action: str) -> bool:
    """True to go ahead. Without a terminal and without --yes: refuse, never assume."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"memory {action}: {question.rstrip('?')} needs confirmation but "
                         f"there is no terminal to ask on; pass --yes to proceed")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _parse_day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"memory purge --before: {text!r} is not a date; use YYYY-MM-DD") \
            from None


def _purge(args, journal, store, transcript) -> int:
    from entropi.memory.transcript_file import block_time

    before = _parse_day(args.before) if args.before else None
    tag = args.tag.strip().lower() if args.tag else None

    def doomed(entry) -> bool:
        return ((before is None or entry.timestamp < before)
                and (tag is None or tag in entry.tags))

    def doomed_window(block: str) -> bool:  # windows carry no tags: only dates select them
        when = block_time(block)
        return tag is None and (before is None or (when is not None and when < before))

    count = sum(1 for e in journal.read_all() if doomed(e))
    windows = (sum(1 for b in transcript.blocks() if doomed_window(b) and b.startswith("## "))
               if transcript else 0)  # session headings go with their windows, uncounted
    everything = before is None and tag is None
    profile_exists = store.path.exists()
    if count == 0 and windows == 0 and not (everything and profile_exists):
        print("nothing to purge")
        return 0
    parts = [f"{count} journal entries"]
    if windows:
        parts.append(f"{windows} transcript windows")
    if everything and profile_exists:
        parts.append("the persona profile")
    what = " and ".join(parts)
    if not confirm(f"Delete {what}?", args.yes, "purge"):
        print("nothing deleted")
        return 1
    removed = journal.remove(doomed)
    if transcript is not None and windows:
        if everything:
            transcript.delete()
        else:
            transcript.remove(doomed_window)
    if everything and profile_exists:
        store.path.unlink()
        journal.mark_purged()  # a running daemon reloads and forgets its in-memory profile
    print(f"deleted {removed} journal entries" + "".join(f" and {p}" for p in parts[1:]))
    return 0


def _forget(args, journal, store, transcript) -> int:
    from entropi.memory.forget import forget_person, known_about

    name = " ".join(args.person.split())
    if not name:
        raise UsageError("memory forget: PERSON is empty")
    known = known_about(journal, store, name, transcript)
    count, in_profile, windows = len(known.entries), known.in_profile, known.windows
    if count == 0 and windows == 0 and not in_profile:
        print(f"nothing is remembered about {name}")
        return 0
    what = f"{count} journal entries mentioning {name}" + (
        f", {windows} transcript windows" if windows else "") + (
        " and what the profile says about them" if in_profile else "")
    if not confirm(f"Delete {what}?", args.yes, "forget"):
        print("nothing deleted")
        return 1
    removed = forget_person(journal, store, name, in_profile,
                            transcript if windows else None)
    print(f"deleted {removed} journal entries" + (f" and {windows} transcript windows"
                                                   if windows else "")
          + (f"; {name} removed from the profile" if in_profile else ""))
    return 0

