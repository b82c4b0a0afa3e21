"""Helpers for the robustness tests: see which BPF programs and links one fusescope process
holds, and check the kernel released them. Standard library only. (fusescope itself runs in
the background through tests/lib/fusescope_run.py's Fusescope.)

Other tests (and other engineers' fusescope) run concurrently, so nothing here compares
global counts: each check is on the ids one process held, read from /proc/PID/fdinfo.
"""

import json
import os
import subprocess
import time

from fusescope_run import FUSESCOPE  # noqa: F401 (test_cli imports it from here)


def wait_for(pred, timeout=10.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def bpf_fds(pid):
    """(prog_ids, link_ids) of the BPF programs and links behind pid's descriptors."""
    progs, links = set(), set()
    d = f"/proc/{pid}/fdinfo"
    try:
        names = os.listdir(d)
    except OSError:
        return progs, links
    for n in names:
        try:
            with open(os.path.join(d, n)) as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        info = {k.strip(): v.strip() for k, v in info.items()}
        if "link_id" in info:
            links.add(int(info["link_id"]))
        elif "prog_id" in info:
            progs.add(int(info["prog_id"]))
    return progs, links


def live_bpf():
    """(prog ids, link ids, {prog id: name}) the kernel has now (bpftool)."""
    p = json.loads(subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True,
                                  text=True, check=True).stdout or "[]")
    l = json.loads(subprocess.run(["bpftool", "link", "show", "--json"], capture_output=True,
                                  text=True, check=True).stdout or "[]")
    return {x["id"] for x in p}, {x["id"] for x in l}, {x["id"]: x.get("name", "") for x in p}


def assert_released(tc, progs, links, timeout=10.0):
    """The kernel no longer has any of these programs or links (it frees them shortly after
    the last descriptor is gone)."""
    def gone():
        lp, ll, _ = live_bpf()
        return not (progs & lp) and not (links & ll)
    ok = wait_for(gone, timeout, 0.2)
    lp, ll, names = live_bpf()
    tc.assertTrue(ok, f"still attached after exit: programs "
                      f"{sorted((i, names.get(i)) for i in progs & lp)}, links {sorted(links & ll)}")


def mount_table():
    """Mount points of this mount namespace."""
    with open("/proc/self/mountinfo") as f:
        return sorted(l.split()[4] for l in f if l.strip())
