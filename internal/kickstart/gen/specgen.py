#!/usr/bin/env python3
"""Generate internal/kickstart/spec.json from a pykickstart source tree.

Usage: python3 gen/specgen.py /path/to/pykickstart > spec.json

The output is a table of facts about kickstart syntax as pykickstart (the
reference implementation used by Anaconda and ksvalidator) defines it:
which command names exist in each syntax version, which handler class
implements each one, whether it is deprecated or removed, and the option
table (argparse actions) of every command and section header.  No code is
copied: the Go package interprets these tables with its own argparse
emulation and its own ports of the per-command checks.

Run with the pykickstart release whose behaviour the package should match
(the committed spec.json was produced from r3.74, the release the
conformance cases in ../shared/conformance/kickstart were recorded with).
"""
import json
import sys
import warnings

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
warnings.simplefilter("ignore")

import pykickstart  # noqa: E402
from pykickstart.base import DeprecatedCommand, RemovedCommand  # noqa: E402
from pykickstart.options import ExtendAction, ExtendConstAction  # noqa: E402
from pykickstart.version import makeVersion, versionMap  # noqa: E402
from pykickstart.sections import (PackageSection, PreScriptSection,  # noqa: E402
                                  PreInstallScriptSection, PostScriptSection,
                                  OnErrorScriptSection, TracebackScriptSection,
                                  CertificateSection)
import argparse  # noqa: E402

KINDS = {
    argparse._StoreAction: "store",
    argparse._StoreTrueAction: "store_true",
    argparse._StoreFalseAction: "store_false",
    argparse._StoreConstAction: "store_const",
    argparse._AppendAction: "append",
    argparse._AppendConstAction: "append_const",
    argparse._CountAction: "count",
    ExtendAction: "extend",
    ExtendConstAction: "extend_const",
}


def jsonable(v):
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def simple(v):
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, list):
        v = [list(x) if isinstance(x, tuple) else x for x in v]
    return v if jsonable(v) else None


def action_spec(a, opts, orphan=False):
    kind = KINDS[type(a)]
    t = a.type
    tname = None
    if t is not None:
        tname = getattr(t, "__name__", repr(t))
    nargs = a.nargs
    spec = {"k": kind, "d": a.dest}
    if opts:
        spec["o"] = opts
    if orphan:
        # reachable through an alias that remove_argument left behind, but
        # no longer in the parser's action list (no default, never required)
        spec["x"] = True
    if nargs is not None:
        spec["n"] = nargs
    if tname:
        spec["t"] = tname
    if a.choices is not None:
        spec["c"] = list(a.choices)
    if a.required:
        spec["r"] = True
    if getattr(a, "deprecated", False):
        spec["dep"] = True
    if kind in ("store_const", "append_const", "extend_const", "store_true", "store_false"):
        spec["const"] = simple(a.const)
    if a.default is not None and jsonable(simple(a.default)):
        spec["def"] = simple(a.default)
    return spec


def parser_spec(op):
    # The option strings that parse_args resolves are the keys of
    # _option_string_actions, not action.option_strings: remove_argument
    # drops one alias of an action but leaves the others working.
    by_action = {}
    for opt, a in op._option_string_actions.items():
        by_action.setdefault(id(a), []).append(opt)
    specs = [action_spec(a, by_action.pop(id(a), [])) for a in op._actions]
    orphans = {}
    for opt, a in op._option_string_actions.items():
        if id(a) in by_action:
            orphans[id(a)] = (a, by_action[id(a)])
    for a, opts in orphans.values():
        specs.append(action_spec(a, opts, orphan=True))
    return specs


def main():
    parsers = []
    parser_index = {}

    def intern(spec):
        key = json.dumps(spec, sort_keys=True)
        if key not in parser_index:
            parser_index[key] = len(parsers)
            parsers.append(spec)
        return parser_index[key]

    out = {
        "source": "pykickstart %s" % pykickstart.__version__ if hasattr(pykickstart, "__version__") else "pykickstart",
        "versions": {},
        "handlers": {},
        "classes": {},
        "sections": {},
        "parsers": parsers,
    }
    from pykickstart import __version__
    out["source"] = "pykickstart " + __version__

    names = sorted((n for n in versionMap if n != "DEVEL"), key=lambda n: versionMap[n])
    for name in names:
        out["versions"][name] = versionMap[name]
        h = makeVersion(name)
        table = {}
        for cmd, obj in sorted(h.commands.items()):
            cls = obj.__class__
            cname = cls.__name__
            table[cmd] = cname
            if cname in out["classes"]:
                continue
            status = "ok"
            if isinstance(obj, RemovedCommand):
                status = "removed"
            elif isinstance(obj, DeprecatedCommand):
                status = "deprecated"
            info = {
                "mro": [c.__name__ for c in cls.__mro__ if c.__name__ not in ("object", "KickstartObject")],
                "status": status,
            }
            op = getattr(obj, "op", None)
            if op is None:
                try:
                    op = obj._getParser()
                except Exception:  # commands that take the raw line
                    op = None
            if op is not None:
                info["parser"] = intern(parser_spec(op))
            if status == "ok":
                dl = obj.dataList()
                if dl is not None:
                    info["multi"] = True
                    dc = obj.dataClass
                    if dc is not None:
                        d = dc()
                        info["data"] = dc.__name__
                        info["data_defaults"] = {k: simple(v) for k, v in vars(d).items()
                                                 if simple(v) is not None or v is None}
            state = {}
            for k, v in vars(obj).items():
                if k in ("handler", "op", "currentCmd", "currentLine", "lineno", "seen", "writePriority"):
                    continue
                sv = simple(v)
                if sv is not None or v is None:
                    state[k] = sv
            info["state"] = state
            if getattr(obj, "conflictingCommands", None):
                info["conflicts"] = list(obj.conflictingCommands)
            out["classes"][cname] = info
        out["handlers"][name] = table

        secs = {}
        for sc in (PackageSection, PreScriptSection, PreInstallScriptSection, PostScriptSection,
                   OnErrorScriptSection, TracebackScriptSection, CertificateSection):
            s = sc(h)
            secs[s.sectionOpen] = intern(parser_spec(s._getParser()))
        out["sections"][name] = secs

    out["versions"]["DEVEL"] = versionMap["DEVEL"]
    json.dump(out, sys.stdout, indent=None, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
