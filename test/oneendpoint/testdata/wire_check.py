#!/usr/bin/python3
"""Checks the OpenNebula test endpoint's wire format with Python's standard
xmlrpc.client (a client nobody in this project wrote), sending the calls
goca sends and asserting on the replies as oned gives them.

usage: wire_check.py URL SESSION
"""
import sys
import time
import xmlrpc.client
import xml.etree.ElementTree as ET

URL, SESSION = sys.argv[1], sys.argv[2]
raw = {}


class Capture(xmlrpc.client.Transport):
    """Keeps the last raw response body (to check <i8>, CRLF…)."""

    def parse_response(self, response):
        body = response.read()
        raw["last"] = body
        raw["ctype"] = response.getheader("Content-Type")
        p, u = self.getparser()
        p.feed(body)
        p.close()
        return u.close()


one = xmlrpc.client.ServerProxy(URL, transport=Capture())
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        print("last raw reply:", raw.get("last", b"")[:600], file=sys.stderr)
        sys.exit(1)


def call(method, *args, session=SESSION):
    return getattr(one, method)(session, *args)


def ok(method, *args):
    r = call(method, *args)
    check(isinstance(r, list) and len(r) == 3 and r[0] is True and r[2] == 0,
          "%s%r: success envelope [True, value, 0], got %r" % (method, args, r))
    return r[1]


def fails(method, *args, code=None, text=None, session=SESSION):
    r = call(method, *args, session=session)
    check(isinstance(r, list) and len(r) == 5 and r[0] is False,
          "%s%r: failure envelope of 5 elements, got %r" % (method, args, r))
    check(b"<i8>" in raw["last"], "%s: the failure's last element is <i8>" % method)
    check(isinstance(r[2], int) and isinstance(r[3], int) and isinstance(r[4], int), "%s: codes are ints: %r" % (method, r))
    check(r[1].startswith("[" + method + "] "), "%s: message starts with [method]: %r" % (method, r[1]))
    if code is not None:
        check(r[2] == code, "%s%r: code %d, got %r" % (method, args, code, r))
    if text is not None:
        check(text in r[1], "%s%r: message contains %r, got %r" % (method, args, text, r[1]))
    return r


def fault(method, *args, code, text):
    try:
        r = call(method, *args)
    except xmlrpc.client.Fault as f:
        check(f.faultCode == code and text in f.faultString, "%s: fault %d %r, got %d %r" % (method, code, text, f.faultCode, f.faultString))
        return
    check(False, "%s%r: want an XML-RPC fault %d, got %r" % (method, args, code, r))


def wait(fetch, pred, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        x = fetch()
        if pred(x):
            return x
        time.sleep(0.05)
    check(False, "timed out waiting for " + what)


def vm(i):
    return ET.fromstring(ok("one.vm.info", i))


def img(i):
    return ET.fromstring(ok("one.image.info", i))


# Version, content type, xmlrpc-c typing.
v = ok("one.system.version")
check(isinstance(v, str) and v.count(".") == 2, "one.system.version is a dotted string: %r" % v)
check(raw["ctype"].startswith("text/xml"), "Content-Type text/xml, got %r" % raw["ctype"])
check(b"<i4>0</i4>" in raw["last"] and b"<boolean>1</boolean>" in raw["last"], "success typed <boolean>1 and <i4>0")
check(b"\r\n" in raw["last"], "xmlrpc-c ends lines with CRLF")
fails("one.vm.info", 0, session="kscloud:wrong", code=256, text="User couldn't be authenticated, aborting call.")
fault("one.vm.info", "0", code=-501, text="Parameter that is supposed to be integer is not")
fault("one.vm.info", code=-501, text="Not enough parameters")
fault("one.vm.nosuch", 0, code=-506, text="one.vm.nosuch")
fails("one.vm.info", 999999, code=1024, text="Error getting virtual machine [999999].")
r = fails("one.image.info", 999999, code=1024, text="Error getting image [999999].")
check(r[3] == 999999, "failure carries the object id: %r" % r)

# Datastores and network.
pool = ET.fromstring(ok("one.datastorepool.info"))
types = {d.findtext("NAME"): d.findtext("TYPE") for d in pool.findall("DATASTORE")}
check(types.get("files") == "2" and types.get("default") == "0" and types.get("system") == "1", "datastores %r" % types)
vn = ET.fromstring(ok("one.vn.info", 0))
check(vn.findtext("TEMPLATE/GATEWAY") and vn.findtext("TEMPLATE/NETWORK_MASK"), "vnet gateway and mask")

# Images: DATABLOCK LOCKED → READY; type/datastore rules; names.
stamp = str(int(time.time() * 1000))
blk = ok("one.image.allocate", 'NAME="py-blk-%s"\nTYPE=DATABLOCK\nSIZE=8\nPERSISTENT=YES\nDESCRIPTION="a \\"quoted\\" word"' % stamp, 1)
check(isinstance(blk, int), "image.allocate returns an int id")
check(img(blk).findtext("STATE") == "4", "new image is LOCKED (4)")
wait(lambda: img(blk).findtext("STATE"), lambda s: s == "1", "image READY")
check(img(blk).findtext("TEMPLATE/DESCRIPTION") == 'a "quoted" word', "only \\\" is unescaped in a quoted value")
fails("one.image.allocate", 'NAME="py-blk-%s"\nTYPE=DATABLOCK\nSIZE=8' % stamp, 1, code=16384, text="NAME is already taken by IMAGE %d." % blk)
fails("one.image.allocate", 'NAME="py:bad"\nTYPE=DATABLOCK\nSIZE=8', 1, code=16384, text="Invalid NAME, char ':' is not allowed")
fails("one.image.allocate", 'NAME="py-k-%s"\nTYPE=KERNEL' % stamp, 2, code=16384, text="No PATH nor SOURCE in template.")
fails("one.image.allocate", 'NAME="py-k-%s"\nTYPE=KERNEL\nPATH=/tmp/x' % stamp, 1, code=16384,
      text="IMAGES of type KERNEL, RAMDISK and CONTEXT cannot be registered in an IMAGE_DS datastore")
fails("one.image.allocate", 'NAME="py-d-%s"\nTYPE=DATABLOCK\nSIZE=8' % stamp, 2, code=16384,
      text="Only IMAGES of type KERNEL, RAMDISK and CONTEXT can be registered in a FILE_DS datastore")
fails("one.image.allocate", 'NAME="py-s-%s"\nTYPE=DATABLOCK\nSIZE=8' % stamp, 0, code=16384,
      text="New images can only be allocated in a files or image datastore.")
# ImageManager::can_clone_image (ALLOCATE), ImageChangeType (ACTION),
# ImageManager::delete_image: a LOCKED image may be deleted.
lck = ok("one.image.allocate", 'NAME="py-lck-%s"\nTYPE=DATABLOCK\nSIZE=8' % stamp, 1)
fails("one.image.clone", lck, "py-clone-" + stamp, -1, code=16384, text="Error allocating a new image. Cannot clone image in state: LOCKED")
fails("one.image.chtype", lck, "KERNEL", code=2048, text="Cannot change image type to an incompatible type for the current datastore.")
ok("one.image.delete", lck)
fails("one.image.allocate", "A=[B=1", 1, code=8192, text="Parse error: syntax error")
ipool = ET.fromstring(ok("one.imagepool.info", -3, -1, -1))
check(any(i.findtext("ID") == str(blk) for i in ipool.findall("IMAGE")), "imagepool.info lists the image")

# VM on hold: NIC lease, CONTEXT ETH0_*, GRAPHICS port, user attributes,
# first duplicate sub-attribute wins.
tmpl = ('NAME="py-vm-%s"\nCPU=1\nMEMORY=128\nDISK=[IMAGE_ID=%d, TARGET=vda, TARGET=vdz]\n'
        'NIC=[NETWORK_ID=0]\nCONTEXT=[NETWORK=YES]\nGRAPHICS=[TYPE=VNC, LISTEN="0.0.0.0"]\n'
        'OS=[BOOT=disk0]\nKSCLOUD_BUILD="py-%s"\nLABELS="kscloud"\n# a comment\nEMPTY =\n' % (stamp, blk, stamp))
vid = ok("one.vm.allocate", tmpl, True)
x = vm(vid)
check(x.findtext("STATE") == "2", "allocate on hold → HOLD (2)")
ip = x.findtext("TEMPLATE/NIC/IP")
check(ip and x.findtext("TEMPLATE/CONTEXT/ETH0_IP") == ip and x.findtext("TEMPLATE/CONTEXT/ETH0_GATEWAY"), "lease in NIC and CONTEXT")
check(x.findtext("TEMPLATE/GRAPHICS/PORT") == str(5900 + vid), "VNC port 5900+ID")
check(x.findtext("TEMPLATE/DISK/TARGET") == "vda", "first duplicate sub-attribute wins")
check(x.findtext("USER_TEMPLATE/KSCLOUD_BUILD") == "py-" + stamp and x.find("USER_TEMPLATE/EMPTY") is not None, "unknown attributes in USER_TEMPLATE")
check(img(blk).findtext("STATE") == "8", "a persistent image on a VM is USED_PERS (8)")
fails("one.image.delete", blk, code=2048, text="Cannot delete image. There are 1 VMs using it.")
fails("one.image.persistent", blk, False, code=8192, text="Could not make image non-persistent: Image cannot be in state USED_PERS.")
fails("one.vm.action", "poweroff", vid, code=2048, text='Error performing action "poweroff": This action is not available for state HOLD')
fails("one.vm.action", "explode", vid, code=2048, text='Action "explode" is not supported')
fails("one.vm.allocate", "CPU=1\nMEMORY=0", code=16384, text="MEMORY attribute must be a positive integer value.")
fails("one.vm.allocate", "CPU=-1\nMEMORY=64", code=16384, text="CPU attribute must be a positive float or integer value.")
fails("one.vm.allocate", "CPU=1\nMEMORY=64\nRAW=[TYPE=kvm,DATA=\"<x/>\"]", code=512, text="restricted attribute RAW/DATA")
fails("one.vm.allocate", "CPU=1\nMEMORY=64\nOS=[BOOT=floppy]", code=16384, text="Wrong OS/BOOT value")
fails("one.vm.allocate", "CPU=1\nMEMORY=64\nOS=[KERNEL_DS=\"$FILE[IMAGE_ID=%d]\"]" % blk, code=16384, text="KERNEL needs an image of type KERNEL and not DATABLOCK")

# updateconf in HOLD (4 params as goca ≥ 6.4 sends them), release, run.
cmd = "ip=%s::gw:255.255.255.0:h:eth0:none" % ip
ok("one.vm.updateconf", vid, "<TEMPLATE><OS><BOOT>disk0</BOOT><KERNEL_CMD><![CDATA[%s]]></KERNEL_CMD></OS><GRAPHICS><TYPE>VNC</TYPE><LISTEN>0.0.0.0</LISTEN></GRAPHICS></TEMPLATE>" % cmd, 0)
check(vm(vid).findtext("TEMPLATE/OS/KERNEL_CMD") == cmd, "updateconf from an XML template sets OS/KERNEL_CMD")
ok("one.vm.action", "release", vid)
check(vm(vid).findtext("STATE") == "1", "release → PENDING (1)")
wait(lambda: vm(vid), lambda x: x.findtext("STATE") == "3" and x.findtext("LCM_STATE") == "3", "RUNNING")
check(vm(vid).findtext("HISTORY_RECORDS/HISTORY/HOSTNAME"), "history names the host")

# Pools: short body vs extended; the SQLite backend refuses KEY=VALUE.
short = ET.fromstring(ok("one.vmpool.info", -3, -1, -1, -1))
ext = ET.fromstring(ok("one.vmpool.infoextended", -3, -1, -1, -1))
s = [e for e in short.findall("VM") if e.findtext("ID") == str(vid)][0]
e = [e for e in ext.findall("VM") if e.findtext("ID") == str(vid)][0]
check(s.find("USER_TEMPLATE/KSCLOUD_BUILD") is None and s.findtext("USER_TEMPLATE/LABELS") == "kscloud", "short body keeps LABELS only")
check(e.findtext("USER_TEMPLATE/KSCLOUD_BUILD") == "py-" + stamp, "extended body has the whole USER_TEMPLATE")
fails("one.vmpool.infoextended", -3, -1, -1, -1, "KSCLOUD_BUILD=py", code=8192, text="search is not supported by the SQL backend")

# disksaveas: from a persistent image disk (not a volatile one), VM 26 → 3, image LOCKED → READY.
name = "py-saved-" + stamp
nid = ok("one.vm.disksaveas", vid, 0, name, "OS", -1)
check(vm(vid).findtext("LCM_STATE") == "26", "disksaveas on RUNNING → HOTPLUG_SAVEAS (26)")
check(img(nid).findtext("STATE") == "4" and img(nid).findtext("TEMPLATE/SAVED_VM_ID") == str(vid), "saved image LOCKED with SAVED_VM_ID")
wait(lambda: img(nid).findtext("STATE"), lambda s: s == "1", "saved image READY")
wait(lambda: vm(vid).findtext("LCM_STATE"), lambda s: s == "3", "VM back to RUNNING")
check(img(nid).findtext("TYPE") == "0", "saved as OS (0)")
fails("one.vm.disksaveas", vid, 0, name, "", -1, code=16384, text="NAME is already taken")

# Power off, updateconf replace erases omitted sections, resume.
ok("one.vm.action", "poweroff", vid)
check(vm(vid).findtext("LCM_STATE") == "18", "poweroff → SHUTDOWN_POWEROFF (18)")
wait(lambda: vm(vid).findtext("STATE"), lambda s: s == "8", "POWEROFF")
fails("one.vm.action", "poweroff", vid, code=2048, text="This action is not available for state POWEROFF")
ok("one.vm.updateconf", vid, "OS=[BOOT=disk0]", 0)
x = vm(vid)
check(x.find("TEMPLATE/GRAPHICS") is None or x.findtext("TEMPLATE/GRAPHICS/TYPE") is None, "replace mode erased GRAPHICS/TYPE")
check(x.findtext("TEMPLATE/OS/KERNEL_CMD") is None, "replace mode erased OS/KERNEL_CMD")
ok("one.vm.action", "resume", vid)
check(vm(vid).findtext("LCM_STATE") == "20", "resume → BOOT_POWEROFF (20)")
fails("one.vm.updateconf", vid, "OS=[BOOT=disk0]", 0, code=8192, text="configuration cannot be updated in state BOOT_POWEROFF")
wait(lambda: vm(vid).findtext("LCM_STATE"), lambda s: s == "3", "RUNNING after resume")

# Terminate: DONE stays visible; pool -2 shows it, -1 hides it.
ok("one.vm.action", "terminate-hard", vid)
wait(lambda: vm(vid).findtext("STATE"), lambda s: s == "6", "DONE")
ok("one.vm.action", "terminate", vid)
fails("one.vm.updateconf", vid, "OS=[BOOT=disk0]", 0, code=8192, text="configuration cannot be updated in state DONE")
anyst = ET.fromstring(ok("one.vmpool.info", -3, -1, -1, -2))
live = ET.fromstring(ok("one.vmpool.info", -3, -1, -1, -1))
check(any(e.findtext("ID") == str(vid) for e in anyst.findall("VM")), "state -2 lists DONE VMs")
check(not any(e.findtext("ID") == str(vid) for e in live.findall("VM")), "state -1 hides DONE VMs")
wait(lambda: img(blk).findtext("STATE"), lambda s: s == "1", "image READY again after the VM is DONE")

# A volatile disk cannot be saved.
vol = ok("one.vm.allocate", "CPU=1\nMEMORY=64\nDISK=[TYPE=fs,SIZE=4]", False)
wait(lambda: vm(vol).findtext("LCM_STATE"), lambda s: s == "3", "volatile VM RUNNING")
fails("one.vm.disksaveas", vol, 0, "py-vol-" + stamp, "", -1, code=8192, text="Cannot use DISK. DISK does not have a valid IMAGE_ID.")
fails("one.vm.updateconf", vol, "CONTEXT=[A=1]", 0, code=8192, text="Virtual machine does not have context, cannot add a new one.")
fails("one.vm.attach", vol, "A=1", code=2048, text="Internal error parsing DISK attribute")
fails("one.vm.attach", vol, "DISK=[IMAGE_ID=%d, TARGET=vda]" % blk, code=2048, text="Target vda is already in use.")
ok("one.vm.action", "terminate-hard", vol)

# Delete: DELETE (7) → gone.
ok("one.image.delete", nid)
wait(lambda: call("one.image.info", nid), lambda r: r[0] is False and r[2] == 1024, "deleted image gone")

print("wire_check: %d checks passed" % checks)
