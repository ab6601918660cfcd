"""`ferry run` of one streaming pipeline (MariaDB → one sink) until its safe position in the
state store reaches a binlog position, for the bench scripts: the seconds from process start, the
seconds from an optional earlier position, and the process's peak RSS."""
import json, os, sqlite3, subprocess, sys, tempfile, time


def ordinal(file, pos):
    """A binlog position as a comparable pair: (file sequence, offset)."""
    return int(file.rsplit(".", 1)[1]), pos


def run_until(ferry, env, sink_yaml, tables, start, end, mark=None, name="ferry"):
    """Streams `tables` (a YAML list) from `start` (file, pos) into `sink_yaml` ("WORK" in it is the
    run's directory) until `end`; returns (seconds from start, seconds from `mark` or None, peak KiB).
    Exits with the log's place when ferry ends first."""
    work = tempfile.mkdtemp(prefix="ferry-bench-")
    config = os.path.join(work, "ferry.yml")
    with open(config, "w") as f:
        f.write(f"""sources:
  db: {{ type: mysql, url: "mysql://ferry@127.0.0.1:{env['FERRY_MARIADB_PORT']}?tls=disable", password: "${{FERRY_MARIADB_PASSWORD}}" }}
sinks:
  target: {sink_yaml.replace("WORK", work)}
pipelines:
  bench:
    source: db
    sinks: [target]
    tables: {tables}
    snapshot: never
    start: "{start[0]}:{start[1]}"
data_dir: {work}
server: {{ listen: off }}
""")
    began = time.monotonic()
    process = subprocess.Popen([ferry, "run", "-c", config], env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "ferry.log"), "w"))
    marked = None
    peak = 0
    while True:
        try:
            peak = max(peak, int(open(f"/proc/{process.pid}/status").read().split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError):
            pass
        try:
            db = sqlite3.connect(os.path.join(work, "ferry-state.sqlite"), timeout=1)
            row = db.execute("SELECT safe_position FROM pipelines WHERE name = 'bench'").fetchone()
            db.close()
        except sqlite3.Error:
            row = None
        now = time.monotonic()
        if row and row[0]:
            position = json.loads(row[0])
            at = ordinal(position["file"], position["pos"])
            if mark is not None and marked is None and at >= ordinal(*mark):
                marked = now
            if at >= ordinal(*end):
                break
        if process.poll() is not None:
            sys.exit(f"ferry → {name} exited {process.returncode}; see {work}/ferry.log")
        time.sleep(0.01)
    process.terminate()
    process.wait(timeout=60)
    return now - began, (now - marked if marked is not None else None), peak
