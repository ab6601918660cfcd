"""`--source mariadb|postgres` for the test scripts that have a PostgreSQL twin: with
`postgres`, runs the twin with the other arguments in place of the calling script; with
`mariadb` (the default), takes the option out of sys.argv and returns."""
import os, sys


def follow_source_choice(script, postgres_script):
    if "--source" not in sys.argv:
        return
    at = sys.argv.index("--source")
    kind = sys.argv[at + 1] if at + 1 < len(sys.argv) else ""
    if kind not in ("mariadb", "postgres"):
        sys.exit(f"{script}: --source takes mariadb (the default) or postgres")
    rest = sys.argv[1:at] + sys.argv[at + 2:]
    if kind == "postgres":
        os.execv(postgres_script, [postgres_script] + rest)
    sys.argv[1:] = rest
