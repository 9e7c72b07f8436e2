#!/usr/bin/env python3
"""Generate testdata/pykickstart-differential.json: random command lines and
random kickstart files together with what pykickstart (the reference) says
about them, for the Go package's differential test.

Usage: python3 gen/differential.py /path/to/pykickstart > testdata/pykickstart-differential.json

Command lines are checked the way pykickstart's own command tests do
(tests/baseclass.py: a fresh handler, parse() called directly, deprecation
warnings ignored). Files are checked with tools/ksvalidator.py -v VERSION
(includes not followed): its exit code and the lines it reports.
"""
import contextlib
import io
import json
import os
import random
import re
import shlex
import sys
import tempfile
import warnings

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")

from pykickstart.errors import KickstartParseWarning, KickstartDeprecationWarning  # noqa: E402
from pykickstart.version import returnClassForVersion, versionMap  # noqa: E402
from tools import ksvalidator  # noqa: E402

SPEC = json.load(open(os.path.join(os.path.dirname(__file__), "..", "spec.json")))
VERSIONS = sorted(v for v in versionMap if v != "DEVEL")
VALUES = ['1', '0', '-1', 'abc', '/', '/boot', 'sda', 'md0', 'raid1', '1.5', 'yes', 'no', 'on', '',
          'x,y', 'a=b', 'lvm', 'btrfs', 'dhcp', 'static', 'eth0', '52:54:00:aa:bb:cc', 'http://x/y',
          'file:///a', 'luks2-x', '--', '-5', 'sector', 'use', 'reconfigure', 'post-install', 'RAID1',
          '10', 'thinp', 'plain', 'mac', 'writeback', 'vlan5', 'eth0.5', 'vlan', '999999999999999999999',
          '1_0', 'ext4', 'tmpfs', 'swap', 'btrfs.1', 'none', 'http://h/a#b']


def run_case(version, line):
    warnings.resetwarnings()
    warnings.simplefilter("error", category=KickstartParseWarning)
    warnings.simplefilter("ignore", category=KickstartDeprecationWarning)
    cmd = line.split(" ")[0]
    handler = returnClassForVersion(version)()
    obj = handler.commands[cmd]
    obj.currentLine, obj.currentCmd, obj.seen = line, cmd, True
    try:
        obj.parse(shlex.split(line, comments=True)[1:])
        return "ok"
    except Exception:  # pykickstart's tests count every exception
        return "error"


def random_line(rnd):
    v = rnd.choice(VERSIONS)
    cmds = SPEC["handlers"][v]
    name = rnd.choice(sorted(cmds))
    cls = SPEC["classes"][cmds[name]]
    acts = SPEC["parsers"][cls["parser"]] if "parser" in cls else []
    opts = [o for a in acts for o in a.get("o", [])]
    words = [name]
    for _ in range(rnd.randint(0, 5)):
        r = rnd.random()
        if opts and r < 0.55:
            o = rnd.choice(opts)
            if rnd.random() < 0.15 and len(o) > 4:
                o = o[:rnd.randint(3, len(o) - 1)]
            if rnd.random() < 0.5:
                words.append(o + "=" + rnd.choice(VALUES))
            else:
                words.append(o)
                if rnd.random() < 0.6:
                    words.append(rnd.choice(VALUES))
        elif r < 0.8:
            words.append(rnd.choice(VALUES) or "x")
        elif r < 0.9:
            words.append("--bogus")
        else:
            words.append(rnd.choice(['"a b"', "'q'", "#c", "\\x", '"unterminated']))
    return v, " ".join(words)


SECTIONS = ['%pre', '%pre-install', '%post', '%post --nochroot', '%post --interpreter /usr/bin/python3',
            '%post --bogus', '%packages', '%packages --nobase', '%packages --default --nocore',
            '%packages --instLangs=en', '%onerror', '%traceback', '%certificate --filename=a --dir=/x',
            '%certificate --filename=a', '%certificate', '%addon com_x --y', '%anaconda', '%foo', '%end',
            '%include /tmp/x', '%include', '%end extra']
BODY = ['echo hi', '  # comment', '', '@core', '-', '-@x', '@^env', 'pkg # c', '%notasection', '  %end',
        '%post', 'echo "unterminated', '\t', '\xa0', '%packages', '  %include x', "it's", '%pre-install']
MISC = ['#comment', '', '   ', 'text', 'reboot', 'part / --size=1', 'network --device=eth0',
        'autopart', 'part /boot --size 1', 'user --name=a', '"x"', "''", '\\']


def random_file(rnd, lines_pool):
    v = rnd.choice(VERSIONS)
    lines = []
    for _ in range(rnd.randint(1, 14)):
        r = rnd.random()
        if r < 0.4:
            lines.append(rnd.choice(lines_pool))
        elif r < 0.6:
            lines.append(rnd.choice(SECTIONS))
        elif r < 0.85:
            lines.append(rnd.choice(BODY))
        else:
            lines.append(rnd.choice(MISC))
    sep = rnd.choice(["\n", "\n", "\r\n", "\r"])
    return v, sep.join(lines) + (sep if rnd.random() < 0.8 else "")


def validate(version, text):
    fd, fn = tempfile.mkstemp(suffix=".ks")
    os.write(fd, text.encode())
    os.close(fd)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            rc, msgs = ksvalidator.main(["-v", version, fn])
    finally:
        os.unlink(fn)
    out = buf.getvalue() + "\n".join(msgs)
    return rc, sorted(set(int(m) for m in re.findall(r"occurred on line (\d+)", out)))


def main():
    rnd = random.Random(20250105)
    commands = []
    for _ in range(6000):
        v, line = random_line(rnd)
        commands.append({"version": v, "input": line, "expect": run_case(v, line)})
    pool = [c["input"] for c in commands]
    files = []
    for _ in range(2500):
        v, text = random_file(rnd, pool)
        rc, lines = validate(v, text)
        files.append({"version": v, "text": text, "exit": rc, "lines": lines})
    from pykickstart import __version__
    json.dump({"source": "pykickstart " + __version__ + ", Python " + sys.version.split()[0],
               "commands": commands, "files": files}, sys.stdout, indent=0, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
