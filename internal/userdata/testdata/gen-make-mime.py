#!/usr/bin/env python3
"""Regenerates the make-mime*.txt / make-mime-gzip.bin fixtures.

They are user-data built with Python's email package exactly as cloud-init's
make-mime (utf-8 MIMEText parts, hence base64) and write-mime-multipart --gzip
(an application/x-gzip part, and the whole document gzip'd) build it, so that
Parse is tested against what real tools emit, not only against its own Render.
Run from this directory: python3 gen-make-mime.py
"""
import gzip
from email import encoders
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

cc = """#cloud-config
# bootparams=ks=http://10.0.0.1/ks.cfg ksdevice=link ip=dhcp
packages:
  - vim
"""
sh = """#!/bin/sh
#kscloud.mode=in-place
## kscloud.vnc=yes
echo "bootparams= in the middle of a line is not a directive"
"""
ks = """#version=RHEL8
text
url --url=http://10.0.0.1/os
bootparams=this-is-kickstart-text-not-a-directive
rootpw --lock
%packages
@core
%end
poweroff
"""


def mm(parts):
    m = MIMEMultipart()
    for content, sub, fname in parts:
        p = MIMEText(content, sub, "utf-8")
        p.add_header("Content-Disposition", "attachment", filename=fname)
        m.attach(p)
    return m


with open("make-mime.txt", "w") as f:
    f.write(mm([(cc, "cloud-config", "cc.yaml"), (sh, "x-shellscript", "s.sh")]).as_string())
with open("make-mime-kickstart.txt", "w") as f:
    f.write(mm([(sh, "x-shellscript", "s.sh"), (ks, "x-kickstart", "ks.cfg"),
                (cc, "cloud-config", "cc.yaml")]).as_string())

m = MIMEMultipart()
m.attach(MIMEText(cc, "cloud-config", "us-ascii"))
g = MIMEBase("application", "x-gzip")
g.set_payload(gzip.compress(sh.encode(), mtime=0))
encoders.encode_base64(g)
m.attach(g)
with open("make-mime-gzip.bin", "wb") as f:
    f.write(gzip.compress(m.as_string().encode(), mtime=0))
