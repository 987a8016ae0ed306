#!/usr/bin/python3
"""The vm-test's scenarios, run inside the guest (or, with --host, on the
machine itself without systemd).

In the guest, the monitor is installed from the staging tree that
`cargo xtask install --destdir` wrote, started as the systemd service, and
exercised the way an administrator would: start, the restrictions in force,
a reload with a new rule, real commands, stop. On the host, the daemon is
run by hand with the same rules. Either way the result is one JSON document
written next to this script: every check with its outcome and detail, and
the field paths of each scenario's event, for the comparison across kernels.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_RULE = "2724808c-ba5d-48b2-86d2-0002103df753"
SCENARIO_RULE_ID = "0c6d2f57-8d3e-4b55-9d0f-7a1b5c8e2f10"
WAIT = 20.0

# A rule of the test's own, loaded by a reload: it alerts on the marked
# execs, so that their events reach the journal with every field.
SCENARIO_RULE = f'''[metadata]
creation_date = "2026/12/04"
maturity = "development"
updated_date = "2026/12/04"

[rule]
author = ["vm-test"]
description = "Marks the vm-test's own execs."
from = "now-9m"
index = ["logs-endpoint.events.process*"]
language = "eql"
license = "Apache-2.0"
name = "vm-test scenario"
risk_score = 1
rule_id = "{SCENARIO_RULE_ID}"
severity = "low"
type = "eql"
query = \'\'\'
process where event.type == "start" and process.args : "vmtest-*"
\'\'\'
'''


class Checks:
    def __init__(self):
        self.items = []

    def add(self, name, ok, detail=""):
        self.items.append({"name": name, "ok": bool(ok), "detail": str(detail)[:2000]})
        print(f"vm-test: {'ok  ' if ok else 'FAIL'} {name} {detail}"[:400], flush=True)
        return ok


def sh(*argv, check=False, **kw):
    return subprocess.run(argv, capture_output=True, text=True, check=check, **kw)


def field_paths(doc, prefix=""):
    """Every leaf's dotted path, arrays as one level."""
    out = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            out |= field_paths(value, f"{prefix}{key}.")
    elif isinstance(doc, list) and doc and isinstance(doc[0], dict):
        for item in doc:
            out |= field_paths(item, prefix)
    else:
        out.add(prefix[:-1])
    return out


class JournalSource:
    """Alerts as the service wrote them to the journal."""

    def __init__(self):
        self.cursor = None

    def alerts(self):
        out = sh("journalctl", "-t", "monitor", "-o", "json", "-a", "--no-pager")
        docs = []
        for line in out.stdout.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            raw = entry.get("ALERT_JSON")
            if isinstance(raw, str):
                docs.append(json.loads(raw))
        return docs


class StdoutSource:
    """Alerts from a daemon run by hand with --output stdout."""

    def __init__(self, path):
        self.path = path

    def alerts(self):
        docs = []
        with open(self.path) as f:
            for line in f:
                try:
                    docs.append(json.loads(line))
                except ValueError:
                    pass
        return docs


def wait_alert(source, pred):
    deadline = time.time() + WAIT
    while time.time() < deadline:
        for doc in source.alerts():
            if pred(doc):
                return doc
        time.sleep(0.3)
    return None


def rule_id(doc):
    return doc.get("kibana", {}).get("alert", {}).get("rule", {}).get("rule_id") or doc.get(
        "rule", {}
    ).get("id")


def run_scenarios(checks, source, result):
    """The commands and what their alerts must say."""
    pid = subprocess.Popen(["dmesg", "-c"], stdout=subprocess.DEVNULL).pid
    alert = wait_alert(
        source, lambda d: d.get("process", {}).get("pid") == pid and rule_id(d) == SEED_RULE
    )
    if checks.add("dmesg -c raises the seed rule's alert", alert, f"pid {pid}"):
        p = alert["process"]
        checks.add("  with its arguments", p.get("args") == ["dmesg", "-c"], p.get("args"))
        checks.add("  its executable", p.get("executable", "").endswith("/dmesg"), p.get("executable"))
        checks.add("  its user", alert.get("user", {}).get("name") == "root", alert.get("user"))
        checks.add(
            "  its parent",
            p.get("parent", {}).get("pid") == os.getpid()
            and "python3" in p.get("parent", {}).get("name", ""),
            p.get("parent"),
        )
        result["fields"]["dmesg -c"] = sorted(field_paths(alert))

    args = ["/bin/true", "vmtest-args"] + [f"a{i}" for i in range(298)]
    pid = subprocess.Popen(args).pid
    alert = wait_alert(source, lambda d: d.get("process", {}).get("pid") == pid)
    if checks.add("a 300-argument exec is caught", alert, f"pid {pid}"):
        p = alert["process"]
        checks.add("  every argument exactly", p.get("args") == args, len(p.get("args", [])))
        checks.add("  args_count", p.get("args_count") == 300, p.get("args_count"))
        result["fields"]["300 arguments"] = sorted(field_paths(alert))

    shell = subprocess.Popen(["/bin/sh", "-c", "/bin/true vmtest-parent; exit 0"])
    shell.wait()
    alert = wait_alert(
        source, lambda d: "vmtest-parent" in (d.get("process", {}).get("args") or [])
    )
    if checks.add("an exec from a shell is caught", alert):
        parent = alert["process"].get("parent", {})
        checks.add(
            "  its parent is the shell",
            parent.get("pid") == shell.pid
            and parent.get("name") == os.path.basename(os.path.realpath("/bin/sh"))
            and parent.get("args") == ["/bin/sh", "-c", "/bin/true vmtest-parent; exit 0"],
            parent,
        )
        checks.add(
            "  and the shell's parent this script",
            alert["process"].get("parent", {}).get("entity_id")
            and alert["process"].get("entity_id") != parent.get("entity_id"),
            alert["process"].get("entity_id"),
        )
        result["fields"]["parent"] = sorted(field_paths(alert))


def check_nothing_lost(checks, log):
    """The daemon's final totals were logged, and its loss report, if any
    (it also reports degraded events), counts nothing lost."""
    lines = log.splitlines()
    final = [l for l in lines if "final totals" in l]
    reports = [l for l in lines if "events lost or degraded" in l]
    lost = [l for l in reports if "lost_in_kernel=0 " not in l or "lost_in_daemon=0 " not in l]
    checks.add("the loss counters are at zero", final and not lost, (final + reports)[-2:])


def guest(checks, result):
    stage = os.path.join(HERE, "stage")
    sh("cp", "-a", stage + "/.", "/", check=True)
    # A short watchdog, so that the run outlasts it several times over: the
    # daemon must keep it fed.
    drop_in = "/etc/systemd/system/monitor.service.d"
    os.makedirs(drop_in, exist_ok=True)
    with open(os.path.join(drop_in, "vmtest-watchdog.conf"), "w") as f:
        f.write("[Service]\nWatchdogSec=2s\n")
    sh("systemctl", "daemon-reload", check=True)
    checks.add("installed from the staging tree", os.path.exists("/etc/systemd/system/monitor.service")
               or os.path.exists("/usr/local/lib/systemd/system/monitor.service"))
    started = time.time()
    start = sh("systemctl", "start", "monitor.service")
    took = time.time() - started
    active = sh("systemctl", "is-active", "monitor.service").stdout.strip()
    log = sh("journalctl", "-u", "monitor", "-o", "cat", "--no-pager").stdout
    checks.add("systemctl start returns with the service active", start.returncode == 0 and active == "active",
               f"{took:.1f} s, {active}, {start.stderr.strip()}\n{log[-1500:]}")
    checks.add("  only once ready (attached, self-checked)", "ready" in log and "self-check passed" in log, log[-600:])
    result["start_seconds"] = round(took, 1)

    show = sh("systemctl", "show", "monitor.service", "-p",
              "Type,NotifyAccess,WatchdogUSec,NoNewPrivileges,ProtectSystem,PrivateTmp,PrivateDevices,"
              "CapabilityBoundingSet,AmbientCapabilities,DynamicUser,SystemCallFilter,RestrictAddressFamilies,"
              "PrivateNetwork,MainPID").stdout
    props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    caps = set(props.get("CapabilityBoundingSet", "").split())
    checks.add("the unit's restrictions are in force",
               props.get("Type") == "notify" and props.get("NoNewPrivileges") == "yes"
               and props.get("ProtectSystem") == "strict" and props.get("PrivateTmp") == "yes"
               and props.get("PrivateDevices") == "yes" and props.get("DynamicUser") == "yes"
               and caps == {"cap_bpf", "cap_perfmon", "cap_sys_ptrace"}
               and props.get("WatchdogUSec", "0") != "0",
               {k: v[:120] for k, v in props.items()})
    main_pid = props.get("MainPID", "0")
    status = open(f"/proc/{main_pid}/status").read() if main_pid != "0" else ""
    eff = [l.split()[1] for l in status.splitlines() if l.startswith("CapEff:")]
    uid = [l.split()[1] for l in status.splitlines() if l.startswith("Uid:")]
    checks.add("  the daemon runs unprivileged with the three capabilities",
               eff and int(eff[0], 16) == (1 << 39) | (1 << 38) | (1 << 19) and uid and uid[0] != "0",
               f"CapEff {eff} uid {uid}")
    security = sh("systemd-analyze", "security", "monitor.service", "--no-pager")
    exposure = [l for l in security.stdout.splitlines() if "Overall exposure level" in l]
    # "→ Overall exposure level for monitor.service: 0.8 SAFE 😀"
    result["exposure"] = exposure[0].split("monitor.service:")[1].split()[0] if exposure else None
    checks.add("systemd-analyze security on the installed unit", exposure, exposure)

    source = JournalSource()
    rules_d = "/etc/monitor/rules.d"
    with open(os.path.join(rules_d, "vmtest.toml"), "w") as f:
        f.write(SCENARIO_RULE)
    reload = sh("systemctl", "reload", "monitor.service")
    time.sleep(2)
    log = sh("journalctl", "-u", "monitor", "-o", "cat", "--no-pager").stdout
    checks.add("systemctl reload loads the new rule", reload.returncode == 0 and "rules now loaded" in log,
               log[-400:])

    run_scenarios(checks, source, result)

    time.sleep(8)
    show = sh("systemctl", "show", "monitor.service", "-p", "NRestarts,ActiveState,WatchdogUSec").stdout
    checks.add("8 s more with a 2 s watchdog: still active, never restarted",
               "NRestarts=0" in show and "ActiveState=active" in show and "WatchdogUSec=2s" in show,
               show.strip())
    stop = sh("systemctl", "stop", "monitor.service")
    show = sh("systemctl", "show", "monitor.service", "-p", "Result,ExecMainStatus,ActiveState").stdout
    checks.add("systemctl stop ends it cleanly", stop.returncode == 0 and "Result=success" in show
               and "ExecMainStatus=0" in show, show.strip())
    log = sh("journalctl", "-u", "monitor", "-o", "cat", "--no-pager").stdout
    check_nothing_lost(checks, log)
    result["journal"] = log[-6000:]


def host(checks, result, binary):
    work = tempfile.mkdtemp(prefix="vmtest-host-")
    rules = os.path.join(work, "rules.d")
    os.mkdir(rules)
    with open(os.path.join(rules, "vmtest.toml"), "w") as f:
        f.write(SCENARIO_RULE)
    out_path = os.path.join(work, "alerts.json")
    with open(out_path, "w") as out, open(os.path.join(work, "log"), "w") as err:
        daemon = subprocess.Popen(
            [binary, "--config", "/dev/null", "--rules", rules, "--builtin-rules", "--output", "stdout"],
            stdout=out, stderr=err)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and "INFO ready" not in open(os.path.join(work, "log")).read():
            time.sleep(0.2)
        log = open(os.path.join(work, "log")).read()
        checks.add("the daemon starts (attached, self-checked)", "self-check passed" in log, log[-600:])
        run_scenarios(checks, StdoutSource(out_path), result)
        daemon.terminate()
        daemon.wait(30)
        check_nothing_lost(checks, open(os.path.join(work, "log")).read())
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(work)


def main():
    checks = Checks()
    result = {"kernel": platform.release(), "fields": {}}
    try:
        if len(sys.argv) > 2 and sys.argv[1] == "--host":
            host(checks, result, sys.argv[2])
        else:
            guest(checks, result)
    except Exception as e:  # the report says what broke
        checks.add("the scenarios ran to the end", False, repr(e))
    result["checks"] = checks.items
    target = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "result.json")
    with open(target, "w") as f:
        json.dump(result, f, indent=1)
    print("vm-test: result written", flush=True)


if __name__ == "__main__":
    main()
