#!/usr/bin/env bash
# Lists the libvirt C functions nchookd and kscloud can call, each with the
# libvirt release that added it, newest last: how README's libvirt floor
# (internal/virt.MinLibvirt) was found. Run it after code starts using a
# libvirt call it did not use before.
#
# The binding (libvirt.org/go/libvirt, built with libvirt_dlopen) calls
# each function through a C wrapper that dlsym's it at the first call. The
# Go linker keeps the cgo stubs (_Cfunc_…) of the wrappers the program can
# reach; the wrappers and helpers they call are followed through the
# binding's C source; each function's symbol version in the build machine's
# libvirt.so.0 / libvirt-admin.so.0 (LIBVIRT_x.y.z) is the release that
# added it. Needs an unstripped build (a minute or two) and libvirt0.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
tags=$(scripts/gotags.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags "$tags" -o "$tmp/" ./cmd/nchookd ./cmd/kscloud
mod=$(go list -tags "$tags" -m -f '{{.Dir}}' libvirt.org/go/libvirt)
lib=$(ldconfig -p | awk '$1 == "libvirt.so.0" {print $NF; exit}')
adm=$(ldconfig -p | awk '$1 == "libvirt-admin.so.0" {print $NF; exit}')
[ -n "$lib" ] && [ -n "$adm" ] || { echo "libvirt-api: libvirt.so.0 or libvirt-admin.so.0 not found (apt-get install libvirt0)" >&2; exit 1; }
for b in nchookd kscloud; do
	go tool nm "$tmp/$b" | grep -o 'libvirt\._Cfunc_[A-Za-z0-9_]*' | sed 's/.*_Cfunc_//' | sort -u >"$tmp/$b.cfunc"
done
objdump -T "$lib" "$adm" | awk 'NF >= 2 && $(NF-1) ~ /^LIBVIRT/ {print $NF, $(NF-1)}' >"$tmp/versions"
/usr/bin/python3 - "$mod" "$tmp" <<'EOF'
import glob, re, sys
mod, tmp = sys.argv[1], sys.argv[2]
# The C the dlopen build compiles: no static, LXC or QEMU variants.
src = ''.join(open(f).read() + '\n' for f in sorted(glob.glob(mod + '/*.go') + glob.glob(mod + '/*.h'))
              if not f.endswith('_test.go') and not any(x in f for x in ('static', '_lxc_', '_qemu_')))
bodies = {}
for m in re.finditer(r'^(\w+)\([^)]*\)\s*\{', src, re.M):
    i, depth = m.end(), 1
    while depth and i < len(src):
        depth += {'{': 1, '}': -1}.get(src[i], 0)
        i += 1
    bodies[m.group(1)] = bodies.get(m.group(1), '') + src[m.end():i]
ver = dict(l.split() for l in open(tmp + '/versions'))
def key(v):
    return tuple(int(x) for x in v.rsplit('_', 1)[1].split('.'))
for b in ('nchookd', 'kscloud'):
    todo = [l.strip() for l in open(tmp + '/' + b + '.cfunc') if l.strip() not in ('CString', 'free')]
    seen, funcs = set(), set()
    while todo:
        w = todo.pop()
        if w in seen or w not in bodies:
            continue
        seen.add(w)
        funcs.update(re.findall(r'libvirt\w*Symbol\("(\w+)"', bodies[w]))
        todo += re.findall(r'\b(\w+(?:Wrapper|Helper))\(', bodies[w])
    missing = sorted(f for f in funcs if f not in ver)
    rows = sorted((key(ver[f]), ver[f], f) for f in funcs if f in ver)
    print('%s: %d libvirt functions' % (b, len(funcs)))
    for _, v, f in rows:
        print('  %-22s %s' % (v, f))
    if missing:
        print('  not in this libvirt: ' + ' '.join(missing))
EOF
